"""Cases on the broker: B2 (processor vs passthrough), B3 (latency), B6 (restore), B7 (scaling).

Method (docs/performance.md):

* The processor and the passthrough baseline run in their own processes (:mod:`.child`), the way the
  service runs, so the bench's own work (publishing, reading) never shares their interpreter.
* **Gated publish**: a repeat's facts are published inside one Kafka transaction while the children,
  already joined and assigned, sit idle; they read ``read_committed``, so they see nothing until the
  commit. The clock starts when ``commit_transaction`` returns and stops at the child's monotonic stamp
  of the moment every partition's committed offset (the processor's ``next_offset`` after its
  transaction committed; the passthrough's acknowledged count) reached the end of that repeat. No
  start-up, group join or producer fencing is inside the measured window.
* Children are reused across repeats (copy ``i`` is later in fact time than copy ``i - 1``), as a
  long-running service would be; processor and passthrough runs alternate so drift hits both alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import DefaultPartitioner

from reducer.boundary import PartitionReducer
from reducer.snapshot import snapshot
from schemas.topics import pipeline_topics
from services.config import KafkaSettings, ProcessorConfig
from services.processor.partition import restore_consumer, restore_states
from services.processor.topics import ensure_topics
from services.processor.transaction import send_batched
from tools.bench.common import (
    CaseReport,
    Row,
    cpu_ms_per_1000,
    cpu_seconds,
    percentile,
    profile_file_summary,
    say,
    thin,
)
from tools.bench.plan import Plan
from tools.bench.workload import Copy, make_copies

B2_MIN_RATIO = 0.70
B2_MAX_CPU_RATIO = 2.0
B3_MAX_P99_MS = 500.0
B6_MIN_RATE = 50_000.0


# --------------------------------------------------------------------------------------------------------
# Environment: broker address, work directory, the gate publisher
# --------------------------------------------------------------------------------------------------------


@dataclass
class KafkaEnv:
    bootstrap: str
    broker_pid: int | None
    work: Path
    service_cpus: str | None = None
    """``--pin``: the CPU list (taskset) of the processes under test (processor, passthrough, quix)."""
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    _gate: AIOKafkaProducer | None = None
    _plain: AIOKafkaProducer | None = None

    def name(self, what: str) -> str:
        return f"bench-{self.run_id}-{what}"

    async def gate(self) -> AIOKafkaProducer:
        if self._gate is None:
            self._gate = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap,
                client_id="bench-gate",
                transactional_id=self.name(f"gate-{uuid.uuid4().hex[:6]}"),
                enable_idempotence=True,
                acks="all",
                linger_ms=20,
                max_batch_size=1024 * 1024,
                transaction_timeout_ms=240_000,
                request_timeout_ms=120_000,
            )
            await self._gate.start()
        return self._gate

    async def plain(self) -> AIOKafkaProducer:
        """Idempotent, ``acks=all``, not transactional: how app-servers publish facts (FactPublisher)."""
        if self._plain is None:
            self._plain = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap,
                client_id="bench-publisher",
                enable_idempotence=True,
                acks="all",
                linger_ms=20,
                max_batch_size=1024 * 1024,
            )
            await self._plain.start()
        return self._plain

    async def close(self) -> None:
        for producer in (self._gate, self._plain):
            if producer is not None:
                await producer.stop()
        self._gate = self._plain = None


async def create_topics(env: KafkaEnv, specs: Sequence[tuple[str, int, dict[str, str]]]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=env.bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name, partitions, 1, topic_configs=configs) for name, partitions, configs in specs]
        )
        await _wait_for_leaders(admin, {name: partitions for name, partitions, _ in specs})
    finally:
        await admin.close()


async def create_pipeline(env: KafkaEnv, facts: str, events: str, group: str, partitions: int) -> None:
    """The processor's topics, exactly as ``setup-topics`` declares them (names, counts, configs)."""
    specs = pipeline_topics(facts_topic=facts, events_topic=events, group_id=group, partitions=partitions)
    await create_topics(env, [(spec.name, spec.partitions, spec.configs) for spec in specs])
    admin = AIOKafkaAdminClient(bootstrap_servers=env.bootstrap)
    await admin.start()
    try:
        await ensure_topics(admin, specs)  # all exist now: checks the partition counts
    finally:
        await admin.close()


async def _wait_for_leaders(admin: AIOKafkaAdminClient, expected: dict[str, int], within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while True:
        described = await admin.describe_topics(list(expected))
        ok = all(
            topic["error_code"] == 0
            and len(topic["partitions"]) == expected[topic["topic"]]
            and all(p["error_code"] == 0 and p["leader"] >= 0 for p in topic["partitions"])
            for topic in described
        )
        if ok and len(described) == len(expected):
            await asyncio.sleep(0.2)
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"no partition leaders for {sorted(expected)} after {within} s")
        await asyncio.sleep(0.05)


@dataclass
class Published:
    committed_at: float
    targets: dict[int, int]
    records: int
    seconds: float


async def _send_all(
    producer: AIOKafkaProducer, topic: str, facts: Sequence[tuple[Any, ...]]
) -> tuple[dict[int, int], int]:
    """Send ``(key, value[, headers])`` items (``None`` key: every partition); wait for every acknowledgement."""
    partitions = sorted(await producer.partitions_for(topic))
    targets: dict[int, int] = {}
    pending: list[asyncio.Future[Any]] = []
    records = 0

    async def settle() -> None:
        for metadata in await asyncio.gather(*pending):
            if metadata.offset + 1 > targets.get(metadata.partition, 0):
                targets[metadata.partition] = metadata.offset + 1
        pending.clear()

    for item in facts:
        key, value = item[0], item[1]
        headers = item[2] if len(item) > 2 else None
        if key is None:
            for partition in partitions:
                pending.append(await producer.send(topic, value, partition=partition, headers=headers))
        else:
            pending.append(await producer.send(topic, value, key=key, headers=headers))
        if len(pending) >= 20_000:
            records += len(pending)
            await settle()
    records += len(pending)
    await settle()
    return targets, records


async def plain_publish(env: KafkaEnv, topic: str, facts: Sequence[tuple[Any, ...]]) -> Published:
    """Publish ``facts`` as app-servers do (idempotent, not transactional); return each partition's end."""
    producer = await env.plain()
    started = time.monotonic()
    targets, records = await _send_all(producer, topic, facts)
    done = time.monotonic()
    return Published(done, targets, records, done - started)


async def gated_publish(env: KafkaEnv, topic: str, facts: Sequence[tuple[Any, ...]]) -> Published:
    """Publish ``facts`` in one transaction (as the processor writes rows); ``committed_at`` is the commit."""
    producer = await env.gate()
    started = time.monotonic()
    await producer.begin_transaction()
    try:
        targets, records = await _send_all(producer, topic, facts)
    except BaseException:
        with contextlib.suppress(Exception):
            await producer.abort_transaction()
        raise
    await producer.commit_transaction()
    committed = time.monotonic()
    return Published(committed, targets, records, committed - started)


# --------------------------------------------------------------------------------------------------------
# Children
# --------------------------------------------------------------------------------------------------------


class Child:
    """A ``python -m tools.bench.child`` process and the JSON lines it prints (``cpus``: run it under
    ``taskset -c cpus``)."""

    def __init__(self, name: str, args: list[str], work: Path, cpus: str | None = None) -> None:
        self.name = name
        self.args = args
        self.cpus = cpus
        self.stderr_path = work / f"{name}.stderr"
        self.process: asyncio.subprocess.Process | None = None
        self.last: dict[str, Any] = {}
        self.lines: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> Child:
        stderr = open(self.stderr_path, "ab")  # noqa: SIM115, ASYNC230 - a local log file, handed to the child
        pin = ["taskset", "-c", self.cpus] if self.cpus else []
        self.process = await asyncio.create_subprocess_exec(
            *pin,
            sys.executable,
            "-m",
            "tools.bench.child",
            *self.args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            limit=16 * 1024 * 1024,
        )
        stderr.close()
        self._reader = asyncio.create_task(self._read())
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        while True:
            line = await self.process.stdout.readline()
            if not line:
                break
            message = json.loads(line)
            self.last.update(message)
            self.lines.append(message)
            self._changed.set()
        self._changed.set()

    async def wait_for(self, predicate: Callable[[dict[str, Any]], bool], within: float, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while not predicate(self.last):
            if self.process is not None and self.process.returncode is not None:
                raise RuntimeError(f"{self.name} exited ({self.process.returncode}) waiting for {what}: {self.tail()}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{self.name}: no {what} within {within} s; last {self.last}; {self.tail()}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=min(remaining, 0.5))
        return self.last

    async def command(self, text: str) -> None:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(text.encode() + b"\n")
        await self.process.stdin.drain()

    async def stop(self, within: float = 30.0) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        with contextlib.suppress(Exception):
            await self.command("stop")
        try:
            await asyncio.wait_for(self.process.wait(), timeout=within)
        except TimeoutError:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), timeout=5)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._reader is not None:
            await self._reader

    def tail(self) -> str:
        try:
            return self.stderr_path.read_text()[-1500:]
        except OSError:
            return ""


async def wait_all(children: Sequence[Child], predicate: Callable[[], bool], within: float, what: str) -> float:
    """Wait until ``predicate()`` holds over the children's last lines; return the completing line's stamp."""
    deadline = time.monotonic() + within
    while not predicate():
        for child in children:
            if child.process is not None and child.process.returncode is not None:
                raise RuntimeError(
                    f"{child.name} exited ({child.process.returncode}) waiting for {what}: {child.tail()}"
                )
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {within} s: {[c.last for c in children]}")
        waits = [asyncio.create_task(child._changed.wait()) for child in children]
        for child in children:
            child._changed.clear()
        _done, pending = await asyncio.wait(waits, timeout=0.5, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
    return max(float(child.last.get("t", 0.0)) for child in children)


async def pause(children: Sequence[Child]) -> None:
    for child in children:
        child.last.pop("paused", None)
        await child.command("pause")
    for child in children:
        await child.wait_for(lambda last: last.get("paused") is True, 30, "paused")


async def resume(children: Sequence[Child]) -> float:
    """Resume every child; return the earliest resume stamp (the start of the measured window)."""
    for child in children:
        child.last.pop("resumed_at", None)
        await child.command("resume")
    stamps = []
    for child in children:
        last = await child.wait_for(lambda last: "resumed_at" in last, 30, "resumed")
        stamps.append(float(last["resumed_at"]))
    return min(stamps)


_gc_seq = 0


async def gc_pauses(children: Sequence[Child]) -> dict[str, float]:
    """The children's GC pauses since the previous call: ``count``, ``total_ms``, ``max_ms`` (all
    generations) and ``gen2_count`` / ``gen2_max_ms``."""
    global _gc_seq
    _gc_seq += 1
    seq = str(_gc_seq)
    merged = {"count": 0.0, "total_ms": 0.0, "max_ms": 0.0, "gen2_count": 0.0, "gen2_max_ms": 0.0}
    for child in children:
        await child.command(f"gc {seq}")
    for child in children:
        last = await child.wait_for(lambda last: last.get("gc_seq") == seq, 30, "gc stats")
        for generation, stats in last["gc"].items():
            merged["count"] += stats["count"]
            merged["total_ms"] += stats["total_ms"]
            merged["max_ms"] = max(merged["max_ms"], stats["max_ms"])
            if generation == "2":
                merged["gen2_count"] += stats["count"]
                merged["gen2_max_ms"] = max(merged["gen2_max_ms"], stats["max_ms"])
    return merged


def processor_config(env: KafkaEnv, facts: str, events: str, group: str, **overrides: Any) -> ProcessorConfig:
    options: dict[str, Any] = {
        "kafka": KafkaSettings(bootstrap_servers=env.bootstrap),
        "facts_topic": facts,
        "events_topic": events,
        "group_id": group,
        "transactional_id_prefix": group,
        "metrics_port": 0,
        "log_level": "INFO",
    }
    options.update(overrides)
    return ProcessorConfig(**options)


def _config_json(config: ProcessorConfig) -> str:
    import msgspec

    return msgspec.json.encode(config).decode()


@dataclass
class Pipeline:
    """Topics and processor children of one configuration (partitions, instances)."""

    env: KafkaEnv
    partitions: int
    instances: int
    label: str
    facts: str = ""
    events: str = ""
    group: str = ""
    children: list[Child] = field(default_factory=list)

    def name_topics(self) -> None:
        self.facts = self.env.name(f"{self.label}-facts")
        self.events = self.env.name(f"{self.label}-events")
        self.group = self.env.name(f"{self.label}-group")

    async def start(self) -> Pipeline:
        self.name_topics()
        await create_pipeline(self.env, self.facts, self.events, self.group, self.partitions)
        config = _config_json(processor_config(self.env, self.facts, self.events, self.group))
        for index in range(self.instances):
            name = f"{self.label}-processor-{index}"
            log = self.env.work / f"{name}.log"
            child = Child(
                name,
                ["processor", "--config", config, "--log", str(log), "--client-id", name],
                self.env.work,
                self.env.service_cpus,
            )
            self.children.append(await child.start())
        everything = set(range(self.partitions))
        per_instance = self.partitions // self.instances

        def balanced() -> bool:
            assigned = [set(child.last.get("assigned", [])) for child in self.children]
            return (
                all(child.last.get("ready") for child in self.children)
                and set().union(*assigned) == everything
                and all(len(a) == per_instance for a in assigned)
            )

        await wait_all(self.children, balanced, within=90, what="every partition assigned and restored")
        await asyncio.sleep(0.3)
        if not balanced():
            await wait_all(self.children, balanced, within=90, what="a stable assignment")
        return self

    def offsets(self) -> dict[int, int]:
        merged: dict[int, int] = {}
        for child in self.children:
            for partition, offset in child.last.get("offsets", {}).items():
                merged[int(partition)] = offset
        return merged

    async def run(self, copy: Copy, *, profile: Path | None = None) -> dict[str, float]:
        """One measured repeat: pause, publish ``copy``, resume, wait until every partition committed it."""
        await pause(self.children)
        published = await plain_publish(self.env, self.facts, copy.facts)
        if profile is not None:
            for child in self.children:
                await child.command("prof-on")
                await child.wait_for(lambda last: last.get("profiling") is True, 10, "profiler on")
        await gc_pauses(self.children)
        cpu_before = [cpu_seconds(child.pid) for child in self.children]
        broker_before = cpu_seconds(self.env.broker_pid) if self.env.broker_pid else 0.0
        started = await resume(self.children)
        targets = published.targets

        def reached() -> bool:
            offsets = self.offsets()
            return all(offsets.get(p, 0) >= target for p, target in targets.items())

        finished = await wait_all(self.children, reached, within=600, what=f"offsets {targets}")
        elapsed = max(1e-6, finished - started)
        cpu = sum(cpu_seconds(child.pid) for child in self.children) - sum(cpu_before)
        broker = (cpu_seconds(self.env.broker_pid) - broker_before) if self.env.broker_pid else 0.0
        pauses = await gc_pauses(self.children)
        if profile is not None:
            for index, child in enumerate(self.children):
                await child.command(f"prof-off {profile}.{index}")
                await child.wait_for(lambda last: last.get("profiling") is False, 30, "profile dump")
        return {
            "records": published.records,
            "seconds": elapsed,
            "rate": published.records / elapsed,
            "cpu_s": cpu,
            "broker_cpu_s": broker,
            "publish_s": published.seconds,
            "gc_total_ms": pauses["total_ms"],
            "gc_max_ms": pauses["max_ms"],
            "gc2_count": pauses["gen2_count"],
        }

    async def stop(self) -> None:
        await asyncio.gather(*(child.stop() for child in self.children))


@dataclass
class Passthrough:
    env: KafkaEnv
    partitions: int
    mode: str = "batch"
    """``batch`` (record batches per partition: the ceiling) or ``send`` (one ``send()`` per record)."""
    source: str = ""
    dest: str = ""
    child: Child | None = None
    done_before: int = 0

    async def start(self) -> Passthrough:
        self.source = self.env.name(f"passthrough-{self.mode}-facts")
        self.dest = self.env.name(f"passthrough-{self.mode}-events")
        await create_topics(self.env, [(self.source, self.partitions, {}), (self.dest, self.partitions, {})])
        args = ["passthrough", "--bootstrap", self.env.bootstrap, "--source", self.source, "--dest", self.dest]
        args += ["--mode", self.mode]
        self.child = await Child(f"passthrough-{self.mode}", args, self.env.work, self.env.service_cpus).start()
        await self.child.wait_for(lambda last: last.get("ready") is True, 60, "passthrough ready")
        return self

    async def run(self, copy: Copy) -> dict[str, float]:
        assert self.child is not None
        child = self.child
        await pause([child])
        published = await plain_publish(self.env, self.source, copy.facts)
        cpu_before = cpu_seconds(child.pid)
        broker_before = cpu_seconds(self.env.broker_pid) if self.env.broker_pid else 0.0
        started = await resume([child])
        goal = self.done_before + published.records
        finished = await wait_all([child], lambda: child.last.get("done", 0) >= goal, 600, f"{goal} records")
        self.done_before = goal
        elapsed = max(1e-6, finished - started)
        return {
            "records": published.records,
            "seconds": elapsed,
            "rate": published.records / elapsed,
            "cpu_s": cpu_seconds(child.pid) - cpu_before,
            "broker_cpu_s": (cpu_seconds(self.env.broker_pid) - broker_before) if self.env.broker_pid else 0.0,
        }

    async def stop(self) -> None:
        if self.child is not None:
            await self.child.stop()


def _profile_text(env: KafkaEnv, base: Path, instances: int, title: str) -> str:
    parts = []
    for index in range(instances):
        path = Path(f"{base}.{index}")
        if path.exists():
            parts.append(profile_file_summary(path, title=f"{title} (instance {index})"))
    return "\n\n".join(parts) or "(no profile written)"


# --------------------------------------------------------------------------------------------------------
# B2 + B7 + B3
# --------------------------------------------------------------------------------------------------------


@dataclass
class KafkaOutcome:
    reports: list[CaseReport]
    b2_rate: float | None = None
    b2_runs: list[dict[str, float]] = field(default_factory=list)
    """The processor's B2 runs (rate, CPU): B8 compares quix-streams with them."""


async def run_b2_b3_b7(
    env: KafkaEnv, plan: Plan, copies: list[Copy], spare: Copy, *, force_profile: bool = False
) -> KafkaOutcome:
    cases = set(plan.cases)
    reports: list[CaseReport] = []
    b2 = CaseReport("B2", "processor with exactly-once vs raw passthrough")
    scaling_runs: dict[tuple[int, int], list[dict[str, float]]] = {}
    main_key = (1, plan.partitions)
    say(f"B2: 1 processor instance, {plan.partitions} partitions; passthrough baseline on twin topics")
    pipeline = await Pipeline(env, plan.partitions, 1, "b2").start()
    passthrough = await Passthrough(env, plan.partitions).start()
    naive = await Passthrough(env, plan.partitions, mode="send").start()
    outcome = KafkaOutcome(reports)
    try:
        processor_runs: list[dict[str, float]] = []
        passthrough_runs: list[dict[str, float]] = []
        naive_runs: list[dict[str, float]] = []
        for copy in copies:
            processor_runs.append(await pipeline.run(copy))
            passthrough_runs.append(await passthrough.run(copy))
            naive_runs.append(await naive.run(copy))
            say(
                f"  run {copy.index}: processor {processor_runs[-1]['rate']:,.0f}/s, "
                f"passthrough {passthrough_runs[-1]['rate']:,.0f}/s (one send() per record: "
                f"{naive_runs[-1]['rate']:,.0f}/s)"
            )
        scaling_runs[main_key] = processor_runs
        processor_rates = [r["rate"] for r in processor_runs]
        row = Row(
            "B2",
            f"processor, exactly-once ({plan.partitions} partitions, 1 instance)",
            "facts/s",
            processor_rates,
            [r["rate"] for r in passthrough_runs],
            "raw consume->produce passthrough (record batches)",
            target=f">= {B2_MIN_RATIO:.0%} of passthrough",
        )
        row.passed = (row.worst_ratio or 0) >= B2_MIN_RATIO
        b2.rows.append(row)
        b2.rows.append(
            Row(
                "B2",
                "processor against a passthrough with one send() per record",
                "facts/s",
                processor_rates,
                [r["rate"] for r in naive_runs],
                "raw consume->produce passthrough (send() per record)",
                note="info: the per-record produce path the processor used before it batched",
            )
        )
        b2.rows.append(_cpu_row("B2", "processor CPU per 1,000 facts", processor_runs, passthrough_runs))
        b2.notes.append(
            "processor GC per run: "
            + "; ".join(
                f"{r['gc_total_ms']:.0f} ms in total, longest pause {r['gc_max_ms']:.0f} ms, "
                f"{r['gc2_count']:.0f} full (gen 2) collections"
                for r in processor_runs
            )
        )
        b2.notes.append(
            "broker CPU seconds per run: processor "
            + ", ".join(f"{r['broker_cpu_s']:.1f}" for r in processor_runs)
            + "; passthrough "
            + ", ".join(f"{r['broker_cpu_s']:.1f}" for r in passthrough_runs)
            + f" (for ~{processor_runs[0]['seconds']:.1f} s and ~{passthrough_runs[0]['seconds']:.1f} s runs)"
        )
        outcome.b2_rate = row.median
        outcome.b2_runs = processor_runs
        if force_profile or (plan.profile_misses and row.passed is False):
            base = env.work / "b2-processor.prof"
            extra = await pipeline.run(spare, profile=base)
            b2.profiles["B2 processor"] = _profile_text(
                env,
                base,
                1,
                f"cProfile of the processor child over one extra run ({extra['rate']:,.0f} facts/s under the profiler)",
            )
        if "B2" in cases:
            reports.append(b2)
        await passthrough.stop()
        await naive.stop()
        if "B3" in cases:
            try:
                reports.append(await run_b3(env, plan, pipeline, row.median, copies[-1].last_ms + 1000, force_profile))
            except Exception as error:
                traceback.print_exc()
                reports.append(CaseReport("B3", "latency", error=f"{type(error).__name__}: {error}"))
    finally:
        await passthrough.stop()
        await naive.stop()
        await pipeline.stop()

    if "B7" in cases:
        b7 = CaseReport("B7", "scaling: partitions per instance and instances")
        for instances, per_instance in plan.scaling:
            key = (instances, per_instance)
            if key in scaling_runs:
                continue
            partitions = instances * per_instance
            say(f"B7: {instances} instance(s) x {per_instance} partition(s)")
            scaled = Pipeline(env, partitions, instances, f"b7-{instances}x{per_instance}")
            try:
                await scaled.start()
                runs = []
                for copy in copies:
                    runs.append(await scaled.run(copy))
                    say(f"  run {copy.index}: {runs[-1]['rate']:,.0f}/s")
                scaling_runs[key] = runs
            except Exception as error:
                traceback.print_exc()
                b7.notes.append(f"{instances} x {per_instance} failed: {type(error).__name__}: {error}")
                b7.error = b7.error or f"{instances} x {per_instance}: {type(error).__name__}: {error}"
            finally:
                await scaled.stop()
        reference = scaling_runs.get((1, 1))
        for instances, per_instance in sorted(scaling_runs):
            runs = scaling_runs[(instances, per_instance)]
            per_core = [r["records"] / r["cpu_s"] for r in runs if r["cpu_s"] > 0]
            b7.rows.append(
                Row(
                    "B7",
                    f"{instances} instance(s) x {per_instance} partition(s) per instance",
                    "facts/s",
                    [r["rate"] for r in runs],
                    [r["rate"] for r in reference] if reference else [],
                    "1 instance x 1 partition",
                    note=(
                        f"per core: {sorted(per_core)[len(per_core) // 2]:,.0f} facts per processor CPU-second; "
                        f"processor CPU {sum(r['cpu_s'] for r in runs) / sum(r['seconds'] for r in runs):.2f} cores, "
                        f"broker {sum(r['broker_cpu_s'] for r in runs) / sum(r['seconds'] for r in runs):.2f} cores"
                    )
                    if per_core
                    else "",
                )
            )
        b7.series["scaling"] = {f"{i}x{p}": [r["rate"] for r in runs] for (i, p), runs in sorted(scaling_runs.items())}
        reports.append(b7)
    return outcome


def _cpu_row(case: str, name: str, runs: list[dict[str, float]], baseline: list[dict[str, float]]) -> Row:
    row = Row(
        case,
        name,
        "CPU-ms",
        cpu_ms_per_1000(runs),
        cpu_ms_per_1000(baseline),
        "passthrough",
        target=f"<= {B2_MAX_CPU_RATIO:.0%} of passthrough",
        higher_is_better=False,
        note="CPU of the measured process only (the broker is extra)",
    )
    row.passed = row.worst_ratio is not None and row.worst_ratio <= B2_MAX_CPU_RATIO
    return row


# --------------------------------------------------------------------------------------------------------
# B3: latency at half the B2 rate
# --------------------------------------------------------------------------------------------------------


async def run_b3(
    env: KafkaEnv, plan: Plan, pipeline: Pipeline, b2_rate: float, start_ms: int, force_profile: bool
) -> CaseReport:
    """Produce at half the B2 rate (as app-servers do: idempotent, not transactional) and time each fact
    until its first row is readable by a ``read_committed`` consumer.

    Two readers watch the events topic: one polling promptly (``fetch_max_wait_ms=10``), which sees a
    row as soon as the broker makes it readable (the target), and one with aiokafka's default
    ``fetch_max_wait_ms=500`` (what the sender's consumer uses today), reported next to it.
    """
    report = CaseReport("B3", "latency: fact produced -> row readable (read_committed)")
    rate = b2_rate / 2
    needed = int(rate * plan.latency_seconds) + 1
    b3_plan = replace(plan, threads=max(20, needed // 40 + 1))
    say(f"B3: {plan.repeats} runs of {plan.latency_seconds:.0f} s at {rate:,.0f} facts/s (half of B2's median)")
    copies = make_copies(b3_plan, plan.repeats + 1, first_index=100, start_ms=start_ms)
    copies, spare = copies[:-1], copies[-1]
    prompt: dict[str, list[float]] = {"p50": [], "p99": [], "max": []}
    default: dict[str, list[float]] = {"p50": [], "p99": [], "max": []}
    achieved: list[float] = []
    last_latencies: list[float] = []
    producer = await env.plain()  # how app-servers publish; each tick's batches are closed, so no linger
    events_partitions = sorted(await producer.partitions_for(pipeline.events))
    usage: list[tuple[float, float, float]] = []
    timeline: list[tuple[float, float]] = []
    gc_runs: list[dict[str, float]] = []
    for copy in copies:
        readers = await _start_readers(env, pipeline, events_partitions, copy.index)
        reader_pids = [child.pid for child, _out in readers]
        began = time.monotonic()
        await gc_pauses(pipeline.children)
        before = _cpu_snapshot(env, pipeline, reader_pids)
        sent_at, started, sent_rate = await _latency_run(
            producer, pipeline, copy.facts[:needed], rate, plan.latency_seconds
        )
        await _drain_readers(readers)
        after = _cpu_snapshot(env, pipeline, reader_pids)
        results = _latencies(sent_at, await _stop_readers(readers), started, plan.latency_warmup_s)
        wall = time.monotonic() - began
        gc_runs.append(await gc_pauses(pipeline.children))
        usage.append(tuple((a - b) / wall for a, b in zip(after, before, strict=True)))  # type: ignore[arg-type]
        for stats, latencies in ((prompt, results[0]), (default, results[1])):
            latencies.sort()
            stats["p50"].append(percentile(latencies, 0.50))
            stats["p99"].append(percentile(latencies, 0.99))
            stats["max"].append(latencies[-1] if latencies else float("nan"))
        achieved.append(sent_rate)
        last_latencies = results[0]
        timeline = list(_last_timeline)
        say(
            f"  run {copy.index - 100}: {len(results[0]):,} facts timed at {sent_rate:,.0f} facts/s: "
            f"p50 {prompt['p50'][-1]:.0f} ms, p99 {prompt['p99'][-1]:.0f} ms, max {prompt['max'][-1]:.0f} ms "
            f"(default consumer: p50 {default['p50'][-1]:.0f}, p99 {default['p99'][-1]:.0f} ms)"
        )
    p99 = Row(
        "B3",
        "p99 fact -> row readable",
        "ms",
        prompt["p99"],
        target=f"< {B3_MAX_P99_MS:.0f} ms",
        higher_is_better=False,
    )
    p99.passed = p99.worst < B3_MAX_P99_MS
    report.rows += [
        Row("B3", "p50 fact -> row readable", "ms", prompt["p50"], higher_is_better=False),
        p99,
        Row("B3", "max fact -> row readable", "ms", prompt["max"], higher_is_better=False),
        Row(
            "B3",
            "p50 as seen by a default consumer (fetch_max_wait 500 ms)",
            "ms",
            default["p50"],
            higher_is_better=False,
            note="info: aiokafka's default fetch_max_wait_ms, which the sender uses",
        ),
        Row(
            "B3",
            "p99 as seen by a default consumer (fetch_max_wait 500 ms)",
            "ms",
            default["p99"],
            higher_is_better=False,
            note="info",
        ),
        Row("B3", "offered rate (half of B2 median)", "facts/s", achieved, note=f"info: asked for {rate:,.0f}/s"),
    ]
    report.series["latencies_ms"] = thin(sorted(last_latencies), 2000)
    report.series["latency_timeline"] = thin(timeline, 3000)
    worst = _worst_seconds(timeline)
    if worst:
        report.notes.append(
            "slowest seconds of the last run (second of the run: p99 ms): "
            + ", ".join(f"{second}s: {p99:.0f}" for second, p99 in worst)
        )
    report.notes.append(
        "processor GC during the latency runs: "
        + "; ".join(
            f"longest pause {g['max_ms']:.0f} ms, {g['gen2_count']:.0f} full collections "
            f"(longest {g['gen2_max_ms']:.0f} ms), {g['total_ms']:.0f} ms in total"
            for g in gc_runs
        )
    )
    mid = sorted(usage)[len(usage) // 2]
    report.notes.append(
        f"CPU during a latency run (cores): processor {mid[0]:.2f}, broker {mid[1]:.2f}, "
        f"bench load generator + readers {mid[2]:.2f}, of {os.cpu_count()} cores"
    )
    if force_profile or (plan.profile_misses and p99.passed is False):
        base = env.work / "b3-processor.prof"
        for child in pipeline.children:
            await child.command("prof-on")
        readers = await _start_readers(env, pipeline, events_partitions, spare.index)
        await _latency_run(producer, pipeline, spare.facts[:needed], rate, plan.latency_seconds)
        await _drain_readers(readers)
        await _stop_readers(readers)
        for index, child in enumerate(pipeline.children):
            await child.command(f"prof-off {base}.{index}")
            await child.wait_for(lambda last: last.get("profiling") is False, 30, "profile dump")
        report.profiles["B3 processor at half rate"] = _profile_text(
            env, base, len(pipeline.children), "cProfile of the processor child during one latency run"
        )
    return report


def _worst_seconds(timeline: list[tuple[float, float]], count: int = 5) -> list[tuple[int, float]]:
    by_second: dict[int, list[float]] = {}
    for sent, latency in timeline:
        by_second.setdefault(int(sent), []).append(latency)
    p99s = [(second, percentile(sorted(values), 0.99)) for second, values in by_second.items()]
    return sorted(p99s, key=lambda item: -item[1])[:count]


def _cpu_snapshot(env: KafkaEnv, pipeline: Pipeline, helpers: list[int] | None = None) -> tuple[float, float, float]:
    """CPU seconds so far of (processor children, broker, bench process plus ``helpers`` pids)."""
    return (
        sum(cpu_seconds(child.pid) for child in pipeline.children),
        cpu_seconds(env.broker_pid) if env.broker_pid else 0.0,
        cpu_seconds() + sum(cpu_seconds(pid) for pid in helpers or ()),
    )


_partitioner = DefaultPartitioner()
READER_WAITS_MS: Final = (10, 500)
"""``fetch_max_wait_ms`` of B3's two readers: prompt (the target) and aiokafka's default."""


async def _start_readers(
    env: KafkaEnv, pipeline: Pipeline, partitions: list[int], run: int
) -> list[tuple[Child, Path]]:
    readers = []
    for wait in READER_WAITS_MS:
        out = env.work / f"b3-reader-{wait}ms-run{run}.json"
        child = Child(
            f"b3-reader-{wait}ms",
            [
                *("reader", "--bootstrap", env.bootstrap, "--topic", pipeline.events),
                *("--partitions", ",".join(str(p) for p in partitions)),
                *("--fetch-max-wait-ms", str(wait), "--out", str(out)),
            ],
            env.work,
        )
        await child.start()
        readers.append((child, out))
    for child, _out in readers:
        await child.wait_for(lambda last: bool(last.get("ready")), 60, "reader ready")
    return readers


async def _drain_readers(readers: list[tuple[Child, Path]]) -> None:
    """Let every reader read to the current last stable offsets."""
    for child, _out in readers:
        await child.command("drain")
    for child, _out in readers:
        await child.wait_for(lambda last: bool(last.get("drained")), 60, "reader drained")


async def _stop_readers(readers: list[tuple[Child, Path]]) -> list[dict[str, float]]:
    """Stop the readers; return each one's first-seen stamps (``"<partition>:<offset>"``)."""
    seen = []
    for child, out in readers:
        await child.stop()
        seen.append(json.loads(out.read_text()))
    return seen


async def _latency_run(
    producer: AIOKafkaProducer,
    pipeline: Pipeline,
    facts: list[tuple[bytes | None, bytes]],
    rate: float,
    duration_s: float,
) -> tuple[dict[str, float], float, float]:
    """Produce ``facts`` at ``rate`` and wait until the processor committed them all.

    Returns each fact's produce time by ``"<partition>:<offset>"``, the start of the run and the rate
    achieved (the reader processes stamp the rows meanwhile; see :func:`_latencies`).

    Every 2 ms the facts due by then are appended to one record batch per partition (a broadcast to
    every partition, a keyed fact where ``send(key=...)`` would put it) and handed to the producer; a
    fact's produce time is the stamp taken just before its batch is built.
    """
    partitions = sorted(await producer.partitions_for(pipeline.facts))
    sent_at: dict[tuple[int, int], float] = {}
    targets: dict[int, int] = {}

    def remember(future: asyncio.Future[Any], stamp: float, count: int) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        metadata = future.result()
        for offset in range(metadata.offset, metadata.offset + count):
            sent_at[(metadata.partition, offset)] = stamp
        if metadata.offset + count > targets.get(metadata.partition, 0):
            targets[metadata.partition] = metadata.offset + count

    def caught_up() -> bool:
        offsets = pipeline.offsets()
        return all(offsets.get(p, 0) >= t for p, t in targets.items())

    async def send(partition: int, values: list[bytes], stamp: float) -> None:
        futures = await send_batched(producer, pipeline.facts, partition, [(None, value, None) for value in values])
        # One producer and its batches queued in order: the tick's facts of a partition have consecutive
        # offsets from the first batch's base offset (nothing else writes the facts topic meanwhile).
        futures[0].add_done_callback(functools.partial(remember, stamp=stamp, count=len(values)))
        pending.extend(futures)

    pending: list[asyncio.Future[Any]] = []
    started = time.monotonic()
    index = 0
    total = len(facts)
    while index < total:
        due = min(total, int((time.monotonic() - started) * rate) + 1)
        stamp = time.monotonic()
        groups: dict[int, list[bytes]] = {}
        for key, value in facts[index:due]:
            targets_of = partitions if key is None else [_partitioner(key, partitions, partitions)]
            for partition in targets_of:
                groups.setdefault(partition, []).append(value)
        index = due
        for partition, values in groups.items():
            await send(partition, values, stamp)
        if time.monotonic() - started > duration_s * 3:
            break  # cannot keep the pace: stop, the achieved rate says so
        await asyncio.sleep(0.002)
    sent_for = time.monotonic() - started
    await asyncio.gather(*pending)
    await asyncio.sleep(0)
    deadline = time.monotonic() + 60
    while not caught_up() and time.monotonic() < deadline:  # noqa: ASYNC110 - the child's lines update offsets
        await asyncio.sleep(0.01)
    keyed = {f"{partition}:{offset}": sent for (partition, offset), sent in sent_at.items()}
    return keyed, started, index / max(1e-6, sent_for)


def _latencies(
    sent_at: dict[str, float], seen: list[dict[str, float]], started: float, warmup_s: float
) -> list[list[float]]:
    """Per reader, ms from produce to first readable row of every fact sent after the warm-up."""
    cutoff = started + warmup_s
    global _last_timeline
    _last_timeline = sorted(
        (round(sent - started, 3), round(1000 * (seen[0][key] - sent), 1))
        for key, sent in sent_at.items()
        if key in seen[0]
    )
    return [
        [1000 * (first_seen[key] - sent) for key, sent in sent_at.items() if key in first_seen and sent >= cutoff]
        for first_seen in seen
    ]


_last_timeline: list[tuple[float, float]] = []
"""(seconds into the run the fact was sent, its latency in ms) of the last latency run, prompt reader."""


# --------------------------------------------------------------------------------------------------------
# B6: restore from the changelog
# --------------------------------------------------------------------------------------------------------


def _family_pool(copy: Copy) -> tuple[list[bytes], list[tuple[str, bytes]], bytes]:
    """Realistic family records: the state half-way through a workload copy (open families included)."""
    values = copy.values
    reducer = PartitionReducer(idle_ttl_ms=24 * 3600 * 1000)
    for _ in reducer.run_all(values[: len(values) // 2]):
        pass
    records = snapshot(reducer.state)
    families = [value for key, value in records.items() if key.startswith("t:")]
    connections = [(key, value) for key, value in records.items() if key.startswith("c:")]
    return families, connections, records["w:"]


async def run_b6(env: KafkaEnv, plan: Plan, copy: Copy, *, force_profile: bool = False) -> CaseReport:
    report = CaseReport("B6", "restore a partition's state from its changelog")
    pool, connections, watermark = _family_pool(copy)
    mean = sum(len(v) for v in pool) / max(1, len(pool))
    report.notes.append(
        f"family records drawn from the state half-way through the workload ({len(pool):,} distinct families, "
        f"mean {mean:.0f} bytes msgpack), one record per family (a compacted changelog)"
    )
    for size in plan.restore_sizes:
        topic = env.name(f"b6-{size}")
        await create_topics(env, [(topic, 1, {"cleanup.policy": "compact", "min.compaction.lag.ms": "0"})])
        producer = AIOKafkaProducer(
            bootstrap_servers=env.bootstrap, acks="all", enable_idempotence=True, linger_ms=20, max_batch_size=1 << 20
        )
        await producer.start()
        try:
            pending = [await producer.send(topic, value, key=key.encode(), partition=0) for key, value in connections]
            for index in range(size):
                value = pool[index % len(pool)]
                pending.append(await producer.send(topic, value, key=f"t:bench-{index:07d}".encode(), partition=0))
                if len(pending) >= 20_000:
                    await asyncio.gather(*pending)
                    pending.clear()
            pending.append(await producer.send(topic, watermark, key=b"w:", partition=0))
            await asyncio.gather(*pending)
        finally:
            await producer.stop()
        say(f"B6: restore {size:,} families, {plan.repeats} runs (+ raw consume baseline)")
        restore_runs: list[float] = []
        raw_runs: list[float] = []
        for _ in range(plan.repeats):
            seconds, families = await _restore_once(env, topic)
            if families != size:
                raise AssertionError(f"restored {families} families, wrote {size}")
            restore_runs.append(size / seconds)
            raw_runs.append(size / await _consume_once(env, topic))
        row = Row(
            "B6",
            f"restore_states, {size:,} families",
            "threads/s",
            restore_runs,
            raw_runs,
            "raw consume of the same records",
            target=f">= {B6_MIN_RATE:,.0f}/s",
        )
        row.passed = row.worst >= B6_MIN_RATE
        report.rows.append(row)
        if force_profile or (plan.profile_misses and row.passed is False):
            import cProfile
            import io
            import pstats

            from tools.bench.common import profile_summary

            profiler = cProfile.Profile()
            profiler.enable()
            await _restore_once(env, topic)
            profiler.disable()
            report.profiles[f"B6 restore {size:,}"] = profile_summary(
                pstats.Stats(profiler, stream=io.StringIO()), title=f"cProfile of restore_states ({size:,} families)"
            )
    return report


_RESTORE_TTL_MS = 24 * 3600 * 1000


async def _restore_once(env: KafkaEnv, topic: str) -> tuple[float, int]:
    consumer = restore_consumer(bootstrap_servers=env.bootstrap)
    await consumer.start()
    try:
        started = time.perf_counter()
        states = await restore_states(consumer, topic, [0], idle_ttl_ms=_RESTORE_TTL_MS)
        elapsed = time.perf_counter() - started
    finally:
        await consumer.stop()
    reducer, _input_offset = states[0]
    return elapsed, len(reducer.state.families)


async def _consume_once(env: KafkaEnv, topic: str) -> float:
    consumer = restore_consumer(bootstrap_servers=env.bootstrap)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        started = time.perf_counter()
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        await consumer.seek_to_beginning(tp)
        while await consumer.position(tp) < end:
            await consumer.getmany(tp, timeout_ms=500, max_records=20_000)
        return time.perf_counter() - started
    finally:
        await consumer.stop()


__all__ = ["Child", "KafkaEnv", "KafkaOutcome", "create_topics", "gated_publish", "run_b2_b3_b7", "run_b6"]
