"""Properties of the reducer over whole fact streams (hypothesis).

Streams come from two sources: the demo generator with hypothesis-chosen seeds and sizes (realistic,
every fact kind, many families interleaved), and hypothesis-built lists of ``tests.support.builders``
facts (small vocabulary, adversarial orders: answers before requests, duplicates, reused ids).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reducer import changelog_records, enforce_caps, expire, family_key, initial_state, reduce, restore, snapshot
from reducer.context import connection_key
from reducer.expiry import FamilyCaps, IdleIndex
from schemas.codec import decode_fact, encode_row
from schemas.facts import (
    AppMentioned,
    AppUsed,
    FactEnvelope,
    HookRun,
    Initialize,
    PluginStateChanged,
    PluginUsed,
    SkillInvoked,
)
from schemas.state import PartitionState
from tests.support import builders as b
from tools.demo.generator import Workload

PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- streams --------------------------------------------------------------------------------------


@st.composite
def generated_streams(draw: st.DrawFn) -> list[FactEnvelope]:
    workload = Workload(
        draw(st.integers(min_value=0, max_value=2**32)),
        draw(st.integers(min_value=1, max_value=12)),
        producers=draw(st.integers(min_value=1, max_value=3)),
        connections=draw(st.integers(min_value=1, max_value=2)),
        concurrency=draw(st.integers(min_value=1, max_value=6)),
    )
    return [decode_fact(fact.value) for fact in workload.facts()]


THREADS = ("thread-1", "thread-2")
ITEMS = ("item-1", "item-2")
REQUEST_IDS: tuple[int | str, ...] = (1, 2, 3, "1")
DECISIONS: tuple[Any, ...] = (
    "accept",
    "acceptForSession",
    "decline",
    "cancel",
    {"acceptWithExecpolicyAmendment": {"execpolicy_amendment": ["ls"]}},
    {"applyNetworkPolicyAmendment": {"network_policy_amendment": {"host": "x", "action": "deny"}}},
)


@st.composite
def builder_fact(draw: st.DrawFn) -> FactEnvelope:
    thread = draw(st.sampled_from(THREADS))
    item = draw(st.sampled_from(ITEMS))
    request_id = draw(st.sampled_from(REQUEST_IDS))
    status = draw(st.sampled_from(["completed", "failed", "declined", "inProgress"]))
    at = draw(st.integers(min_value=900, max_value=1100))
    match draw(st.integers(min_value=0, max_value=11)):
        case 0:
            return b.sample_thread_response(thread, request_id=request_id)
        case 1:
            return b.sample_turn_started(thread)
        case 2:
            return b.sample_item_started(
                b.sample_command_item(item, status="inProgress"), thread_id=thread, started_at_ms=at
            )
        case 3:
            return b.sample_item_completed(
                b.sample_command_item(item, status=status), thread_id=thread, completed_at_ms=at
            )
        case 4:
            return b.sample_command_approval_request(
                request_id,
                thread_id=thread,
                item_id=item,
                started_at_ms=at,
                approval_id=draw(st.sampled_from([None, "approval-1"])),
                network_approval_context=draw(st.sampled_from([None, {"host": "x", "protocol": "https"}])),
            )
        case 5:
            return b.sample_server_response(
                request_id, draw(st.sampled_from(DECISIONS)), thread_id=thread, completed_at_ms=at
            )
        case 6:
            return b.sample_server_request_aborted(request_id, thread_id=thread, completed_at_ms=at)
        case 7:
            return b.sample_permissions_approval_request(request_id, thread_id=thread, started_at_ms=at)
        case 8:
            permissions = draw(st.sampled_from([None, {"network": {"enabled": True}}]))
            scope = draw(st.sampled_from(["turn", "session"]))
            return b.sample_effective_permissions_response(
                request_id, permissions=permissions, scope=scope, thread_id=thread
            )
        case 9:
            return b.sample_guardian_review_completed(
                thread_id=thread,
                target_item_id=draw(st.sampled_from([None, item])),
                status=draw(st.sampled_from(["inProgress", "approved", "denied", "timedOut", "aborted"])),
                completed_at_ms=at,
            )
        case 10:
            return b.sample_file_change_approval_request(
                request_id, thread_id=thread, item_id=item, grant_root=draw(st.sampled_from([None, "/tmp"]))
            )
        case _:
            return b.sample_subagent_thread_started(f"{thread}-sub", parent_thread_id=thread, family=thread)


@st.composite
def builder_streams(draw: st.DrawFn) -> list[FactEnvelope]:
    return [b.sample_initialize(), *draw(st.lists(builder_fact(), max_size=40))]


any_stream = st.one_of(generated_streams(), builder_streams())

# --- helpers --------------------------------------------------------------------------------------


def run_bytes(facts: Iterable[FactEnvelope], state: PartitionState | None = None) -> tuple[PartitionState, list[bytes]]:
    state = initial_state() if state is None else state
    out: list[bytes] = []
    for fact in facts:
        state, rows = reduce(state, fact)
        out.extend(encode_row(row) for row in rows)
    return state, out


def fresh(facts: list[FactEnvelope]) -> list[FactEnvelope]:
    """Independent copies: the reducer must not rely on (or mutate) the fact objects it is given."""
    return [decode_fact(msgspec.json.encode(fact)) for fact in facts]


def is_broadcast(fact: FactEnvelope) -> bool:
    return isinstance(fact.fact, Initialize)


STATELESS_FACTS = (SkillInvoked, AppMentioned, AppUsed, HookRun, PluginUsed, PluginStateChanged)


def refreshes_idle_time(fact: FactEnvelope) -> bool:
    """Every fact of a family counts as activity; broadcasts (Initialize) belong to no family."""
    return not is_broadcast(fact)


# --- determinism ----------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(any_stream)
def test_same_facts_give_the_same_row_bytes_and_the_same_snapshot(facts: list[FactEnvelope]) -> None:
    first_state, first_rows = run_bytes(fresh(facts))
    second_state, second_rows = run_bytes(fresh(facts))

    assert first_rows == second_rows
    assert snapshot(first_state) == snapshot(second_state)


# --- family isolation -----------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(any_stream, st.randoms(use_true_random=False))
def test_each_family_gets_the_rows_it_gets_alone_under_any_interleaving(
    facts: list[FactEnvelope], rng: random.Random
) -> None:
    broadcast = [fact for fact in facts if is_broadcast(fact)]
    families: dict[str, list[FactEnvelope]] = defaultdict(list)
    for fact in facts:
        if not is_broadcast(fact):
            families[family_key(fact)].append(fact)

    alone = {key: run_bytes([*broadcast, *own])[1] for key, own in families.items()}

    # Any merge that keeps each family's own order, after the broadcast facts.
    queues = {key: list(own) for key, own in families.items()}
    state, _ = run_bytes(broadcast)
    together: dict[str, list[bytes]] = defaultdict(list)
    while queues:
        key = rng.choice(sorted(queues))
        fact = queues[key].pop(0)
        if not queues[key]:
            del queues[key]
        state, rows = reduce(state, fact)
        together[key].extend(encode_row(row) for row in rows)

    assert {key: rows for key, rows in together.items() if rows} == {key: rows for key, rows in alone.items() if rows}


# --- snapshot / restore ---------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(any_stream, st.floats(min_value=0, max_value=1))
def test_snapshot_and_restore_at_any_point_gives_the_same_rows(facts: list[FactEnvelope], where: float) -> None:
    cut = int(where * len(facts))
    _, uninterrupted = run_bytes(fresh(facts))

    state, before = run_bytes(fresh(facts[:cut]))
    restored = restore(snapshot(state).items())
    assert snapshot(restored) == snapshot(state)
    _, after = run_bytes(fresh(facts[cut:]), restored)

    assert before + after == uninterrupted


def _processor_run(
    facts: list[FactEnvelope], batch_sizes: list[int], idle_ttl_ms: int, crash_after: int | None
) -> list[bytes]:
    """Batches like the processor: reduce, cap, expire, append changelog records; optionally crash and restore."""
    state = initial_state()
    log: list[tuple[str, bytes | None]] = []
    out: list[bytes] = []
    position, batch = 0, 0
    sizes = iter(batch_sizes)
    while position < len(facts):
        size = next(sizes, 7)
        chunk = facts[position : position + size]
        position += len(chunk)
        dirty_families: set[str] = set()
        dirty_connections: set[str] = set()
        for fact in chunk:
            if isinstance(fact.fact, Initialize):
                dirty_connections.add(connection_key(fact.producer, fact.fact.connection_id))
            else:
                dirty_families.add(family_key(fact))
            state, rows = reduce(state, fact)
            out.extend(encode_row(row) for row in rows)
        enforce_caps(state, dirty_families, FamilyCaps(pending_reviews=3, started_at_ms=3, summaries=3))
        evicted = expire(state, idle_ttl_ms)
        log.extend(changelog_records(state, sorted(dirty_families | set(evicted)), sorted(dirty_connections)))
        batch += 1
        if batch == crash_after:
            state = restore(log)
    return out


@PROPERTY_SETTINGS
@given(
    generated_streams(),
    st.lists(st.integers(min_value=1, max_value=40), max_size=30),
    st.integers(min_value=0, max_value=3_000),
    st.integers(min_value=1, max_value=30),
)
def test_restoring_from_the_changelog_after_any_batch_gives_the_same_rows(
    facts: list[FactEnvelope], batch_sizes: list[int], idle_ttl_ms: int, crash_after: int
) -> None:
    expected = _processor_run(fresh(facts), batch_sizes, idle_ttl_ms, crash_after=None)

    assert _processor_run(fresh(facts), batch_sizes, idle_ttl_ms, crash_after=crash_after) == expected


# --- expiry ---------------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(generated_streams(), st.integers(min_value=0, max_value=5_000), st.randoms(use_true_random=False))
def test_expire_never_evicts_a_family_with_state_that_had_a_fact_within_the_ttl(
    facts: list[FactEnvelope], idle_ttl_ms: int, rng: random.Random
) -> None:
    state = initial_state()
    last_fact_ms: dict[str, int] = {}
    for fact in facts:
        state, _ = reduce(state, fact)
        if refreshes_idle_time(fact):
            key = family_key(fact)
            last_fact_ms[key] = max(last_fact_ms.get(key, 0), fact.observed_at_ms)
        if rng.random() < 0.2:
            holding = {key for key, family in state.families.items() if not family.is_empty()}
            evicted = expire(state, idle_ttl_ms)
            cutoff = state.watermark_ms - idle_ttl_ms
            for key in evicted:
                assert key not in holding or last_fact_ms[key] < cutoff, f"{key} had a fact within the TTL"
            for key in holding - set(evicted):
                assert key in state.families


@PROPERTY_SETTINGS
@given(
    any_stream,
    st.lists(st.integers(min_value=0, max_value=4_000), min_size=1, max_size=60),
    st.lists(st.integers(min_value=1, max_value=25), max_size=30),
    st.integers(min_value=0, max_value=3_000),
    st.integers(min_value=0, max_value=30),
)
def test_the_idle_index_evicts_exactly_what_a_full_scan_evicts_after_every_batch(
    facts: list[FactEnvelope], times: list[int], batch_sizes: list[int], idle_ttl_ms: int, rebuild_at: int
) -> None:
    """The processor's ``IdleIndex`` against ``expire()``: same families, same state, same counts.

    Fact times are re-drawn (out of order, repeated, going back) and some facts lose their thread id
    (unrouted families, refreshed by nothing but their own facts); at one batch the indexed state is
    rebuilt from its snapshot with a new index, as after a restart.
    """
    stamped = [
        msgspec.structs.replace(
            fact,
            observed_at_ms=times[index % len(times)] + 100 * index,
            thread_id=None if times[index % len(times)] % 7 == 0 else fact.thread_id,
        )
        for index, fact in enumerate(fresh(facts))
    ]
    scanned, indexed = initial_state(), initial_state()
    index = IdleIndex(indexed)
    sizes = iter(batch_sizes)
    position, batch = 0, 0
    while position < len(stamped):
        chunk = stamped[position : position + next(sizes, 5)]
        position += len(chunk)
        touched = {family_key(fact) for fact in chunk if not isinstance(fact.fact, Initialize)}
        for fact in chunk:
            scanned, scanned_rows = reduce(scanned, fact)
            indexed, indexed_rows = reduce(indexed, fact)
            assert [encode_row(r) for r in indexed_rows] == [encode_row(r) for r in scanned_rows]
        expected = expire(scanned, idle_ttl_ms)
        assert sorted(index.expire(indexed, idle_ttl_ms, touched)) == sorted(expected)
        assert snapshot(indexed) == snapshot(scanned)
        assert indexed.drops == scanned.drops
        batch += 1
        if batch == rebuild_at:
            drops = indexed.drops
            indexed = restore(changelog_records(indexed, sorted(indexed.families), sorted(indexed.connections)))
            indexed.drops = drops
            index = IdleIndex(indexed)


@PROPERTY_SETTINGS
@given(any_stream, st.randoms(use_true_random=False))
def test_expire_with_a_ttl_longer_than_the_stream_never_changes_the_rows(
    facts: list[FactEnvelope], rng: random.Random
) -> None:
    """Only empty families go, and an empty family is the same as no family."""
    _, expected = run_bytes(fresh(facts))
    state = initial_state()
    rows: list[bytes] = []
    for fact in fresh(facts):
        state, out = reduce(state, fact)
        rows.extend(encode_row(row) for row in out)
        if rng.random() < 0.3:
            expire(state, idle_ttl_ms=10**12)

    assert rows == expected
