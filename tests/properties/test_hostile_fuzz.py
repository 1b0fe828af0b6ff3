"""Structure-aware fuzzing of the containment boundary (``reducer.boundary``) with hypothesis.

Input: streams of envelope bytes. A stream starts with valid facts (a connection, a thread, a turn's
prerequisites) and goes on with facts drawn from the valid envelopes of ``tests.support.builders`` and
mutated structurally, one to three times each, at a node drawn from the whole JSON tree:

- nesting (8 to 100,000 levels of arrays or objects), integers at and past the signed 64-bit bounds
  (and 10**40, and 1e400), strings from empty to 200,000 characters, ids of hypothesis text, escaped lone
  surrogates, NUL and other edge characters;
- wrong types, extra keys, deleted keys and elements, a subtree copied elsewhere, huge arrays;
- byte-level damage: truncation, an inserted or flipped byte, a byte-order mark, duplicate keys, an
  empty value, a tombstone (``None``).

Each stream goes through :class:`reducer.boundary.PartitionReducer` (decode, reduce, row encoding,
changelog encoding, the record-size checks) in hypothesis-chosen batches, with hypothesis-chosen limits:
a record limit from 2 KB (so ``row_too_large`` and ``state_too_large`` happen with small facts) to the
default, small state budgets and connection tables. Properties:

1. no exception escapes, and every fact gets exactly one outcome: reduced, or refused with a known reason;
2. a refused fact leaves the state exactly as if it had never arrived: the same stream without the refused
   facts (same batches otherwise) gives the same rows, the same state and no refusal;
3. replay: the same input gives the same refusals, rows and state; and, with no batch-end rule able to
   fire (huge TTL and budget), the outcomes do not depend on the batch sizes either.

CI runs ``FUZZ_EXAMPLES`` examples per property (default 500: 1,000 examples, 3,000 streams, about
50,000 facts, in 15 s on an idle 2-core machine).
``FUZZ_EXAMPLES=2000000 pytest tests/properties/test_hostile_fuzz.py -s`` runs millions and prints how many
streams and facts each property saw.
"""

from __future__ import annotations

import copy
import itertools
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any, Final

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reducer.boundary import BatchResult, PartitionReducer
from reducer.limits import DEFAULT_LIMITS, Limits
from reducer.snapshot import snapshot
from schemas.codec import encode_fact
from schemas.facts import FactEnvelope
from tests.support import builders as b
from tests.support import documents
from tests.system.hostile import HOLE, REDUCED, Builder, encode, nested_arrays, nested_objects

FUZZ_EXAMPLES: Final = int(os.environ.get("FUZZ_EXAMPLES", "500"))
FUZZ_SETTINGS: Final = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    database=None if FUZZ_EXAMPLES > 10_000 else settings.default.database,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
REASONS: Final = frozenset(
    {
        "undecodable",
        "unsupported_version",
        "invalid",
        "oversized",
        "too_deep",
        "reducer_error",
        "row_unencodable",
        "row_too_large",
        "state_unencodable",
        "state_too_large",
    }
)
IDLE_TTL_MS: Final = 120_000
NOW_MS: Final = 1_750_000_000_000

# --- the valid envelopes mutations start from ---------------------------------------------------------


def _wire(env: FactEnvelope) -> dict[str, Any]:
    obj: dict[str, Any] = msgspec.json.decode(encode_fact(env))
    obj["observed_at_ms"] = NOW_MS
    return obj


PRELUDE: Final = [
    _wire(e)
    for e in (
        *b.review_prerequisites(),
        *b.turn_prerequisites(),
    )
]
"""A connection, threads and a turn's prerequisites: state for the mutated facts to touch."""

BASES: Final = [
    _wire(e)
    for e in (
        b.sample_initialize(connection_id=9),
        b.sample_thread_response("thread-1", request_id=2),
        b.sample_command_approval_request(41),
        b.sample_command_approval_request(42, item_id="item-2", network_approval_context={"host": "x"}),
        b.sample_server_response(41, "accept"),
        b.sample_server_request_aborted(42),
        b.sample_permissions_approval_request(51),
        b.sample_effective_permissions_response(51, permissions={"network": {"enabled": True}}),
        b.sample_file_change_approval_request(81),
        b.sample_turn_started("thread-2", "turn-2"),
        b.sample_turn_completed("thread-2", "turn-2", codex_error_info={"kind": "x"}),
        b.sample_error_response(3, "no_active_turn"),
        b.sample_turn_resolved_config(),
        b.sample_turn_token_usage(),
        b.sample_turn_diff_updated("+a\n-b\n"),
        *b.completed_command_item("thread-1"),
        *b.sample_completed_tool_items(),
        b.sample_guardian_review_fact(),
        b.sample_subagent_thread_started(),
        b.sample_compaction(),
        b.sample_skill_invoked([b.skill_invocation("s", "/skills/s/SKILL.md")]),
        b.sample_app_mentioned([b.app_invocation("c", "app", "explicit")]),
        b.sample_app_used(b.app_invocation("c", "app", "implicit")),
        b.sample_hook_run("PreToolUse", "user", "completed"),
        b.sample_plugin_used(),
        b.sample_plugin_state_changed("installed"),
    )
]

BIG_INTS: Final = (2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64 - 1, 2**64 + 1, 10**40)
DEPTHS: Final = (8, 64, 500, 5_000, 100_000)
LENGTHS: Final = (0, 1, 64, 255, 256, 1_024, 4_096, 65_536, 200_000)
EDGE_STRINGS: Final = ("\u0000", "\ufeff", "\uffff", "\U0001f600", "\u202e", "a\u0000b", " ", "\\", '"')
WRONG_VALUES: Final[tuple[Any, ...]] = (None, True, False, 0, -1, 1.5, "", "x", [], {}, [None], {"": None})
SPLICES: Final = (b'"\\ud800"', b'"\\udc00x"', b'"\\ud800\\udc00"', b"1e400", b"-0", b"1E2", b"0.0")


@st.composite
def mutated_fact(draw: st.DrawFn) -> bytes | None:
    """One fact: a valid envelope, structurally mutated (see the module docstring)."""
    obj = copy.deepcopy(draw(st.sampled_from(BASES)))
    splice: bytes | None = None
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        paths = [path for path in documents.paths(obj) if path]  # the root stays an envelope
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = documents.value_at(obj, path[:-1])
        step = path[-1]
        kind = draw(st.sampled_from(MUTATIONS))
        if kind in ("deep_arrays", "deep_objects", "big_int", "splice") and splice is None:
            parent[step] = HOLE
            if kind == "deep_arrays":
                splice = nested_arrays(draw(st.sampled_from(DEPTHS)))
            elif kind == "deep_objects":
                splice = nested_objects(draw(st.sampled_from(DEPTHS)))
            elif kind == "big_int":
                splice = str(draw(st.sampled_from(BIG_INTS))).encode()
            else:
                splice = draw(st.sampled_from(SPLICES))
        elif kind == "long_string":
            parent[step] = draw(st.sampled_from("xé\U0001f600")) * draw(st.sampled_from(LENGTHS))
        elif kind == "text":
            parent[step] = draw(st.one_of(st.text(max_size=40), st.sampled_from(EDGE_STRINGS)))
        elif kind == "wrong_type":
            parent[step] = copy.deepcopy(draw(st.sampled_from(WRONG_VALUES)))
        elif kind == "int":
            parent[step] = draw(
                st.one_of(st.integers(min_value=-(2**63), max_value=2**63 - 1), st.sampled_from(BIG_INTS))
            )
        elif kind == "extra_key" and isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = copy.deepcopy(draw(st.sampled_from(WRONG_VALUES)))
        elif kind == "delete":
            del parent[step]
        elif kind == "copy":
            source = draw(st.sampled_from(paths))
            parent[step] = copy.deepcopy(documents.value_at(obj, source))
        elif kind == "huge_array":
            parent[step] = list(range(draw(st.sampled_from((100, 10_000, 100_000)))))
            break  # the tree is now too large to walk again cheaply
        if kind == "long_string":
            break
    raw = msgspec.json.encode(obj)
    if splice is not None:  # a later mutation may have deleted the hole, or copied it
        raw = raw.replace(msgspec.json.encode(HOLE), splice)
    damage = draw(st.sampled_from(DAMAGE))
    if damage == "truncate":
        return raw[: draw(st.integers(min_value=0, max_value=len(raw)))]
    if damage == "insert":
        at = draw(st.integers(min_value=0, max_value=len(raw)))
        return raw[:at] + bytes([draw(st.integers(min_value=0, max_value=255))]) + raw[at:]
    if damage == "bom":
        return b"\xef\xbb\xbf" + raw
    if damage == "duplicate_key":
        return raw[:-1] + b',"v":1,"thread_id":"thread-2"}'
    if damage == "empty":
        return b""
    if damage == "tombstone":
        return None
    return raw


MUTATIONS: Final = (
    "deep_arrays",
    "deep_objects",
    "big_int",
    "splice",
    "long_string",
    "text",
    "wrong_type",
    "int",
    "extra_key",
    "delete",
    "copy",
    "huge_array",
)
DAMAGE: Final = ("none",) * 12 + ("truncate", "insert", "bom", "duplicate_key", "empty", "tombstone")


GROWING: Final = st.lists(
    st.builds(
        lambda request_id, item: encode(_wire(b.sample_command_approval_request(request_id, item_id=item))),
        st.integers(min_value=0, max_value=10**6),
        st.text(min_size=50, max_size=256),
    ),
    min_size=1,
    max_size=30,
)
"""Valid approval requests with new ids in one family: it grows until its record hits the limit."""


@st.composite
def streams(draw: st.DrawFn) -> list[bytes | None]:
    """The prelude, then 1-8 parts, each a valid fact, a mutated one, or a growing family's run."""
    one = st.one_of(st.sampled_from(BASES).map(encode), mutated_fact()).map(lambda fact: [fact])
    parts = draw(st.lists(st.one_of(one, one, GROWING), min_size=1, max_size=8))
    body = [fact for part in parts for fact in part]
    return [encode(obj) for obj in PRELUDE] + body


@st.composite
def cuts(draw: st.DrawFn, length: int) -> list[int]:
    """Batch boundaries: sorted positions in 1..length-1."""
    return sorted(draw(st.sets(st.integers(min_value=1, max_value=max(1, length - 1)), max_size=4)))


LIMITS: Final = st.builds(
    Limits,
    max_record_bytes=st.sampled_from((2_048, 6_000, 50_000, DEFAULT_LIMITS.max_record_bytes)),
    state_budget_bytes=st.sampled_from((4_096, 64_000, DEFAULT_LIMITS.state_budget_bytes)),
    max_connections=st.sampled_from((1, 2, DEFAULT_LIMITS.max_connections)),
)

# --- running a stream ------------------------------------------------------------------------------------


Run = tuple[list[tuple[int, str]], list[tuple[int, str, bytes]], dict[str, bytes]]
"""(refusals as (stream position, reason), rows as (stream position, family, value), final snapshot)."""
SEEN: Counter[str] = Counter()


def run_stream(
    stream: Sequence[bytes | None], batch_cuts: Sequence[int], limits: Limits, ttl_ms: int = IDLE_TTL_MS
) -> Run:
    """Reduce ``stream`` in the batches ``batch_cuts`` gives; property 1 is asserted on every batch."""
    reducer = PartitionReducer(idle_ttl_ms=ttl_ms, limits=limits)
    refusals: list[tuple[int, str]] = []
    rows: list[tuple[int, str, bytes]] = []
    bounds = [0, *[c for c in batch_cuts if 0 < c < len(stream)], len(stream)]
    for start, end in itertools.pairwise(bounds):
        batch = stream[start:end]
        result: BatchResult = reducer.run(batch)  # property 1: nothing escapes
        positions = [r.position for r in result.refused]
        assert len(set(positions)) == len(positions), f"a fact refused twice: {result.refused}"
        assert result.reduced + len(positions) == len(batch), (result.reduced, positions, len(batch))
        for refusal in result.refused:
            assert refusal.reason in REASONS, refusal
            assert 0 <= refusal.position < len(batch)
            refusals.append((start + refusal.position, refusal.reason))
            SEEN[refusal.reason] += 1
        refused = set(positions)
        for row in result.rows:
            assert row.position not in refused, f"a refused fact has a row: {row}"
            rows.append((start + row.position, row.family, row.value))
        SEEN["facts"] += len(batch)
        SEEN[REDUCED] += result.reduced
    SEEN["streams"] += 1
    return refusals, rows, snapshot(reducer.state)


def _without(
    stream: Sequence[bytes | None], batch_cuts: Sequence[int], drop: set[int]
) -> tuple[list[bytes | None], list[int]]:
    """``stream`` less the facts at ``drop``, with the batch boundaries moved accordingly."""
    kept = [fact for position, fact in enumerate(stream) if position not in drop]
    moved = sorted({c - sum(1 for p in drop if p < c) for c in batch_cuts})
    return kept, moved


def _rows_only(rows: list[tuple[int, str, bytes]]) -> list[tuple[str, bytes]]:
    return [(family, value) for _, family, value in rows]


# --- the properties --------------------------------------------------------------------------------------


@FUZZ_SETTINGS
@given(data=st.data(), stream=streams(), limits=LIMITS)
def test_every_fuzzed_fact_gets_one_outcome_and_a_refused_one_leaves_no_trace(
    data: st.DataObject, stream: list[bytes | None], limits: Limits
) -> None:
    """Properties 1 and 2."""
    batch_cuts = data.draw(cuts(len(stream)))
    refusals, rows, state = run_stream(stream, batch_cuts, limits)
    kept, moved = _without(stream, batch_cuts, {p for p, _ in refusals})
    clean_refusals, clean_rows, clean_state = run_stream(kept, moved, limits)
    assert clean_refusals == [], f"without the refused facts, others were refused: {clean_refusals}"
    assert _rows_only(clean_rows) == _rows_only(rows), "the refused facts changed the other facts' rows"
    assert clean_state == state, "the refused facts left a trace in the state"


@FUZZ_SETTINGS
@given(data=st.data(), stream=streams(), limits=LIMITS)
def test_replaying_fuzzed_facts_gives_the_same_outcomes_rows_and_state(
    data: st.DataObject, stream: list[bytes | None], limits: Limits
) -> None:
    """Property 3: the same input twice, and (no batch-end rule able to fire) any batching, agree."""
    batch_cuts = data.draw(cuts(len(stream)))
    first = run_stream(stream, batch_cuts, limits)
    assert run_stream(stream, batch_cuts, limits) == first, "the same input gave different results"
    unbounded = Limits(max_record_bytes=limits.max_record_bytes)
    one_batch = run_stream(stream, [], unbounded, ttl_ms=10**15)
    one_by_one = run_stream(stream, list(range(1, len(stream))), unbounded, ttl_ms=10**15)
    assert one_by_one[:2] == one_batch[:2], "refusals or rows depend on the batch sizes"
    assert one_by_one[2] == one_batch[2], "the state depends on the batch sizes"


@pytest.fixture(scope="module", autouse=True)
def _report_counts() -> Iterator[None]:
    """Print how many streams and facts the properties ran, and the outcomes (``-s`` shows it)."""
    SEEN.clear()
    yield
    print(f"\nhostile fuzz: {FUZZ_EXAMPLES} examples per property; {dict(SEEN)}")


def test_a_family_the_fast_pass_made_unencodable_is_refused_not_raised_in_careful_mode() -> None:
    """Found by the fuzzer (kept as a fixed example): a fact whose integer cannot be written to the
    changelog (``observed_at_ms`` = 2**64+1) is reduced in the fast pass; the next fact of its family
    crosses the growth bound, so careful mode encodes the family first. That must end in refusals, not
    an exception out of the boundary."""
    thread_start = _wire(b.sample_thread_response("thread-1", request_id=2))
    far = dict(thread_start, observed_at_ms=HOLE)
    stream = [
        *(encode(obj) for obj in PRELUDE),
        encode(thread_start),
        encode(far, str(2**64 + 1).encode()),
        encode(thread_start),
    ]
    limits = Limits(max_record_bytes=6_000, state_budget_bytes=4_096)
    refusals, _, _ = run_stream(stream, [len(PRELUDE)], limits)  # the three facts in a batch of their own
    assert refusals, "the fact with an unencodable integer was reduced"


def test_families_expired_in_a_batch_do_not_count_against_the_state_budget() -> None:
    """Found by test 12's oracle (which reduces a partition in one batch): 3,000 flood families (~1.9 MB,
    over a 1 MiB budget) go idle past the TTL, then 50 live families arrive in the same batch. Expiry
    evicts the flood; the budget must then see the ~30 KB left and evict nothing. A batch-size-independent
    outcome too: with the flood in a batch of its own, the 50 live families are kept."""
    builder = Builder(1)
    flood = [fact.value for fact in builder.thread_flood(NOW_MS, 3_000).facts]
    live = [encode(builder.approval(f"live-{n}", NOW_MS + 200_000, 1)) for n in range(50)]
    limits = Limits(state_budget_bytes=1024 * 1024)
    for batch_cuts in ([len(flood)], []):
        reducer = PartitionReducer(idle_ttl_ms=IDLE_TTL_MS, limits=limits)
        bounds = [0, *batch_cuts, len(flood) + len(live)]
        for start, end in itertools.pairwise(bounds):
            reducer.run([*flood, *live][start:end])
        kept = sum(1 for key in reducer.state.families if key.startswith("live-"))
        assert kept == 50, f"batches cut at {batch_cuts}: {kept} of 50 live families kept, drops {reducer.state.drops}"
