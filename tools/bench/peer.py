"""B8: the processor against a quix-streams application running the same reducer, on the same broker.

Each quix application (:mod:`tools.bench.quixapp`) runs in its own process on twin topics with the
processor's partition count. A repeat publishes a workload copy in one transaction while the application
idles (it reads ``read_committed``, so it sees nothing before the commit); the clock runs from the commit
to the moment the group's committed offsets reached the end of every partition. Latency is measured at
B3's offered rate with B3's machinery (paced producer, reader processes keyed by the ``row-id`` header).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from tools.bench.common import CaseReport, Row, cpu_ms_per_1000, cpu_seconds, percentile, say
from tools.bench.kafka import (
    Child,
    KafkaEnv,
    Pipeline,
    _drain_readers,
    _latencies,
    _latency_run,
    _start_readers,
    _stop_readers,
    create_topics,
    gated_publish,
    wait_all,
)
from tools.bench.plan import Plan
from tools.bench.quixapp import COMMIT_INTERVAL_S, available, versions
from tools.bench.workload import Copy, make_copies

B8_MIN_RATIO_REDUCER: Final = 1.5
"""The processor's facts/s (worst run) against quix-streams running the same reducer (median)."""
B8_MIN_RATIO_COUNTER: Final = 1.0
"""The processor's facts/s (worst run) against quix's minimal stateful passthrough (median)."""


@dataclass
class QuixStage(Pipeline):
    """One quix application (``reducer`` or ``counter``) in its own process, on topics of its own.

    A :class:`Pipeline` to B3's latency machinery: its child prints committed offsets the same way."""

    app: str = "reducer"

    async def start(self) -> QuixStage:
        self.name_topics()
        await create_topics(self.env, [(self.facts, self.partitions, {}), (self.events, self.partitions, {})])
        state_dir = self.env.work / f"b8-{self.app}-state"
        args = ["quix", "--app", self.app, "--bootstrap", self.env.bootstrap, "--facts", self.facts]
        args += ["--rows", self.events, "--group", self.group, "--partitions", str(self.partitions)]
        args += ["--state-dir", str(state_dir)]
        child = await Child(f"b8-quix-{self.app}", args, self.env.work, self.env.service_cpus).start()
        self.children.append(child)
        await child.wait_for(lambda last: last.get("ready") is True, 120, "quix application assigned")
        return self

    async def run(self, copy: Copy, *, profile: Path | None = None) -> dict[str, float]:
        """One throughput repeat, gated by a transaction (quix has no pause); ``profile`` is not supported."""
        if profile is not None:
            raise ValueError("B8 does not profile the quix application")
        child = self.children[0]
        broker_before = cpu_seconds(self.env.broker_pid) if self.env.broker_pid else 0.0
        published = await gated_publish(self.env, self.facts, copy.facts)
        cpu_before = cpu_seconds(child.pid)
        targets = published.targets

        def reached() -> bool:
            offsets = self.offsets()
            return all(offsets.get(p, 0) >= target for p, target in targets.items())

        finished = await wait_all([child], reached, within=900, what=f"quix offsets {targets}")
        elapsed = max(1e-6, finished - published.committed_at)
        return {
            "records": published.records,
            "seconds": elapsed,
            "rate": published.records / elapsed,
            "cpu_s": cpu_seconds(child.pid) - cpu_before,
            "broker_cpu_s": (cpu_seconds(self.env.broker_pid) - broker_before) if self.env.broker_pid else 0.0,
        }


def skipped() -> CaseReport | None:
    """B8's report when quixstreams is missing: skipped with the reason, not failed."""
    reason = available()
    if reason is None:
        return None
    return CaseReport("B8", "peer: quix-streams", skipped=reason)


async def run_b8(
    env: KafkaEnv,
    plan: Plan,
    copies: list[Copy],
    processor_runs: list[dict[str, float]],
    latency_rate: float | None,
    start_ms: int,
) -> CaseReport:
    report = CaseReport("B8", "peer: the same reducer in quix-streams (exactly-once, RocksDB state, changelog)")
    report.notes.append(
        ", ".join(f"{name} {version}" for name, version in versions().items())
        + f"; commit_interval {COMMIT_INTERVAL_S} s (quix's default is 5 s); state in RocksDB with a changelog "
        "topic (quix's defaults); family values stored with the processor's changelog codec"
    )
    results: dict[str, list[dict[str, float]]] = {}
    latencies: dict[str, list[float]] = {}
    for app in ("reducer", "counter"):
        say(f"B8: quix-streams {app} application, {plan.partitions} partitions, {plan.repeats} runs")
        stage = await QuixStage(env, plan.partitions, 1, f"b8-{app}", app=app).start()
        try:
            runs = []
            for copy in copies:
                runs.append(await stage.run(copy))
                say(f"  run {copy.index}: quix {app} {runs[-1]['rate']:,.0f}/s")
            results[app] = runs
            if latency_rate:
                latencies[app], coverage = await _latency_runs(env, plan, stage, latency_rate, start_ms)
                report.notes.append(
                    f"quix {app} latency runs: rows seen for "
                    + ", ".join(f"{100 * share:.0f} %" for share in coverage)
                    + " of the timed facts when each run ended (below 100 %: it could not keep up with the "
                    "offered rate within a minute, and its p99 leaves out the facts never seen)"
                )
        finally:
            await stage.stop()
    rates = [r["rate"] for r in processor_runs]
    for app, label, minimum in (
        ("reducer", "quix-streams running the same reducer", B8_MIN_RATIO_REDUCER),
        ("counter", "quix-streams minimal stateful passthrough (per-key counter)", B8_MIN_RATIO_COUNTER),
    ):
        runs = results[app]
        report.rows.append(Row("B8", f"{label}", "facts/s", [r["rate"] for r in runs], note="info"))
        verdict = Row(
            "B8",
            f"processor against {label}",
            "facts/s",
            rates,
            [r["rate"] for r in runs],
            f"quix {app}",
            target=f">= {minimum:.0%} of quix {app}",
        )
        verdict.passed = (verdict.worst_ratio or 0) >= minimum
        report.rows.append(verdict)
        report.rows.append(
            Row(
                "B8",
                f"{label}: CPU per 1,000 facts",
                "CPU-ms",
                cpu_ms_per_1000(runs),
                cpu_ms_per_1000(processor_runs),
                "processor",
                higher_is_better=False,
                note="info: CPU of the quix process (librdkafka threads included); the broker is extra",
            )
        )
        if app in latencies:
            p99s = latencies[app]
            report.rows.append(
                Row(
                    "B8",
                    f"{label}: p99 fact -> row readable at B3's rate",
                    "ms",
                    p99s,
                    higher_is_better=False,
                    note=f"info: offered {latency_rate:,.0f} facts/s (half of B2's median), as in B3",
                )
            )
        report.notes.append(
            f"quix {app}: broker CPU seconds per run "
            + ", ".join(f"{r['broker_cpu_s']:.1f}" for r in runs)
            + f" (runs of ~{runs[0]['seconds']:.1f} s)"
        )
    return report


async def _latency_runs(
    env: KafkaEnv, plan: Plan, stage: QuixStage, rate: float, start_ms: int
) -> tuple[list[float], list[float]]:
    """p99 (prompt reader) of each of ``plan.repeats`` paced runs at ``rate``, as B3 runs them, and the
    share of the timed facts whose rows were seen at all."""
    needed = int(rate * plan.latency_seconds) + 1
    b8_plan = replace(plan, threads=max(20, needed // 40 + 1))
    copies = make_copies(b8_plan, plan.repeats, first_index=200, start_ms=start_ms)
    producer = await env.plain()
    partitions = sorted(await producer.partitions_for(stage.events))
    p99s: list[float] = []
    coverage: list[float] = []
    for copy in copies:
        readers = await _start_readers(env, stage, partitions, copy.index)
        began = time.monotonic()
        sent_at, started, sent_rate = await _latency_run(
            producer, stage, copy.facts[:needed], rate, plan.latency_seconds
        )
        await _drain_readers(readers)
        results = _latencies(sent_at, await _stop_readers(readers), started, plan.latency_warmup_s)
        prompt = sorted(results[0])
        p99s.append(percentile(prompt, 0.99))
        timed = sum(1 for sent in sent_at.values() if sent >= started + plan.latency_warmup_s)
        coverage.append(len(prompt) / max(1, timed))
        say(
            f"  latency run {copy.index}: {len(prompt):,} facts at {sent_rate:,.0f}/s: p50 "
            f"{percentile(prompt, 0.5):.0f} ms, p99 {p99s[-1]:.0f} ms ({time.monotonic() - began:.0f} s)"
        )
    return p99s, coverage
