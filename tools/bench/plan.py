"""How big each case is in each mode: ``full`` (the published run), ``quick`` (about a minute), ``smoke``."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Final

CASES: Final = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8")


@dataclass(frozen=True)
class Plan:
    mode: str
    repeats: int = 3
    # Workload (tools.demo.generator.Workload): one "copy" per repeat, each a fresh seed, later in fact time.
    threads: int = 5000
    concurrency: int = 1000
    turns_per_thread: tuple[int, int] = (2, 6)
    items_per_turn: tuple[int, int] = (0, 2)
    seed: int = 7
    partitions: int = 4
    # B3: seconds of paced produce per run; the first `latency_warmup_s` of each run are not counted.
    latency_seconds: float = 15.0
    latency_warmup_s: float = 1.0
    # B5: facts of the long stream, its open-family cap, and the idle TTL (fact time) that lets threads finish.
    memory_facts: int = 1_500_000
    memory_concurrency: int = 2000
    memory_idle_ttl_ms: int = 5 * 60 * 1000
    # B4: at most this many rows per run (None: every row of the copy).
    sender_rows: int | None = 20_000
    # B6: families in the changelog partition.
    restore_sizes: tuple[int, ...] = (10_000, 100_000)
    # B7: (instances, partitions per instance).
    scaling: tuple[tuple[int, int], ...] = ((1, 1), (1, 2), (1, 4), (2, 1), (2, 2), (2, 4))
    # B8: also measure quix-streams' latency at B3's rate (paced runs of `latency_seconds`).
    peer_latency: bool = True
    # B1: the replay CLI end to end.
    replay: bool = True
    # Profile a case whose target is missed (an extra run under cProfile).
    profile_misses: bool = True
    cases: tuple[str, ...] = field(default=CASES)


FULL: Final = Plan(mode="full")
QUICK: Final = Plan(
    mode="quick",
    threads=400,
    concurrency=100,
    latency_seconds=3.0,
    latency_warmup_s=0.5,
    memory_facts=40_000,
    memory_concurrency=200,
    memory_idle_ttl_ms=60 * 1000,
    sender_rows=2_000,
    restore_sizes=(10_000, 30_000),
    scaling=((1, 1), (2, 2)),
    peer_latency=False,  # B8 in quick mode: throughput and CPU only (two quix start-ups cost enough)
)
SMOKE: Final = Plan(
    mode="smoke",
    threads=40,
    concurrency=10,
    latency_seconds=1.5,
    latency_warmup_s=0.2,
    memory_facts=10_000,
    memory_concurrency=100,
    memory_idle_ttl_ms=60 * 1000,
    sender_rows=300,
    restore_sizes=(1_000, 5_000),
    scaling=((1, 1), (2, 1)),
    replay=False,
    profile_misses=False,
    # B8 starts two quix-streams applications (group joins, producer fencing, RocksDB): tens of seconds
    # even for a tiny workload, too long for the test suite; `--smoke --cases ...,B8` still runs it.
    cases=tuple(case for case in CASES if case != "B8"),
)


def plan_for(*, quick: bool, smoke: bool, cases: tuple[str, ...] | None = None, repeats: int | None = None) -> Plan:
    """The plan of a mode; ``cases`` (when given) replaces the mode's own list."""
    plan = SMOKE if smoke else QUICK if quick else FULL
    if cases is not None:
        plan = replace(plan, cases=cases)
    if repeats is not None:
        plan = replace(plan, repeats=repeats)
    return plan
