"""Hostile facts at the decode edge: each class of :mod:`schemas.bounds` ends as a typed refusal (or, where
the bytes are harmless, a decoded envelope that encodes again), never an exception of another kind."""

from __future__ import annotations

import copy
from typing import Any

import msgspec
import pytest
from msgspec import inspect

from schemas import bounds
from schemas.codec import (
    FactDecodeError,
    InvalidFact,
    TooDeepFact,
    UndecodableFact,
    decode_fact,
    encode_fact,
)
from schemas.events import ExecveReviewedAction, ShellReviewedAction, UnifiedExecReviewedAction
from schemas.facts import FactEnvelope
from schemas.protocol import CodexErrorInfo, EffectivePermissions, McpToolCallItem, PermissionProfile, TurnDiffParams
from tests.support import builders as b

ABORTED = {"kind": "server_request_aborted", "completed_at_ms": 1042, "request_id": 61}


def _raw(fact: dict[str, Any], **envelope: Any) -> bytes:
    return msgspec.json.encode(
        {"v": 1, "producer": "p", "thread_id": "thread-1", "observed_at_ms": 5, "fact": fact, **envelope}
    )


def _document(envelope: FactEnvelope) -> dict[str, Any]:
    """The wire JSON of a valid envelope, as a mutable document."""
    document: dict[str, Any] = msgspec.json.decode(encode_fact(envelope))
    return document


def _with(document: dict[str, Any], path: tuple[str | int, ...], value: Any) -> bytes:
    changed = copy.deepcopy(document)
    parent: Any = changed
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return msgspec.json.encode(changed)


def _nested(depth: int, leaf: Any = 0) -> Any:
    """A list ``depth`` levels deep (``_nested(1) == [0]``)."""
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def _refusal(raw: bytes) -> FactDecodeError:
    with pytest.raises(FactDecodeError) as caught:
        decode_fact(raw)
    return caught.value


# --- where free-form values sit ---------------------------------------------------------------------

FREE_FORM_SITES: dict[str, tuple[FactEnvelope, tuple[str | int, ...], type]] = {
    "turn error codexErrorInfo": (
        b.sample_turn_completed(status="failed", codex_error_info="badRequest"),
        ("fact", "notification", "params", "turn", "error", "codexErrorInfo"),
        CodexErrorInfo,
    ),
    "command approval additionalPermissions.fileSystem": (
        b.sample_command_approval_request(additional_permissions={"network": None, "fileSystem": {"write": ["/w"]}}),
        ("fact", "request", "params", "additionalPermissions", "fileSystem"),
        PermissionProfile,
    ),
    "permissions approval permissions.fileSystem": (
        b.sample_permissions_approval_request(),
        ("fact", "request", "params", "permissions", "fileSystem"),
        PermissionProfile,
    ),
    "effective permissions file_system": (
        b.sample_effective_permissions_response(51, permissions={"network": None, "file_system": {"read": ["/r"]}}),
        ("fact", "response", "permissions", "file_system"),
        EffectivePermissions,
    ),
    "mcp tool call error": (
        b.sample_completed_tool_items()[2],
        ("fact", "notification", "params", "item", "error"),
        McpToolCallItem,
    ),
    "guardian reviewed shell action additional_permissions": (
        b.sample_guardian_review_fact(
            reviewed_action={"type": "shell", "sandbox_permissions": "with_additional_permissions"}
        ),
        ("fact", "reviewed_action", "additional_permissions"),
        ShellReviewedAction,
    ),
    "guardian reviewed unified_exec action additional_permissions": (
        b.sample_guardian_review_fact(reviewed_action={"type": "unified_exec", "sandbox_permissions": "use_default"}),
        ("fact", "reviewed_action", "additional_permissions"),
        UnifiedExecReviewedAction,
    ),
    "guardian reviewed execve action additional_permissions": (
        b.sample_guardian_review_fact(reviewed_action={"type": "execve", "source": "shell", "program": "/bin/ls"}),
        ("fact", "reviewed_action", "additional_permissions"),
        ExecveReviewedAction,
    ),
}


Leaf = tuple[inspect.Type, type, str]


def _leaves(info: inspect.Type, owner: tuple[type, str] | None, seen: set[type]) -> list[Leaf]:
    """Every scalar type the fact schema can decode, with the struct field it sits in."""
    if isinstance(info, inspect.Metadata):
        return _leaves(info.type, owner, seen)
    if isinstance(info, inspect.StructType):
        if info.cls in seen:
            return []
        seen.add(info.cls)
        return [leaf for field in info.fields for leaf in _leaves(field.type, (info.cls, field.encode_name), seen)]
    if isinstance(info, inspect.ListType):
        return _leaves(info.item_type, owner, seen)
    if isinstance(info, inspect.DictType):
        return _leaves(info.key_type, owner, seen) + _leaves(info.value_type, owner, seen)
    if isinstance(info, inspect.UnionType):
        return [leaf for member in info.types for leaf in _leaves(member, owner, seen)]
    assert owner is not None
    return [(info, *owner)]


FACT_SCHEMA_LEAVES = _leaves(inspect.type_info(FactEnvelope), None, set())


def _schema_depth(info: inspect.Type) -> int:
    """Levels of JSON nesting the typed schema itself can hold (an ``Any`` counts as a leaf)."""
    if isinstance(info, inspect.Metadata):
        return _schema_depth(info.type)
    if isinstance(info, inspect.StructType):
        return 1 + max((_schema_depth(field.type) for field in info.fields), default=0)
    if isinstance(info, inspect.ListType):
        return 1 + _schema_depth(info.item_type)
    if isinstance(info, inspect.DictType):
        return 1 + _schema_depth(info.value_type)
    if isinstance(info, inspect.UnionType):
        return max(_schema_depth(member) for member in info.types)
    return 0


def test_every_string_and_integer_of_the_fact_schema_is_bounded() -> None:
    unbounded = {
        (cls, name)
        for info, cls, name in FACT_SCHEMA_LEAVES
        if (isinstance(info, inspect.StrType) and info.max_length is None)
        or (isinstance(info, inspect.IntType) and (info.ge, info.le) != (bounds.INT64_MIN, bounds.INT64_MAX))
    }

    assert unbounded == {(TurnDiffParams, "diff")}  # bounded by the fact size only; see schemas.bounds


def test_every_free_form_field_of_the_schema_is_checked_and_covered_by_these_tests() -> None:
    found = {(cls, name) for info, cls, name in FACT_SCHEMA_LEAVES if isinstance(info, inspect.AnyType)}

    assert found == {
        (CodexErrorInfo, "codexErrorInfo"),
        (PermissionProfile, "fileSystem"),
        (EffectivePermissions, "file_system"),
        (McpToolCallItem, "error"),
        (ShellReviewedAction, "additional_permissions"),
        (UnifiedExecReviewedAction, "additional_permissions"),
        (ExecveReviewedAction, "additional_permissions"),
    }
    assert all("__post_init__" in vars(cls) for cls, _name in found)
    assert {(cls, path[-1]) for _envelope, path, cls in FREE_FORM_SITES.values()} == found


def test_the_typed_schema_plus_one_free_form_value_stays_under_the_nesting_bound() -> None:
    depth = _schema_depth(inspect.type_info(FactEnvelope))

    assert depth == 8  # a new level of nesting in the schema must be a conscious change
    assert depth + bounds.MAX_FREE_FORM_DEPTH <= bounds.MAX_NESTING_DEPTH


# --- nesting ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("site", FREE_FORM_SITES)
def test_a_free_form_value_at_the_depth_limit_decodes_and_one_level_more_is_too_deep(site: str) -> None:
    envelope, path, _cls = FREE_FORM_SITES[site]
    document = _document(envelope)

    under_value = _nested(bounds.MAX_FREE_FORM_DEPTH)
    under = decode_fact(_with(document, path, under_value))
    over = _refusal(_with(document, path, _nested(bounds.MAX_FREE_FORM_DEPTH + 1)))

    assert msgspec.json.decode(encode_fact(under)) == msgspec.json.decode(_with(document, path, under_value))
    assert isinstance(over, TooDeepFact)
    assert over.reason == "too_deep"
    assert f"nests deeper than {bounds.MAX_FREE_FORM_DEPTH} levels" in str(over)
    assert "- at `$.fact." in str(over)


def test_objects_count_towards_the_free_form_depth_like_arrays() -> None:
    envelope, path, _cls = FREE_FORM_SITES["turn error codexErrorInfo"]
    document = _document(envelope)
    deep: Any = "leaf"
    for _ in range(bounds.MAX_FREE_FORM_DEPTH + 1):
        deep = {"inner": deep}

    assert isinstance(_refusal(_with(document, path, deep)), TooDeepFact)


@pytest.mark.parametrize("where", ["free-form field", "undeclared field", "declared struct field"])
def test_a_document_too_deep_for_the_decoder_recursion_is_too_deep_wherever_it_sits(where: str) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    envelope, path, _cls = FREE_FORM_SITES["turn error codexErrorInfo"]
    document = _document(envelope)
    placeholder = _with(document, path, "PLACEHOLDER")
    if where == "undeclared field":
        placeholder = _raw(ABORTED, extra="PLACEHOLDER")
    elif where == "declared struct field":
        placeholder = _with(document, ("fact", "notification", "params", "turn", "error"), "PLACEHOLDER")
    raw = placeholder.replace(b'"PLACEHOLDER"', deep)

    assert isinstance(_refusal(raw), TooDeepFact)


def test_nesting_in_an_undeclared_field_is_skipped_without_being_built() -> None:
    raw = _raw(ABORTED, added_by_a_newer_producer=_nested(bounds.MAX_NESTING_DEPTH * 4))

    assert decode_fact(raw).fact == decode_fact(_raw(ABORTED)).fact


# --- integers ---------------------------------------------------------------------------------------

INT64_EDGES = [bounds.INT64_MIN, bounds.INT64_MAX]
OUT_OF_INT64 = [2**63, -(2**63) - 1, 2**64 + 1, 10**40]


@pytest.mark.parametrize("value", INT64_EDGES)
@pytest.mark.parametrize("field", ["observed_at_ms", "completed_at_ms", "request_id"])
def test_typed_integers_at_the_edges_of_int64_decode_and_encode_again(field: str, value: int) -> None:
    fact = {**ABORTED, field: value} if field != "observed_at_ms" else ABORTED
    raw = _raw(fact, observed_at_ms=value) if field == "observed_at_ms" else _raw(fact)

    envelope = decode_fact(raw)

    assert decode_fact(encode_fact(envelope)) == envelope
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(envelope), type=FactEnvelope) == envelope


@pytest.mark.parametrize("value", OUT_OF_INT64)
@pytest.mark.parametrize(
    ("field", "path"),
    [
        ("observed_at_ms", "$.observed_at_ms"),
        ("completed_at_ms", "$.fact.completed_at_ms"),
        ("request_id", "$.fact.request_id"),
    ],
)
def test_typed_integers_outside_int64_are_invalid_with_their_path(field: str, path: str, value: int) -> None:
    raw = _raw(ABORTED, observed_at_ms=value) if field == "observed_at_ms" else _raw({**ABORTED, field: value})

    refusal = _refusal(raw)

    assert isinstance(refusal, InvalidFact)
    assert f"- at `{path}`" in str(refusal)


def test_integers_outside_int64_are_invalid_deep_inside_protocol_payloads() -> None:
    document = _document(b.sample_turn_completed())
    path = ("fact", "notification", "params", "turn", "durationMs")

    assert decode_fact(_with(document, path, bounds.INT64_MAX)) is not None
    assert "$.fact.notification.params.turn.durationMs" in str(_refusal(_with(document, path, 2**63)))


@pytest.mark.parametrize("value", OUT_OF_INT64)
@pytest.mark.parametrize("site", FREE_FORM_SITES)
def test_integers_outside_int64_inside_free_form_values_are_invalid(site: str, value: int) -> None:
    envelope, path, _cls = FREE_FORM_SITES[site]
    document = _document(envelope)

    refusal = _refusal(_with(document, path, {"nested": [1, {"deeper": value}]}))

    assert isinstance(refusal, InvalidFact)
    assert "integer outside signed 64 bits" in str(refusal)


@pytest.mark.parametrize("site", FREE_FORM_SITES)
def test_int64_edges_inside_free_form_values_decode_and_encode_to_msgpack(site: str) -> None:
    envelope, path, _cls = FREE_FORM_SITES[site]
    decoded = decode_fact(_with(_document(envelope), path, {"edges": INT64_EDGES}))

    assert msgspec.msgpack.decode(msgspec.msgpack.encode(decoded), type=FactEnvelope) == decoded


# --- strings, lists and free-form sizes -------------------------------------------------------------

STRING_FIELDS: list[tuple[str, FactEnvelope, tuple[str | int, ...], int]] = [
    ("thread id", b.sample_turn_completed(), ("thread_id",), bounds.MAX_ID_CHARS),
    ("producer", b.sample_turn_completed(), ("producer",), bounds.MAX_ID_CHARS),
    ("turn id", b.sample_turn_completed(), ("fact", "notification", "params", "turn", "id"), bounds.MAX_ID_CHARS),
    ("request id", b.sample_server_request_aborted(61), ("fact", "request_id"), bounds.MAX_ID_CHARS),
    ("item id", b.sample_completed_tool_items()[0], ("fact", "notification", "params", "item", "id"), 256),
    ("client name", b.sample_initialize(), ("fact", "params", "clientInfo", "name"), bounds.MAX_NAME_CHARS),
    ("model name", b.sample_turn_resolved_config(), ("fact", "model"), bounds.MAX_NAME_CHARS),
    (
        "skill path",
        b.sample_skill_invoked([b.skill_invocation("s", "/skills/s.md")]),
        ("fact", "invocations", 0, "skill_path"),
        bounds.MAX_PATH_CHARS,
    ),
    ("compaction error text", b.sample_compaction(error="boom"), ("fact", "error"), bounds.MAX_TEXT_CHARS),
]


@pytest.mark.parametrize(("name", "envelope", "path", "limit"), STRING_FIELDS, ids=[f[0] for f in STRING_FIELDS])
def test_strings_at_their_length_limit_decode_and_one_character_more_is_invalid(
    name: str, envelope: FactEnvelope, path: tuple[str | int, ...], limit: int
) -> None:
    document = _document(envelope)

    assert decode_fact(_with(document, path, "é" * limit)) is not None  # characters, not bytes
    refusal = _refusal(_with(document, path, "x" * (limit + 1)))

    assert isinstance(refusal, InvalidFact)
    assert f"Expected `str` of length <= {limit}" in str(refusal)
    assert "- at `$." + ".".join(str(step) for step in path).replace(".0.", "[0].") + "`" in str(refusal)


def test_a_list_copied_into_rows_has_an_item_limit() -> None:
    collab = b.sample_completed_tool_items()[4]
    document = _document(collab)
    path = ("fact", "notification", "params", "item", "receiverThreadIds")

    assert decode_fact(_with(document, path, ["t"] * bounds.MAX_LIST_ITEMS)) is not None
    refusal = _refusal(_with(document, path, ["t"] * (bounds.MAX_LIST_ITEMS + 1)))

    assert isinstance(refusal, InvalidFact)
    assert "receiverThreadIds" in str(refusal)


def test_map_keys_are_ids_with_a_length_limit() -> None:
    document = _document(b.sample_completed_tool_items()[4])
    path = ("fact", "notification", "params", "item", "agentsStates")

    refusal = _refusal(_with(document, path, {"t" * (bounds.MAX_ID_CHARS + 1): {"status": "running"}}))

    assert "`key` in `$.fact.notification.params.item.agentsStates`" in str(refusal)


@pytest.mark.parametrize("site", FREE_FORM_SITES)
def test_huge_arrays_in_free_form_fields_are_invalid(site: str) -> None:
    envelope, path, _cls = FREE_FORM_SITES[site]
    document = _document(envelope)

    refusal = _refusal(_with(document, path, [0] * 200_000))

    assert isinstance(refusal, InvalidFact)
    assert f"larger than {bounds.MAX_FREE_FORM_SIZE} characters of JSON" in str(refusal)


def test_a_long_string_as_a_free_form_value_is_invalid() -> None:
    envelope, path, _cls = FREE_FORM_SITES["turn error codexErrorInfo"]
    document = _document(envelope)

    assert decode_fact(_with(document, path, "x" * (bounds.MAX_FREE_FORM_SIZE - 2))) is not None
    assert isinstance(_refusal(_with(document, path, "x" * (bounds.MAX_FREE_FORM_SIZE + 1))), InvalidFact)


def test_a_turn_diff_is_bounded_by_the_fact_size_only() -> None:
    diff = "diff --git a/x b/x\n@@ -1 +1 @@\n" + "+added line\n" * 50_000

    assert decode_fact(encode_fact(b.sample_turn_diff_updated(diff))) is not None


# --- duplicate keys, unicode, not an object, trailing bytes -----------------------------------------


def test_a_duplicate_key_takes_its_last_value_and_every_occurrence_is_checked() -> None:
    def fact(thread_ids: bytes) -> bytes:
        return b'{"v":1,"producer":"p",' + thread_ids + b',"fact":' + msgspec.json.encode(ABORTED) + b"}"

    assert decode_fact(fact(b'"thread_id":"a","thread_id":"b"')).thread_id == "b"
    long_first = b'"thread_id":"' + b"x" * (bounds.MAX_ID_CHARS + 1) + b'","thread_id":"b"'
    assert isinstance(_refusal(fact(long_first)), InvalidFact)


@pytest.mark.parametrize("kinds", [("teleported", "server_request_aborted"), ("server_request_aborted", "teleported")])
def test_a_duplicate_fact_kind_tag_with_an_unknown_value_is_invalid(kinds: tuple[str, str]) -> None:
    tags = b'"kind":"%s","kind":"%s",' % (kinds[0].encode(), kinds[1].encode())
    raw = b'{"v":1,"producer":"p","thread_id":"t","fact":{' + tags + b'"completed_at_ms":1,"request_id":61}}'

    refusal = _refusal(raw)

    assert isinstance(refusal, InvalidFact)
    assert "- at `$.fact.kind`" in str(refusal)


@pytest.mark.parametrize(
    ("raw_thread_id", "outcome"),
    [
        (rb'"\ud800"', "undecodable"),  # a lone high surrogate, escaped
        (rb'"\udc00\ud800"', "undecodable"),  # a reversed pair
        (b'"\xed\xa0\x80"', "undecodable"),  # a surrogate encoded in UTF-8
        (b'"\xc0\xaf"', "undecodable"),  # an overlong encoding of "/"
        (b'"\xf4\x90\x80\x80"', "undecodable"),  # beyond U+10FFFF
        (rb'"a\u0000b"', "a\x00b"),  # NUL, escaped: a valid character
        (rb'"\ud83d\ude00"', "\U0001f600"),  # a valid escaped pair
        ('"\u2028\ufeff"'.encode(), "\u2028\ufeff"),  # a line separator and a BOM inside a string
    ],
)
def test_unicode_edge_cases_in_an_id(raw_thread_id: bytes, outcome: str) -> None:
    raw = b'{"v":1,"producer":"p","thread_id":' + raw_thread_id + b',"fact":' + msgspec.json.encode(ABORTED) + b"}"

    if outcome == "undecodable":
        assert isinstance(_refusal(raw), UndecodableFact)
    else:
        envelope = decode_fact(raw)
        assert envelope.thread_id == outcome
        assert decode_fact(encode_fact(envelope)) == envelope


def test_a_byte_order_mark_before_the_document_is_undecodable() -> None:
    assert isinstance(_refusal(b"\xef\xbb\xbf" + _raw(ABORTED)), UndecodableFact)


def test_an_id_of_the_maximum_length_in_four_byte_characters_decodes() -> None:
    envelope = decode_fact(_raw(ABORTED, thread_id="\U0001f600" * bounds.MAX_ID_CHARS))

    assert envelope.thread_id is not None and len(envelope.thread_id.encode()) == 4 * bounds.MAX_ID_CHARS


@pytest.mark.parametrize("raw", [b"[]", b"1", b'"x"', b"null", b"{}", b"[" * 10_000])
def test_valid_json_that_is_not_an_envelope_is_refused(raw: bytes) -> None:
    assert _refusal(raw).reason in {"undecodable", "invalid"}


@pytest.mark.parametrize("garbage", [b"x", b"{}", b"\x00", b'{"v":1}', b"\n{"])
def test_a_valid_envelope_followed_by_trailing_bytes_is_undecodable(garbage: bytes) -> None:
    refusal = _refusal(_raw(ABORTED) + garbage)

    assert isinstance(refusal, UndecodableFact)
    assert "trailing characters" in str(refusal)


# --- nothing but FactDecodeError --------------------------------------------------------------------


@pytest.mark.pure_python  # monkeypatches a module attribute that compiled code does not look up
@pytest.mark.parametrize("error", [OverflowError("int too big"), MemoryError(), RuntimeError("msgspec bug")])
def test_an_unforeseen_decoder_failure_is_refused_as_undecodable_not_raised(
    monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    class Failing:
        def decode(self, raw: bytes) -> FactEnvelope:
            raise error

    monkeypatch.setattr("schemas.codec._fact_decoder", Failing())

    refusal = _refusal(_raw(ABORTED))

    assert isinstance(refusal, UndecodableFact)
    assert type(error).__name__ in str(refusal)
