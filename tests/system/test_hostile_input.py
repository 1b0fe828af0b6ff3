"""Test 12: hostile input never stops the pipeline (issue 11).

Two reducers on four partitions and a sender, under normal generated traffic, mixed with a fact (or a
burst) of every class of :mod:`tests.system.hostile`, each published as raw bytes with a key the way a
buggy or hostile app-server would. Before the normal traffic, two floods from one producer: thousands of
distinct thread ids (past a small ``PROCESSOR_STATE_BUDGET_BYTES``) and hundreds of connections (past a
small ``PROCESSOR_MAX_CONNECTIONS``); they go first because a bound evicts the longest-idle state, and
this test proves that hostile state is what goes, never the normal traffic's.

Checks, besides V1-V8, L, D (the oracle replays the same facts through the same boundary) and E1-E4:

- H1 every hostile fact has an outcome its class allows (``reduced`` or its dead-letter reason), every
  outcome a class requires happened, every drop a class must cause was counted by the processors;
- H2 the normal traffic is untouched: no normal fact dead-lettered, and for every normal family the rows
  are exactly the rows an oracle computes from the normal facts alone (same ids, same bytes, in order):
  a hostile fact changed nothing outside its own family (no mass expiry, no eviction of normal state);
- H3 no partition went longer than ``STALL_AFTER_S`` without a commit while it had facts to reduce, and
  no processor logged ``partition_stalled``;
- H4 every reducer's RSS, sampled every second, stayed under ``RSS_BUDGET_MIB``;
- X no process exited that the test did not stop (here: none but the witness).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec
import pytest

from schemas.headers import header
from tests.system import kafkaview
from tests.system.delivery import check_delivery
from tests.system.history import read_history
from tests.system.hostile import CLASSES, REDUCED, Builder, HostileFact, Unit
from tests.system.oracle import Oracle, build_oracle
from tests.system.procs import ServiceProcess
from tests.system.scenario import SENDER_ENV, SETTINGS, Run
from tests.system.verifier import Check, Row, check_rows, rows_from_records, sample
from tests.system.workload import generate
from tools.demo.generator import GeneratedFact, Workload

pytestmark = pytest.mark.kafka

THREADS = 500
RATE = 400.0
"""facts/s of the normal traffic: about 25 s of publishing."""
STALL_AFTER_S = 10.0
SETTINGS_HOSTILE = dataclasses.replace(
    SETTINGS,
    state_budget_bytes=1024 * 1024,
    max_connections=32,
    stall_after_s=STALL_AFTER_S,
    max_message_bytes=256 * 1024,
)
"""Events and changelog topics accepting 256 KiB records, so the record limit is 252 KiB: a family reaches
it with ~440 pending approval requests, and a turn row with an error of 65,000 four-byte characters (within
the decode bounds) passes it. A state budget of 1 MiB per partition: ~50 times the normal traffic's state
(about 20 KB per partition), four times the largest family the record limit allows, and below what the
thread flood builds (~1.6 MB per partition)."""
FLOOD_THREADS = 10_000
FLOOD_CONNECTIONS = 400
RSS_BUDGET_MIB = 256
"""Every reducer's resident memory must stay under this (they take 35-90 MiB in this test: 47 and 90 MiB
at most in the run of docs/reliability.md)."""


async def test_hostile_facts_of_every_class_are_contained_and_normal_rows_arrive_exactly_once(
    system_run: Callable[..., Awaitable[Run]],
) -> None:
    run = await system_run(threads=THREADS, settings=SETTINGS_HOSTILE, hostile_classes=len(CLASSES))
    endpoint = run.start_endpoint()
    facts = generate(Workload(seed=run.seed, threads=THREADS, concurrency=32))
    times = [_observed_at(f) for f in facts]
    builder = Builder(run.seed, tag=f"{run.seed:x}", max_record_bytes=run.settings.limits().max_record_bytes)
    await run.setup(big_facts=True)
    reducers = [run.start_reducer("reducer-1"), run.start_reducer("reducer-2")]
    run.start_sender(endpoint.url, **SENDER_ENV)
    rss: dict[str, int] = {}
    sampler = asyncio.get_running_loop().create_task(_sample_rss(run, rss))
    try:
        await _both_hold_partitions(run, reducers)
        sent: list[tuple[HostileFact, asyncio.Future[Any]]] = []
        # The floods first, a little before the normal traffic's first fact time (see the module docstring).
        for unit in (
            builder.connection_flood(times[0] - 2_000, FLOOD_CONNECTIONS),
            builder.thread_flood(times[0] - 1_000, FLOOD_THREADS),
        ):
            sent += await _send(run, unit)
        await run.publisher.flush_raw()
        publish_started = run.history.now()
        run.publish_in_background(facts, rate=RATE, label="normal traffic")
        # One unit of every other class, spread over the publishing, at the fact time of the normal
        # traffic of that moment.
        names = Builder.single_classes()
        spacing = 0.8 * len(facts) / RATE / len(names)
        for name in names:
            await asyncio.sleep(spacing)
            index = min(len(times) - 1, int((run.history.now() - publish_started) * RATE))
            sent += await _send(run, builder.unit(name, times[index]))
        await run.publisher.flush_raw()
        where = [(fact, (meta.partition, meta.offset)) for fact, future in sent for meta in [future.result()]]
        run.history.write("hostile_sent", facts=len(where), classes=dict(Counter(f.cls for f, _ in where)))

        verdict = await run.verify(sender=True, v8=True)
        drained_at = run.history.now()
    finally:
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)
    assert run.oracle is not None
    sender_dlq = await kafkaview.read_all(run.bootstrap, run.events_dlq)
    checks, figures = check_delivery(run.oracle, endpoint.requests, sender_dlq)
    for check in checks:
        verdict.add(check)
    dlq = {
        (int(header(r.headers, "dlq.source.partition") or -1), int(header(r.headers, "dlq.source.offset") or -1)): (
            header(r.headers, "dlq.reason") or ""
        )
        for r in await kafkaview.read_all(run.bootstrap, run.facts_dlq)
    }
    drops = _drops(run.procs.all)
    h1, outcomes = check_hostile_outcomes(where, dlq, drops)
    verdict.add(h1)
    facts_records = await kafkaview.read_all(run.bootstrap, run.facts)
    hostile_at = {position for _, position in where}
    normal = [r for r in facts_records if (r.partition, r.offset) not in hostile_at]
    clean = build_oracle(
        run.facts, run.partitions, normal, idle_ttl_ms=run.settings.idle_ttl_ms, limits=run.settings.limits()
    )
    events = rows_from_records(await kafkaview.read_all(run.bootstrap, run.events))
    verdict.add(check_normal_traffic_untouched(clean, events, dlq, {(r.partition, r.offset) for r in normal}))
    commits = [line for line in read_history(run.history.path) if line["ev"] == "commit"]
    stalled_logs = [e for p in run.procs.all for e in p.events if e.get("event") == "partition_stalled"]
    h3, gaps = check_no_stall(commits, publish_started, drained_at, STALL_AFTER_S, stalled_logs)
    verdict.add(h3)
    verdict.add(check_rss(rss, RSS_BUDGET_MIB))
    for check in verdict.checks[-(len(checks) + 4) :]:
        run.history.write("check", name=check.name, ok=check.ok, detail=check.detail)

    for name, value in figures.items():
        run.history.figure(name, value)
    run.history.figure("hostile_facts", len(where))
    run.history.figure("normal_facts", len(normal))
    run.history.figure("normal_rows", clean.total_rows)
    run.history.figure("max_commit_gap_s", round(max(gaps.values(), default=0.0), 2), "s")
    for proc, kib in sorted(rss.items()):
        run.history.figure(f"rss_max_mib_{proc}", round(kib / 1024, 1), "MiB")
    for reason, count in sorted(drops.items()):
        run.history.figure(f"drops_{reason}", count)
    run.history.write("hostile_outcomes", per_class={c: dict(o) for c, o in sorted(outcomes.items())})
    print(f"hostile outcomes per class: { {c: dict(o) for c, o in sorted(outcomes.items())} }")
    print(f"drops: {drops}; RSS max (KiB): {rss}; commit gaps (s): {gaps}")
    run.assert_ok(verdict)


# --- the checks --------------------------------------------------------------------------------------


def check_hostile_outcomes(
    where: Sequence[tuple[HostileFact, tuple[int, int]]], dlq: dict[tuple[int, int], str], drops: Counter[str]
) -> tuple[Check, dict[str, Counter[str]]]:
    """H1; also returns the outcomes per class (for the figures)."""
    outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    problems: list[str] = []
    for fact, position in where:
        outcome = dlq.get(position, REDUCED)
        outcomes[fact.cls][outcome] += 1
        if outcome not in CLASSES[fact.cls].outcomes:
            problems.append(f"{fact.cls} at {position}: {outcome}, allowed {sorted(CLASSES[fact.cls].outcomes)}")
    for cls in CLASSES.values():
        missing = [o for o in sorted(cls.required) if not outcomes[cls.name][o]]
        if missing:
            problems.append(f"{cls.name}: no fact ended {missing} ({dict(outcomes[cls.name])})")
        if cls.drop is not None and not drops[cls.drop]:
            problems.append(f"{cls.name}: no drop {cls.drop!r} counted (drops: {dict(drops)})")
    detail = sample(problems) if problems else f"{len(where)} hostile facts of {len(outcomes)} classes as expected"
    return Check("H1 every hostile fact has its class's outcome", not problems, detail), outcomes


def check_normal_traffic_untouched(
    clean: Oracle, events: Sequence[Row], dlq: dict[tuple[int, int], str], normal: set[tuple[int, int]]
) -> Check:
    """H2: see the module docstring. ``clean`` is the oracle of the normal facts alone."""
    problems = [f"normal fact {p} dead-lettered ({dlq[p]})" for p in sorted(set(dlq) & normal)]
    families = set(clean.rows_by_family)
    seen = [row for row in events if row.family in families]
    for check in check_rows(clean, seen):
        if not check.ok:
            problems.append(f"{check.name}: {check.detail}")
    return Check(
        "H2 normal families' rows equal those of the normal facts alone",
        not problems,
        sample(problems) if problems else f"{clean.total_rows} rows of {len(families)} normal families",
    )


def check_no_stall(
    commits: Sequence[dict[str, Any]], start: float, end: float, limit_s: float, stalled_logs: Sequence[Any]
) -> tuple[Check, dict[int, float]]:
    """H3: per partition, the longest gap between commits from ``start`` (the normal traffic's first
    publish) to its last commit; every partition has facts to reduce all along, so a gap is a stall."""
    times: dict[int, list[float]] = defaultdict(list)
    for line in commits:
        if start <= line["t"] <= end and line.get("partition") is not None:
            times[int(line["partition"])].append(line["t"])
    gaps = {
        p: max((b - a for a, b in itertools.pairwise([start, *sorted(ts)])), default=0.0)
        for p, ts in sorted(times.items())
    }
    problems = [f"p{p}: {gap:.1f} s without a commit" for p, gap in gaps.items() if gap > limit_s]
    problems += [f"{e.get('event')} logged for partition {e.get('partition')}" for e in stalled_logs]
    return Check(
        f"H3 no partition without a commit for more than {limit_s:.0f} s",
        not problems,
        sample(problems)
        if problems
        else f"longest gap per partition (s): { {p: round(g, 2) for p, g in gaps.items()} }",
    ), gaps


def check_rss(rss_kib: dict[str, int], budget_mib: int) -> Check:
    """H4: the largest RSS sample of each reducer under the budget."""
    over = [f"{proc}: {kib / 1024:.0f} MiB" for proc, kib in sorted(rss_kib.items()) if kib > budget_mib * 1024]
    return Check(
        f"H4 reducer RSS under {budget_mib} MiB",
        bool(rss_kib) and not over,
        sample(over) if over else f"max RSS (MiB): { {p: round(k / 1024) for p, k in sorted(rss_kib.items())} }",
    )


# --- helpers ------------------------------------------------------------------------------------------


def _observed_at(fact: GeneratedFact) -> int:
    return int(msgspec.json.decode(fact.value)["observed_at_ms"])


async def _send(run: Run, unit: Unit) -> list[tuple[HostileFact, asyncio.Future[Any]]]:
    return [(f, await run.publisher.send_raw(f.key, f.value, kind=f"hostile:{f.cls}")) for f in unit.facts]


async def _both_hold_partitions(run: Run, reducers: list[ServiceProcess], within_s: float = 60.0) -> None:
    """Wait until every reducer holds partitions (the group settled), so the run starts without a rebalance."""
    deadline = asyncio.get_running_loop().time() + within_s
    while not all(r.owned_at(run.history.now()) for r in reducers):
        assert all(r.alive() for r in reducers), "a reducer exited before joining"
        assert asyncio.get_running_loop().time() < deadline, "the reducers did not share the partitions"
        await asyncio.sleep(0.2)


async def _sample_rss(run: Run, peak: dict[str, int]) -> None:
    """Every second, each running reducer's RSS; keeps the largest per process, and writes every sample."""
    while True:
        for proc in run.procs.running("services.processor"):
            kib = proc.rss_kib()
            if kib is not None:
                peak[proc.name] = max(peak.get(proc.name, 0), kib)
                run.history.write("rss", proc=proc.name, kib=kib)
        await asyncio.sleep(1.0)


def _drops(procs: Sequence[ServiceProcess]) -> Counter[str]:
    """Drops the processors counted (``facts_dropped_by_rules``, logged after each committed transaction)."""
    total: Counter[str] = Counter()
    for proc in procs:
        for event in proc.events:
            if event.get("event") == "facts_dropped_by_rules":
                total.update(event.get("drops") or {})
    return total
