"""The hostile corpus: facts a buggy or hostile app-server could publish, each with the outcome the
containment contract (issue 11, ``reducer.boundary``) says it must have.

Every fact here is published the way such a producer would: raw bytes with a key on the ``facts`` topic
(``tests.system.workload.Publisher.send_raw``), never through ``FactPublisher``, which refuses some of
them at ``track_*`` time. A fact ends in exactly one *outcome*: ``reduced`` (its rows and state
committed), or dead-lettered to ``facts.dlq`` with a ``dlq.reason``. Some classes must also make the
processor count a *drop* (``budget_evicted_family``, ``connection_evicted``).

Each class (:data:`CLASSES`) names the outcomes allowed for each of its facts, the outcomes that must
occur at least once, and the drop it must cause. Classes with ``control=True`` are negative controls:
facts that look hostile but are valid (an id of ordinary length, the i64 bounds themselves, a shallow
free-form structure, unknown extra keys, ...), so a build that dead-letters everything odd fails too.

Builders start from the valid envelopes of ``tests.support.builders`` (their wire JSON), then change
them structurally; structures a JSON encoder cannot write (100,000 levels of nesting, integers past
64 bits, raw invalid UTF-8) are spliced in as bytes in place of a placeholder string.

Every fact carries the fact time it is given (``now_ms``, the time of the normal fact it is published
next to), so a hostile family lives as long as a normal one; only ``future_time`` lies about it.
Each unit (:class:`Unit`) is published contiguously: a family that must grow past the record limit
gets all its facts in a row.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from reducer.limits import DEFAULT_MAX_RECORD_BYTES
from schemas.codec import encode_fact
from schemas.facts import FactEnvelope
from tests.support.builders import (
    sample_command_approval_request,
    sample_error_response,
    sample_initialize,
    sample_plugin_metadata,
    sample_plugin_used,
    sample_server_request_aborted,
    sample_thread_response,
    sample_turn_completed,
)
from tests.support.builders import turn_prerequisites as builder_turn_prerequisites

REDUCED: Final = "reduced"
"""The outcome of a fact that was not dead-lettered: its rows and state were committed."""
DECODE_REASONS: Final = frozenset({"undecodable", "unsupported_version", "invalid", "oversized", "too_deep"})
HOLE: Final = "\x00hostile-hole\x00"
"""Placeholder string replaced by raw bytes after encoding (see the module docstring)."""
DEEP: Final = 100_000
"""Nesting depth of the deep-nesting classes (the issue's "JSON nested 100k deep")."""
YEAR_MS: Final = 365 * 24 * 3600 * 1000
FLOODS: Final = ("thread_flood", "connection_flood")


@dataclass(frozen=True)
class HostileClass:
    name: str
    what: str
    outcomes: frozenset[str]
    """Outcomes allowed for every fact of the class."""
    required: frozenset[str] = frozenset()
    """Outcomes that must occur at least once among the class's facts."""
    drop: str | None = None
    """A drop reason the processors must count at least once because of this class."""
    control: bool = False


def _cls(name: str, what: str, *outcomes: str, required: tuple[str, ...] | None = None, **kw: Any) -> HostileClass:
    """A class whose facts may end in ``outcomes``; all of them required unless ``required`` says which."""
    return HostileClass(name, what, frozenset(outcomes), frozenset(outcomes if required is None else required), **kw)


CLASSES: Final[dict[str, HostileClass]] = {
    c.name: c
    for c in (
        # --- structure the decoder must bound ---
        _cls("deep_nesting_free_form", "a free-form field (codexErrorInfo) nested 100,000 arrays deep", "too_deep"),
        _cls("deep_nesting_objects", "100,000 nested objects in an extra key of the fact", "too_deep"),
        _cls(
            "deep_nesting_top_level",
            "the whole value is 100,000 nested arrays: not an object, refused before any nesting is built",
            "undecodable",
        ),
        _cls("shallow_nesting", "control: a free-form field (codexErrorInfo) nested 16 deep", REDUCED, control=True),
        # --- integers outside signed 64 bits ---
        _cls("int_2_64_plus_1_typed", "observed_at_ms = 2**64+1", "invalid"),
        _cls("int_min_i64_minus_1_typed", "connection_id = -2**63-1", "invalid"),
        _cls("int_2_63_typed", "completed_at_ms = 2**63 (fits u64, not i64)", "invalid"),
        _cls("int_2_64_plus_1_free_form", "codexErrorInfo = 2**64+1 (would reach the changelog)", "invalid"),
        _cls("int_min_i64_minus_1_free_form", "-2**63-1 deep inside codexErrorInfo", "invalid"),
        _cls("int_i64_bounds", "control: 2**63-1 and -2**63 in free-form fields", REDUCED, control=True),
        _cls("huge_float", "1e400 in codexErrorInfo", "invalid"),
        # --- strings and ids beyond their limits ---
        _cls("long_thread_id", "a 200,000-character thread id (and key)", "invalid"),
        _cls("long_producer", "a 200,000-character producer", "invalid"),
        _cls("long_turn_id", "a 200,000-character turn id in an approval request", "invalid"),
        _cls("long_request_id", "a 200,000-character string request id", "invalid"),
        _cls("ordinary_ids", "control: 64-character ids everywhere", REDUCED, control=True),
        # --- sizes of what the processor produces ---
        _cls(
            "family_past_record_limit",
            "one thread with pending approval requests until its changelog record exceeds the record limit",
            REDUCED,
            "state_too_large",
            required=("state_too_large",),
        ),
        _cls(
            "row_past_record_limit",
            "a turn whose row is over the record limit (a 260 KB error, within the decode bounds)",
            REDUCED,
            "row_too_large",
            required=("row_too_large",),
        ),
        _cls("oversized", "a 1.2 MiB fact (valid JSON)", "oversized"),
        _cls(
            "huge_array_free_form",
            "100,000 elements in a free-form field the reducer never reads (an error's data): skipped",
            REDUCED,
            control=True,
        ),
        _cls(
            "huge_array_in_row",
            "256 connector ids of 256 characters in a plugin row (the most the decode bounds let a row copy)",
            REDUCED,
            control=True,
        ),
        # --- time ---
        _cls("future_time", "observed_at_ms 5 years ahead (must not expire the partition's families)", REDUCED),
        _cls("past_time", "observed_at_ms 0 and -1", REDUCED),
        # --- unicode ---
        _cls(
            "lone_surrogate",
            "an escaped lone surrogate (\\ud800) in a typed string",
            "undecodable",
            "invalid",
            required=(),
        ),
        _cls(
            "lone_surrogate_free_form",
            "an escaped lone surrogate in a free-form string",
            "undecodable",
            "invalid",
            required=(),
        ),
        _cls("invalid_utf8", "raw invalid UTF-8 inside a JSON string", "undecodable"),
        _cls("bom", "a UTF-8 byte-order mark before the JSON", "undecodable"),
        _cls("raw_control_char", "an unescaped NUL byte inside a JSON string", "undecodable"),
        _cls(
            "escaped_nul_and_noncharacters",
            "control: \\u0000, \\uffff, astral and RTL characters in ids",
            REDUCED,
            control=True,
        ),
        # --- shape ---
        _cls("duplicate_keys", "an envelope and a fact with duplicate keys (last wins, as in msgspec)", REDUCED),
        _cls("not_an_object", 'valid JSON that is not an object: [], "x", 42, null, true', "undecodable"),
        _cls("tombstone", "a record with no value", "undecodable"),
        _cls("empty_value", "an empty value", "undecodable"),
        _cls("garbage", "random bytes", "undecodable"),
        _cls("truncated", "a valid fact cut in half", "undecodable"),
        _cls("wrong_type", "connection_id as a string", "invalid"),
        _cls("unknown_kind", "a fact kind nobody knows", "invalid"),
        _cls("missing_fact", "an envelope without its fact", "invalid"),
        _cls("unsupported_version", "envelope version 2", "unsupported_version"),
        _cls("extra_keys", "control: unknown keys at every level", REDUCED, control=True),
        # --- floods (published before the normal traffic: the oldest state is what a bound evicts) ---
        _cls(
            "thread_flood",
            "many distinct thread ids from one producer, past PROCESSOR_STATE_BUDGET_BYTES",
            REDUCED,
            drop="budget_evicted_family",
        ),
        _cls(
            "connection_flood",
            "many distinct connections from one producer, past PROCESSOR_MAX_CONNECTIONS",
            REDUCED,
            drop="connection_evicted",
        ),
    )
}


@dataclass(frozen=True)
class HostileFact:
    cls: str
    key: bytes | None
    value: bytes | None


@dataclass
class Unit:
    """Facts published contiguously (one class)."""

    cls: str
    facts: list[HostileFact] = field(default_factory=list)


# --- wire helpers --------------------------------------------------------------------------------


def wire(
    env: FactEnvelope, *, now_ms: int, thread_id: str | None = None, producer: str | None = None
) -> dict[str, Any]:
    """The JSON object of a valid envelope, with the given time (and thread / producer), to mutate."""
    obj: dict[str, Any] = msgspec.json.decode(encode_fact(env))
    obj["observed_at_ms"] = now_ms
    if thread_id is not None:
        obj["thread_id"] = thread_id
    if producer is not None:
        obj["producer"] = producer
    return obj


def renamed(node: Any, old: str, new: str) -> Any:
    """``node`` with every string equal to ``old`` replaced by ``new``, at any depth (an id in every field
    that carries it). Builders decode what they build, so an id past its limit is put in afterwards."""
    if isinstance(node, dict):
        return {key: renamed(value, old, new) for key, value in node.items()}
    if isinstance(node, list):
        return [renamed(value, old, new) for value in node]
    return new if node == old else node


def encode(obj: Any, hole: bytes | None = None) -> bytes:
    """``obj`` as JSON; the placeholder :data:`HOLE` (a string somewhere in it) replaced by ``hole``."""
    raw = msgspec.json.encode(obj)
    if hole is None:
        return raw
    placeholder = msgspec.json.encode(HOLE)
    assert raw.count(placeholder) == 1, "exactly one hole"
    return raw.replace(placeholder, hole)


def nested_arrays(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def nested_objects(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


class Builder:
    """Builds the units of every class at a given fact time; ids are unique per builder (``tag``)."""

    def __init__(self, seed: int, *, tag: str = "h", max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> None:
        self.rng = random.Random(seed)
        self.tag = tag
        self.max_record_bytes = max_record_bytes
        self.producer = f"hostile-{tag}"
        self._serial = 0

    def thread(self, cls: str) -> str:
        self._serial += 1
        return f"hostile-{self.tag}-{cls}-{self._serial}"

    def fact(self, cls: str, key: str | bytes | None, value: bytes | None) -> HostileFact:
        k = key.encode() if isinstance(key, str) else key
        return HostileFact(cls, k, value)

    # --- envelopes the classes mutate -------------------------------------------------------------

    def thread_start(self, thread: str, now_ms: int, **thread_fields: Any) -> dict[str, Any]:
        return wire(sample_thread_response(thread, **thread_fields), now_ms=now_ms, producer=self.producer)

    def turn_completed(self, thread: str, now_ms: int, error_info: Any) -> dict[str, Any]:
        """``turn/completed`` of ``turn-<thread>`` with ``error_info`` as its free-form ``codexErrorInfo``."""
        obj = wire(sample_turn_completed(thread, f"turn-{thread}"), now_ms=now_ms, producer=self.producer)
        obj["fact"]["notification"]["params"]["turn"]["error"] = {
            "message": "turn failed",
            "codexErrorInfo": error_info,
        }
        return obj

    def error_response(self, thread: str, now_ms: int, data: Any) -> dict[str, Any]:
        obj = wire(sample_error_response(1, None, family=thread), now_ms=now_ms, producer=self.producer)
        obj["fact"]["error"]["data"] = data
        return obj

    def approval(
        self, thread: str, now_ms: int, request_id: int | str, *, turn_id: str = "turn-1", item_id: str = "item-1"
    ) -> dict[str, Any]:
        """A command approval request (any ids, within their limits or not)."""
        obj = wire(sample_command_approval_request(41, thread_id="thread-1"), now_ms=now_ms, producer=self.producer)
        obj["thread_id"] = thread
        obj["fact"]["request"]["id"] = request_id
        params = obj["fact"]["request"]["params"]
        params.update(threadId=thread, turnId=turn_id, itemId=item_id)
        return obj

    def plugin_used(self, thread: str, now_ms: int, connector_ids: list[str]) -> dict[str, Any]:
        plugin = sample_plugin_metadata()
        plugin["capability_summary"]["app_connector_ids"] = connector_ids
        context = {"thread_id": thread, "turn_id": f"turn-{thread}", "model_slug": "gpt-5"}
        return wire(sample_plugin_used(plugin=plugin, context=context), now_ms=now_ms, producer=self.producer)

    # --- the classes ----------------------------------------------------------------------------

    @staticmethod
    def single_classes() -> list[str]:
        """Every class but the floods, in :data:`CLASSES` order."""
        return [name for name in CLASSES if name not in FLOODS]

    def unit(self, cls: str, now_ms: int) -> Unit:
        """The facts of one class (not a flood) at fact time ``now_ms``."""
        build: Callable[[int], list[HostileFact]] = getattr(self, f"_{cls}")
        return Unit(cls, build(now_ms))

    def _one(self, cls: str, obj: dict[str, Any], hole: bytes | None = None) -> list[HostileFact]:
        key = obj.get("thread_id")
        return [self.fact(cls, key if isinstance(key, str) else self.thread(cls), encode(obj, hole))]

    def _deep_nesting_free_form(self, now_ms: int) -> list[HostileFact]:
        t = self.thread("deep")
        return self._one("deep_nesting_free_form", self.turn_completed(t, now_ms, HOLE), nested_arrays(DEEP))

    def _deep_nesting_objects(self, now_ms: int) -> list[HostileFact]:
        t = self.thread("deepobj")
        obj = self.thread_start(t, now_ms)
        obj["fact"]["extra"] = HOLE
        return self._one("deep_nesting_objects", obj, nested_objects(DEEP))

    def _deep_nesting_top_level(self, now_ms: int) -> list[HostileFact]:
        return [self.fact("deep_nesting_top_level", self.thread("deeptop"), nested_arrays(DEEP))]

    def _shallow_nesting(self, now_ms: int) -> list[HostileFact]:
        t = self.thread("shallow")
        return self._one("shallow_nesting", self.turn_completed(t, now_ms, HOLE), nested_arrays(16))

    def _int_2_64_plus_1_typed(self, now_ms: int) -> list[HostileFact]:
        obj = self.thread_start(self.thread("u65"), now_ms)
        obj["observed_at_ms"] = HOLE
        return self._one("int_2_64_plus_1_typed", obj, str(2**64 + 1).encode())

    def _int_min_i64_minus_1_typed(self, now_ms: int) -> list[HostileFact]:
        obj = self.thread_start(self.thread("i65"), now_ms)
        obj["fact"]["connection_id"] = HOLE
        return self._one("int_min_i64_minus_1_typed", obj, str(-(2**63) - 1).encode())

    def _int_2_63_typed(self, now_ms: int) -> list[HostileFact]:
        t = self.thread("u64")
        obj = wire(sample_server_request_aborted(41, thread_id=t), now_ms=now_ms, producer=self.producer)
        obj["fact"]["completed_at_ms"] = HOLE
        return self._one("int_2_63_typed", obj, str(2**63).encode())

    def _int_2_64_plus_1_free_form(self, now_ms: int) -> list[HostileFact]:
        t = self.thread("freeu65")
        return self._one("int_2_64_plus_1_free_form", self.turn_completed(t, now_ms, HOLE), str(2**64 + 1).encode())

    def _int_min_i64_minus_1_free_form(self, now_ms: int) -> list[HostileFact]:
        t = self.thread("freei65")
        hole = b'[1,{"x":[2,' + str(-(2**63) - 1).encode() + b"]}]"
        return self._one("int_min_i64_minus_1_free_form", self.turn_completed(t, now_ms, HOLE), hole)

    def _int_i64_bounds(self, now_ms: int) -> list[HostileFact]:
        t = self.thread("i64")
        info = {"max": 2**63 - 1, "min": -(2**63)}
        return self._one("int_i64_bounds", self.turn_completed(t, now_ms, info))

    def _huge_float(self, now_ms: int) -> list[HostileFact]:
        t = self.thread("float")
        return self._one("huge_float", self.turn_completed(t, now_ms, HOLE), b"[1e400]")

    def _long_thread_id(self, now_ms: int) -> list[HostileFact]:
        t = self.thread("longthread")
        return self._one("long_thread_id", renamed(self.thread_start(t, now_ms), t, t.ljust(200_000, "t")))

    def _long_producer(self, now_ms: int) -> list[HostileFact]:
        obj = self.thread_start(self.thread("longproducer"), now_ms)
        obj["producer"] = "p" * 200_000
        return self._one("long_producer", obj)

    def _long_turn_id(self, now_ms: int) -> list[HostileFact]:
        t = self.thread("longturn")
        return self._one("long_turn_id", self.approval(t, now_ms, 41, turn_id="u" * 200_000))

    def _long_request_id(self, now_ms: int) -> list[HostileFact]:
        t = self.thread("longrequest")
        return self._one("long_request_id", self.approval(t, now_ms, "r" * 200_000))

    def _ordinary_ids(self, now_ms: int) -> list[HostileFact]:
        t = self.thread("ordinary").ljust(64, "x")
        obj = self.approval(t, now_ms, "r" * 64, turn_id="u" * 64, item_id="i" * 64)
        obj["producer"] = "p" * 64
        return self._one("ordinary_ids", obj)

    def _family_past_record_limit(self, now_ms: int) -> list[HostileFact]:
        """Pending approval requests in one thread until the family's changelog record is over the limit,
        and about 10 % more: the first ones are reduced, the rest dead-lettered ``state_too_large``."""
        t = self.thread("growth")
        facts = [self.fact("family_past_record_limit", t, encode(self.thread_start(t, now_ms)))]
        long_id = "g" * 240
        # A pending review keeps the request's ids (turn, item, review, key): about 2 x 240 + 110 bytes.
        requests = int(1.1 * self.max_record_bytes / (2 * len(long_id) + 110))
        for request in range(1, requests + 1):
            obj = self.approval(t, now_ms, request, turn_id=f"{long_id}-turn", item_id=f"{long_id}-item-{request}")
            facts.append(self.fact("family_past_record_limit", t, encode(obj)))
        return facts

    def _row_past_record_limit(self, now_ms: int) -> list[HostileFact]:
        """A turn with every prerequisite, completed with a free-form error within the decode bounds
        (65,000 characters) but of 4-byte characters: the turn row it completes is over 256 KB, past the
        record limit of a run whose topics accept 256 KiB (test 12), while the fact is far under 1 MiB."""
        t = self.thread("bigrow")
        unit = [self.fact("row_past_record_limit", t, encode(obj)) for obj in self.turn_prerequisites(t, now_ms)]
        big = self.turn_completed(t, now_ms, "\U0001f600" * 65_000)
        return [*unit, self.fact("row_past_record_limit", t, encode(big))]

    def turn_prerequisites(self, thread: str, now_ms: int) -> list[dict[str, Any]]:
        """The Rust test's turn prerequisites (``thread-2``, ``turn-2``), on ``thread`` and this producer."""
        objs = [wire(env, now_ms=now_ms, producer=self.producer) for env in builder_turn_prerequisites()]
        return [renamed(renamed(obj, "thread-2", thread), "turn-2", f"turn-{thread}") for obj in objs]

    def _oversized(self, now_ms: int) -> list[HostileFact]:
        t = self.thread("oversized")
        return self._one("oversized", self.error_response(t, now_ms, ["x" * 100] * 12_000))

    def _huge_array_free_form(self, now_ms: int) -> list[HostileFact]:
        t = self.thread("bigarray")
        return self._one("huge_array_free_form", self.error_response(t, now_ms, list(range(100_000))))

    def _huge_array_in_row(self, now_ms: int) -> list[HostileFact]:
        t = self.thread("arrayrow")
        ids = [f"c{n}".ljust(256, "c") for n in range(256)]  # the most a row copies (decode bounds)
        return self._one("huge_array_in_row", self.plugin_used(t, now_ms, ids))

    def _future_time(self, now_ms: int) -> list[HostileFact]:
        t = self.thread("future")
        return self._one("future_time", self.thread_start(t, now_ms + 5 * YEAR_MS))

    def _past_time(self, now_ms: int) -> list[HostileFact]:
        return [
            *self._one("past_time", self.thread_start(self.thread("past"), 0)),
            *self._one("past_time", self.thread_start(self.thread("past"), -1)),
        ]

    def _lone_surrogate(self, now_ms: int) -> list[HostileFact]:
        obj = self.thread_start(self.thread("surrogate"), now_ms)
        obj["fact"]["response"]["response"]["model"] = HOLE
        return self._one("lone_surrogate", obj, b'"gpt-\\ud800"')

    def _lone_surrogate_free_form(self, now_ms: int) -> list[HostileFact]:
        t = self.thread("surrogatefree")
        return self._one("lone_surrogate_free_form", self.turn_completed(t, now_ms, HOLE), b'{"m":"\\udc00x"}')

    def _invalid_utf8(self, now_ms: int) -> list[HostileFact]:
        obj = self.thread_start(self.thread("utf8"), now_ms)
        obj["fact"]["response"]["response"]["model"] = HOLE
        return self._one("invalid_utf8", obj, b'"gpt-\xff\xfe\xc3"')

    def _bom(self, now_ms: int) -> list[HostileFact]:
        t = self.thread("bom")
        return [self.fact("bom", t, b"\xef\xbb\xbf" + encode(self.thread_start(t, now_ms)))]

    def _raw_control_char(self, now_ms: int) -> list[HostileFact]:
        obj = self.thread_start(self.thread("nul"), now_ms)
        obj["fact"]["response"]["response"]["model"] = HOLE
        return self._one("raw_control_char", obj, b'"gpt-\x00-5"')

    def _escaped_nul_and_noncharacters(self, now_ms: int) -> list[HostileFact]:
        t = self.thread("unicode")
        obj = renamed(self.thread_start(t, now_ms), t, t + "-\u0000-\uffff-\U0001f600-\u202e")
        obj["fact"]["response"]["response"]["model"] = "gpt-\u0000\ufeff"
        return self._one("escaped_nul_and_noncharacters", obj)

    def _duplicate_keys(self, now_ms: int) -> list[HostileFact]:
        t = self.thread("dup")
        obj = self.thread_start(t, now_ms)
        raw = encode(obj)
        # A second "v" and a second "producer" at the end of the envelope, a second "kind" in the fact.
        raw = raw[:-1] + b',"v":1,"producer":"' + self.producer.encode() + b'-dup"}'
        raw = raw.replace(b'"kind":"client_response"', b'"kind":"client_response","kind":"client_response"', 1)
        return [self.fact("duplicate_keys", t, raw)]

    def _not_an_object(self, now_ms: int) -> list[HostileFact]:
        return [self.fact("not_an_object", self.thread("notobj"), v) for v in (b"[]", b'"x"', b"42", b"null", b"true")]

    def _tombstone(self, now_ms: int) -> list[HostileFact]:
        return [self.fact("tombstone", self.thread("tombstone"), None)]

    def _empty_value(self, now_ms: int) -> list[HostileFact]:
        return [self.fact("empty_value", self.thread("empty"), b"")]

    def _garbage(self, now_ms: int) -> list[HostileFact]:
        return [self.fact("garbage", self.thread("garbage"), b"\xff" + self.rng.randbytes(300))]

    def _truncated(self, now_ms: int) -> list[HostileFact]:
        t = self.thread("truncated")
        raw = encode(self.thread_start(t, now_ms))
        return [self.fact("truncated", t, raw[: len(raw) // 2])]

    def _wrong_type(self, now_ms: int) -> list[HostileFact]:
        obj = self.thread_start(self.thread("wrongtype"), now_ms)
        obj["fact"]["connection_id"] = "seven"
        return self._one("wrong_type", obj)

    def _unknown_kind(self, now_ms: int) -> list[HostileFact]:
        obj = self.thread_start(self.thread("unknownkind"), now_ms)
        obj["fact"]["kind"] = "no_such_kind"
        return self._one("unknown_kind", obj)

    def _missing_fact(self, now_ms: int) -> list[HostileFact]:
        obj = self.thread_start(self.thread("missing"), now_ms)
        del obj["fact"]
        return self._one("missing_fact", obj)

    def _unsupported_version(self, now_ms: int) -> list[HostileFact]:
        obj = self.thread_start(self.thread("v2"), now_ms)
        obj["v"] = 2
        return self._one("unsupported_version", obj)

    def _extra_keys(self, now_ms: int) -> list[HostileFact]:
        obj = self.thread_start(self.thread("extra"), now_ms)
        obj["x_envelope"] = {"a": [1, 2]}
        obj["fact"]["x_fact"] = "y"
        obj["fact"]["response"]["response"]["thread"]["x_thread"] = None
        return self._one("extra_keys", obj)

    # --- floods ---------------------------------------------------------------------------------

    def thread_flood(self, now_ms: int, threads: int) -> Unit:
        """``threads`` families from one producer, each one thread with one pending approval request with
        long ids (about 600 bytes of state each)."""
        unit = Unit("thread_flood")
        for _ in range(threads):
            t = self.thread("flood")
            obj = self.approval(t, now_ms, 1, turn_id=f"{t}-turn".ljust(240, "u"), item_id=f"{t}-item".ljust(240, "i"))
            unit.facts.append(self.fact("thread_flood", t, encode(obj)))
        return unit

    def connection_flood(self, now_ms: int, connections: int) -> Unit:
        """``connections`` Initialize facts of one producer, each a new connection id (keyed, not broadcast)."""
        unit = Unit("connection_flood")
        for index in range(connections):
            obj = wire(sample_initialize(connection_id=1_000_000 + index), now_ms=now_ms, producer=self.producer)
            unit.facts.append(self.fact("connection_flood", f"{self.producer}-conn-{index}", encode(obj)))
        return unit
