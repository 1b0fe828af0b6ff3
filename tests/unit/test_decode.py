"""``schemas.codec.decode_fact``: every bad input becomes a typed :class:`FactDecodeError`, never a crash."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.codec import (
    MAX_FACT_BYTES,
    FactDecodeError,
    InvalidFact,
    OversizedFact,
    UndecodableFact,
    UnsupportedSchemaVersion,
    decode_fact,
)
from schemas.facts import FactEnvelope
from tests.support.documents import mutate, paths
from tools.demo.generator import Workload

ABORTED = {"kind": "server_request_aborted", "completed_at_ms": 1042, "request_id": 61}


def _raw(fact: dict[str, Any], **envelope: Any) -> bytes:
    return msgspec.json.encode(
        {"v": 1, "producer": "p", "thread_id": "thread-1", "observed_at_ms": 5, "fact": fact, **envelope}
    )


SAMPLES: list[bytes] = [fact.value for fact in Workload(21, 40).facts()]


@pytest.mark.parametrize("raw", [b"\xff\xfe\x00", b"{not json", b'{"v": 1,', b"\x00" * 10, b'{"v":1} trailing'])
def test_garbage_bytes_are_undecodable(raw: bytes) -> None:
    with pytest.raises(UndecodableFact) as caught:
        decode_fact(raw)
    assert caught.value.reason == "undecodable"


@pytest.mark.parametrize("raw", [b"", b"   ", b"\n"])
def test_empty_input_is_undecodable(raw: bytes) -> None:
    with pytest.raises(UndecodableFact, match="truncated"):
        decode_fact(raw)


@pytest.mark.parametrize("raw", [b"[1, 2]", b"42", b'"fact"', b"null", b"true"])
def test_json_that_is_not_an_object_is_undecodable(raw: bytes) -> None:
    with pytest.raises(UndecodableFact, match="Expected `object`"):
        decode_fact(raw)


def test_unknown_version_with_a_new_shape_is_unsupported_not_invalid() -> None:
    raw = msgspec.json.encode({"v": 2, "producer": "p", "thread_id": "thread-1", "payload": {"new": "shape"}})

    with pytest.raises(UnsupportedSchemaVersion, match="version 2") as caught:
        decode_fact(raw)
    assert caught.value.reason == "unsupported_version"


def test_unknown_version_with_the_current_shape_is_still_refused() -> None:
    with pytest.raises(UnsupportedSchemaVersion):
        decode_fact(_raw(ABORTED, v=3))


def test_unknown_fact_kind_is_invalid_and_names_the_fact_path() -> None:
    with pytest.raises(InvalidFact) as caught:
        decode_fact(_raw({"kind": "teleported"}))

    assert caught.value.reason == "invalid"
    assert "`$.fact.kind`" in str(caught.value)
    assert "teleported" in str(caught.value)


def test_wrong_field_type_is_invalid_and_names_the_field() -> None:
    item = {"type": "commandExecution", "id": "item-1", "status": "inProgress"}
    params = {"item": item, "threadId": "thread-1", "turnId": "turn-1", "startedAtMs": "x"}
    fact = {"kind": "notification", "notification": {"method": "item/started", "params": params}}

    with pytest.raises(
        InvalidFact, match=r"Expected `int`, got `str` - at `\$\.fact\.notification\.params\.startedAtMs`"
    ):
        decode_fact(_raw(fact))


def test_missing_required_field_is_invalid() -> None:
    with pytest.raises(InvalidFact, match="request_id"):
        decode_fact(_raw({"kind": "server_request_aborted", "completed_at_ms": 1}))


def test_oversized_fact_is_refused_before_decoding() -> None:
    raw = _raw(ABORTED, padding="x" * MAX_FACT_BYTES)

    with pytest.raises(OversizedFact) as caught:
        decode_fact(raw)
    assert caught.value.reason == "oversized"
    assert str(len(raw)) in str(caught.value)


def test_a_fact_of_exactly_the_limit_is_decoded() -> None:
    base = _raw(ABORTED, padding="")
    raw = _raw(ABORTED, padding="x" * (MAX_FACT_BYTES - len(base)))

    assert len(raw) == MAX_FACT_BYTES
    assert decode_fact(raw).producer == "p"


def test_invalid_utf8_inside_a_json_string_is_undecodable() -> None:
    with pytest.raises(UndecodableFact):
        decode_fact(b'{"v":1,"producer":"\x80pp","thread_id":null,"fact":{}}')


def test_memoryview_input_is_accepted() -> None:
    assert decode_fact(memoryview(_raw(ABORTED))).thread_id == "thread-1"


# --- schema evolution -----------------------------------------------------------------------------


OPAQUE_KEYS = frozenset(
    {"agentsStates", "fileSystem", "file_system", "codexErrorInfo", "additional_permissions", "error", "arguments"}
)
"""Values that are maps or raw JSON (``Any``) in the schema: an added key there is data, not a new field."""


def _with_extra_fields(value: Any, depth: int = 0) -> Any:
    """Add an unknown key to every JSON object the schema types as a struct, as a newer producer might."""
    if isinstance(value, dict):
        extended = {
            key: inner if key in OPAQUE_KEYS else _with_extra_fields(inner, depth + 1) for key, inner in value.items()
        }
        extended[f"addedInV1_{depth}"] = {"nested": [1, "two", None]}
        return extended
    if isinstance(value, list):
        return [_with_extra_fields(inner, depth + 1) for inner in value]
    return value


@pytest.mark.parametrize("raw", SAMPLES[::7])
def test_facts_with_extra_unknown_fields_still_decode_to_the_same_envelope(raw: bytes) -> None:
    # New producer, old decoder: fields this reducer does not know are ignored at every level.
    newer = msgspec.json.encode(_with_extra_fields(msgspec.json.decode(raw)))

    assert decode_fact(newer) == decode_fact(raw)


def test_envelope_without_the_optional_observed_time_still_decodes() -> None:
    # Old producer, new decoder: fields added later with defaults may be absent.
    raw = msgspec.json.encode({"v": 1, "producer": "p", "thread_id": "thread-1", "fact": ABORTED})

    assert decode_fact(raw).observed_at_ms == 0


# --- fuzzing --------------------------------------------------------------------------------------


def _decodes_or_refuses(raw: bytes) -> None:
    try:
        envelope = decode_fact(raw)
    except FactDecodeError as exc:
        assert exc.reason in {"undecodable", "unsupported_version", "invalid", "oversized", "too_deep"}
    else:
        assert isinstance(envelope, FactEnvelope)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=512))
def test_arbitrary_bytes_only_ever_raise_fact_decode_errors(raw: bytes) -> None:
    _decodes_or_refuses(raw)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sample=st.sampled_from(SAMPLES),
    choice=st.integers(min_value=0),
    action=st.sampled_from(["replace", "delete", "rename"]),
    replacement=json_values,
)
def test_mutated_valid_facts_only_ever_raise_fact_decode_errors(
    sample: bytes, choice: int, action: str, replacement: Any
) -> None:
    document = msgspec.json.decode(sample)
    found = paths(document)
    mutated = mutate(document, found[choice % len(found)], action, replacement)

    _decodes_or_refuses(msgspec.json.encode(mutated))


@settings(max_examples=300, deadline=None)
@given(
    sample=st.sampled_from(SAMPLES),
    cut=st.integers(min_value=0),
    flips=st.lists(st.tuples(st.integers(0), st.integers(0, 255)), max_size=4),
)
def test_byte_damaged_valid_facts_only_ever_raise_fact_decode_errors(
    sample: bytes, cut: int, flips: list[tuple[int, int]]
) -> None:
    damaged = bytearray(sample[: cut % (len(sample) + 1)])
    for position, byte in flips:
        if damaged:
            damaged[position % len(damaged)] = byte

    _decodes_or_refuses(bytes(damaged))


def test_command_decision_object_naming_no_variant_is_invalid() -> None:
    raw = (
        b'{"v":1,"producer":"p","thread_id":"t","fact":{"kind":"server_response","completed_at_ms":1,'
        b'"response":{"method":"item/commandExecution/requestApproval","id":1,"response":{"decision":{}}}}}'
    )
    with pytest.raises(InvalidFact, match="exactly one"):
        decode_fact(raw)
