"""Properties of the decode edge (hypothesis): whatever the bytes, ``decode_fact`` returns an envelope or
raises a :class:`FactDecodeError`, and every envelope it returns encodes again, to JSON and to
MessagePack, into the same envelope.

Inputs: arbitrary bytes, and structure-aware mutations of valid envelopes from the demo generator, where
a value anywhere in the document is replaced by a hostile one of :mod:`schemas.bounds`' classes (integers
at and beyond int64, nesting at and beyond the limits, strings at and beyond the length limits, huge
arrays, unicode edge cases, duplicate keys) or the bytes are cut and spliced.
"""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from schemas import bounds
from schemas.codec import FactDecodeError, decode_fact, encode_fact
from schemas.facts import FactEnvelope
from tests.support.documents import mutate, paths, value_at
from tools.demo.generator import Workload

FUZZ_SETTINGS = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
REASONS = {"undecodable", "unsupported_version", "invalid", "oversized", "too_deep"}
SAMPLES: list[bytes] = [fact.value for fact in Workload(7, 30, producers=2, connections=2).facts()]
PLACEHOLDER = "\x00hostile\x00"
"""Stands in a document for raw JSON that ``msgspec.json.encode`` cannot write (escaped lone surrogates,
invalid UTF-8, nesting deeper than its own recursion limit): one of :data:`RAW_SNIPPETS` after encoding."""
RAW_SNIPPETS = [
    rb'"\ud800"',
    rb'"\udfff\ud800"',
    b'"\xed\xa0\x80"',
    b'"\xc0\xaf"',
    b'"\xff"',
    rb'"\u0000"',
    b"[" * 2_000 + b"]" * 2_000,
    b'{"k":' * 2_000 + b"0" + b"}" * 2_000,
]


def _decodes_or_refuses(raw: bytes) -> None:
    """The property: an envelope that encodes back into itself, or a typed refusal."""
    try:
        envelope = decode_fact(raw)
    except FactDecodeError as refusal:
        assert refusal.reason in REASONS
        event(refusal.reason)  # the outcome mix: pytest --hypothesis-show-statistics
        return
    event("decoded")
    assert decode_fact(encode_fact(envelope)) == envelope
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(envelope), type=FactEnvelope) == envelope


def _nested(depth: int, leaf: Any) -> Any:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


def _around(limit: int) -> st.SearchStrategy[int]:
    return st.sampled_from([limit - 1, limit, limit + 1])


hostile_ints = st.sampled_from(
    [bounds.INT64_MIN, bounds.INT64_MAX, bounds.INT64_MIN - 1, bounds.INT64_MAX + 1, 2**64 + 1, -(10**30), 10**400]
) | st.integers(min_value=-(2**70), max_value=2**70)
hostile_strings = st.one_of(
    st.builds(
        lambda length, char: char * length,
        st.sampled_from(
            [bounds.MAX_ID_CHARS, bounds.MAX_NAME_CHARS, bounds.MAX_PATH_CHARS, bounds.MAX_TEXT_CHARS]
        ).flatmap(_around),
        st.sampled_from(["x", "\x00", "é", "\U0001f600", "\ufeff", '"', "\\"]),
    ),
    st.text(max_size=30),
    st.just(PLACEHOLDER),
)
json_leaves = st.one_of(st.none(), st.booleans(), hostile_ints, st.floats(allow_nan=False), hostile_strings)
hostile_values = st.one_of(
    json_leaves,
    st.builds(_nested, _around(bounds.MAX_FREE_FORM_DEPTH), json_leaves),
    st.builds(
        lambda n, leaf: [leaf] * n,
        st.sampled_from([bounds.MAX_LIST_ITEMS + 1, 100_000]),
        st.none() | st.integers(-(2**70), 2**70) | st.text(max_size=8),
    ),
    st.recursive(
        json_leaves,
        lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
        max_leaves=6,
    ),
)


@FUZZ_SETTINGS
@given(st.binary(max_size=2_048))
def test_arbitrary_bytes_decode_to_an_envelope_that_encodes_or_are_refused(raw: bytes) -> None:
    _decodes_or_refuses(raw)


@st.composite
def hostile_documents(draw: st.DrawFn, *, duplicate_key: bool) -> bytes:
    """A valid envelope with a hostile value at a random place: replacing the value there, or (with
    ``duplicate_key``) as a repeated key before or after it, which msgspec resolves to the last one."""
    document = msgspec.json.decode(draw(st.sampled_from(SAMPLES)))
    value = draw(hostile_values)
    if duplicate_key:
        keys = [path for path in paths(document) if path and isinstance(path[-1], str)]
        path = draw(st.sampled_from(keys))
        original = msgspec.json.encode({path[-1]: value_at(document, path)})[1:-1]
        hostile = msgspec.json.encode({path[-1]: value})[1:-1]
        twice = draw(st.sampled_from([hostile + b"," + original, original + b"," + hostile]))
        raw = msgspec.json.encode(document).replace(original, twice, 1)
    else:
        raw = msgspec.json.encode(mutate(document, draw(st.sampled_from(paths(document))), "replace", value))
    return raw.replace(msgspec.json.encode(PLACEHOLDER), draw(st.sampled_from(RAW_SNIPPETS)))


@FUZZ_SETTINGS
@given(hostile_documents(duplicate_key=False))
def test_a_hostile_value_anywhere_in_a_valid_envelope_decodes_and_encodes_or_is_refused(raw: bytes) -> None:
    _decodes_or_refuses(raw)


@FUZZ_SETTINGS
@given(hostile_documents(duplicate_key=True))
def test_a_duplicate_key_with_a_hostile_value_decodes_and_encodes_or_is_refused(raw: bytes) -> None:
    _decodes_or_refuses(raw)


@FUZZ_SETTINGS
@given(
    first=st.sampled_from(SAMPLES),
    second=st.sampled_from(SAMPLES),
    cut=st.integers(min_value=0),
    splice=st.integers(min_value=0),
    insert=st.sampled_from([b"{", b"]", b'"', b"\\", b",", b"\x00", b"\xef\xbb\xbf", *RAW_SNIPPETS]),
)
def test_cut_and_spliced_envelopes_decode_and_encode_or_are_refused(
    first: bytes, second: bytes, cut: int, splice: int, insert: bytes
) -> None:
    at = cut % (len(first) + 1)
    _decodes_or_refuses(first[:at] + insert + second[splice % (len(second) + 1) :])
