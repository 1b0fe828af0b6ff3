"""Cases without a broker: B1 (pure reducer, and the replay CLI) and B5 (memory, in a child process)."""

from __future__ import annotations

import cProfile
import gc
import io
import json
import pstats
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import msgspec
from aiokafka.structs import ConsumerRecord

from reducer.boundary import PartitionReducer
from schemas.codec import encode_family
from schemas.facts import FactEnvelope
from services.processor.partition import PartitionWorker
from tools.bench.common import CaseReport, Row, profile_summary, rss_bytes, say
from tools.bench.plan import Plan
from tools.bench.workload import Copy, workload

B1_MIN_RATIO = 0.35
B1_MIN_RATE = 220_000.0
B5_MAX_BYTES_PER_THREAD = 2048
B5_MAX_RSS_GROWTH = 0.05

# --------------------------------------------------------------------------------------------------------
# B1
# --------------------------------------------------------------------------------------------------------


def reduce_all(values: list[bytes]) -> int:
    """The reducer as the processor runs it (reducer.boundary): decode, reduce, encode rows and state. Returns rows."""
    reducer = PartitionReducer(idle_ttl_ms=24 * 3600 * 1000)
    return sum(len(result.rows) for result in reducer.run_all(values))


def codec_ceiling(values: list[bytes]) -> int:
    """The same bytes through msgspec alone: typed decode (the reducer's decoder type) + encode."""
    decode = msgspec.json.Decoder(FactEnvelope).decode
    encode = msgspec.json.Encoder().encode
    total = 0
    for raw in values:
        total += len(encode(decode(raw)))
    return total


def fake_records(values: Iterable[bytes], *, topic: str = "facts", partition: int = 0, first: int = 0) -> list[Any]:
    return [
        ConsumerRecord(topic, partition, offset, 0, 0, None, raw, None, 0, len(raw), ())
        for offset, raw in enumerate(values, start=first)
    ]


def offline_worker(idle_ttl_ms: int) -> PartitionWorker:
    """A fresh partition worker without a producer: its batch path runs, nothing is committed."""
    return PartitionWorker(
        topic="facts", partition=0, producer=None, reducer=PartitionReducer(idle_ttl_ms=idle_ttl_ms), next_offset=0
    )


def worker_all(values: list[bytes], *, batch: int = 1000, idle_ttl_ms: int = 24 * 3600 * 1000) -> int:
    """The processor's per-partition batch path (decode, reduce, encode rows, caps, expiry, changelog), no Kafka."""
    worker = offline_worker(idle_ttl_ms)
    records = fake_records(values)
    rows = 0
    for start in range(0, len(records), batch):
        out = worker.reduce_batch(records[start : start + batch])
        worker.next_offset = out.next_offset or worker.next_offset
        rows += len(out.rows)
    return rows


def _timed(function: Callable[[list[bytes]], int], values: list[bytes]) -> float:
    started = time.perf_counter()
    function(values)
    return len(values) / (time.perf_counter() - started)


def profile_call(function: Callable[[], Any], title: str, top: int = 18) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    function()
    profiler.disable()
    return profile_summary(pstats.Stats(profiler, stream=io.StringIO()), title=title, top=top)


def run_b1(plan: Plan, copy: Copy, *, force_profile: bool = False) -> CaseReport:
    report = CaseReport("B1", "reducer without a broker")
    values = copy.values
    say(f"B1: {len(values)} facts, {plan.repeats} runs each of reduce / codec ceiling / worker batch path")
    reduce_all(values[: min(len(values), 20_000)])  # warm caches (imports, decoders, type caches)
    reducer_runs: list[float] = []
    ceiling_runs: list[float] = []
    worker_runs: list[float] = []
    for _ in range(plan.repeats):
        ceiling_runs.append(_timed(codec_ceiling, values))
        reducer_runs.append(_timed(reduce_all, values))
        worker_runs.append(_timed(worker_all, values))
    rows_out = reduce_all(values)
    reducer = Row(
        "B1",
        "reducer: decode + reduce + encode rows",
        "facts/s",
        reducer_runs,
        ceiling_runs,
        "msgspec decode+encode",
        target=f">= {B1_MIN_RATIO:.0%} of ceiling and >= {B1_MIN_RATE:,.0f}/s",
    )
    reducer.passed = (reducer.worst_ratio or 0) >= B1_MIN_RATIO and reducer.worst >= B1_MIN_RATE
    report.rows.append(reducer)
    report.rows.append(
        Row(
            "B1",
            "processor batch path, no broker (caps, expiry, changelog encode)",
            "facts/s",
            worker_runs,
            ceiling_runs,
            "msgspec decode+encode",
            note="info: the per-partition CPU work of B2 without Kafka",
        )
    )
    report.series["rows_per_fact"] = rows_out / max(1, len(values))
    report.notes.append(
        f"{len(values):,} facts, {rows_out:,} rows ({rows_out / max(1, len(values)):.2f} rows per fact), "
        f"mean fact {copy.bytes / max(1, len(values)):.0f} bytes"
    )
    from tools.bench.digest import rows_digest

    report.series["rows_digest"] = rows_digest(values)
    report.notes.append(
        f"rows digest (tools.bench.digest, SHA-256 over the batch path's output): {report.series['rows_digest']}"
    )
    if plan.replay:
        report.rows.append(_replay_row(plan, values, ceiling_runs))
    if force_profile or (plan.profile_misses and reducer.passed is False):
        report.profiles["B1 reducer"] = profile_call(lambda: reduce_all(values), "cProfile of reduce_all (B1)")
    if force_profile:
        report.profiles["B1 processor batch path"] = profile_call(
            lambda: worker_all(values), "cProfile of PartitionWorker.reduce_batch over the workload (no Kafka)"
        )
    return report


def _replay_row(plan: Plan, values: list[bytes], ceiling_runs: list[float]) -> Row:
    """``replay`` end to end: a subprocess reading a JSON-lines file and writing rows to /dev/null."""
    runs: list[float] = []
    note = "info: includes interpreter start-up and file I/O"
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        path = Path(tmp) / "facts.jsonl"
        path.write_bytes(b"".join(value + b"\n" for value in values))
        command = [sys.executable, "-m", "services.replay", str(path), "--out", "/dev/null", "--quiet"]
        for _ in range(plan.repeats):
            started = time.perf_counter()
            completed = subprocess.run(command, capture_output=True, check=False)
            elapsed = time.perf_counter() - started
            if completed.returncode != 0:
                note = f"replay exited {completed.returncode}: {completed.stderr.decode()[-300:]}"
                break
            runs.append(len(values) / elapsed)
    return Row(
        "B1",
        "replay CLI end to end (file -> rows file)",
        "facts/s",
        runs,
        ceiling_runs,
        "msgspec decode+encode",
        note=note,
    )


# --------------------------------------------------------------------------------------------------------
# B5 (runs in a child process: python -m tools.bench.child memory --plan ...)
# --------------------------------------------------------------------------------------------------------


def _batches(plan: Plan, facts: int, *, seed: int, batch: int = 1000) -> Iterator[list[bytes]]:
    """``facts`` good facts from a long workload, in batches (generated on the fly: no list of the stream)."""
    threads = max(plan.memory_concurrency * 2, facts // 30 + 1)
    stream = workload(plan, seed=seed, threads=threads, concurrency=plan.memory_concurrency).facts()
    chunk: list[bytes] = []
    for count, fact in enumerate(stream, start=1):
        chunk.append(fact.value)
        if len(chunk) == batch:
            yield chunk
            chunk = []
        if count >= facts:
            break
    if chunk:
        yield chunk


def memory_child(plan_fields: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {key: _tuples(value) for key, value in plan_fields.items()}
    plan = Plan(**fields)
    gc.collect()
    result: dict[str, Any] = {"rss_start": rss_bytes()}
    # Part 1: RSS over a long stream in which threads finish and expire (idle TTL in fact time).
    worker = offline_worker(plan.memory_idle_ttl_ms)
    samples: list[tuple[int, int, int]] = []  # (facts so far, rss bytes, families in state)
    done = 0
    sample_every = max(1000, plan.memory_facts // 100)
    next_sample = 0
    for values in _batches(plan, plan.memory_facts, seed=plan.seed + 1000):
        worker.reduce_batch(fake_records(values, first=done))
        done += len(values)
        worker.next_offset = done
        if done >= next_sample:
            samples.append((done, rss_bytes(), len(worker.state.families)))
            next_sample += sample_every
    samples.append((done, rss_bytes(), len(worker.state.families)))
    result["samples"] = samples
    del worker
    gc.collect()
    # Part 2: bytes per open thread, measured: traced memory held by the state (freed when the state goes).
    tracemalloc.start(1)
    prefix = max(1000, min(plan.memory_facts, 50 * plan.memory_concurrency))
    values = [value for chunk in _batches(plan, prefix, seed=plan.seed + 2000) for value in chunk]
    worker = offline_worker(plan.memory_idle_ttl_ms)
    records = fake_records(values)
    for start in range(0, len(records), 1000):
        worker.reduce_batch(records[start : start + 1000])
    del records, values
    state = worker.state
    del worker
    gc.collect()
    held_snapshot = tracemalloc.take_snapshot()
    held = tracemalloc.get_traced_memory()[0]
    families = len(state.families)
    threads = sum(len(family.threads) for family in state.families.values())
    changelog_bytes = sum(len(encode_family(family)) for family in state.families.values())
    sections = _section_sizes(state)
    del state
    gc.collect()
    freed_snapshot = tracemalloc.take_snapshot()
    freed = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    state_bytes = held - freed
    result.update(
        {
            "facts_traced": prefix,
            "families": families,
            "threads": threads,
            "state_bytes": state_bytes,
            "bytes_per_family": state_bytes / max(1, families),
            "bytes_per_thread": state_bytes / max(1, threads),
            "changelog_bytes_per_family": changelog_bytes / max(1, families),
            "entries": sections,
            "top_allocations": [
                f"{stat.size_diff / max(1, families):8.1f} B/family  {stat.traceback.format()[-1].strip()}"
                for stat in held_snapshot.compare_to(freed_snapshot, "lineno")[:12]
            ],
        }
    )
    return result


def _tuples(value: Any) -> Any:
    """JSON lists back to the tuples a :class:`Plan` holds."""
    return tuple(_tuples(item) for item in value) if isinstance(value, list) else value


def _section_sizes(state: Any) -> dict[str, float]:
    """Mean entries per family in each family map (what a family holds)."""
    families = list(state.families.values()) or [None]
    names = ("threads", "requests", "turns", "started_at_ms", "pending_reviews", "summaries")
    return {
        name: sum(len(getattr(family, name)) for family in families if family is not None) / len(families)
        for name in names
    }


def run_b5(plan: Plan, runner: Callable[[list[str]], dict[str, Any]]) -> CaseReport:
    """Run :func:`memory_child` ``plan.repeats`` times in fresh processes and judge the targets."""
    report = CaseReport("B5", "memory: state per open thread, RSS over a long stream")
    say(
        f"B5: {plan.repeats} child runs of {plan.memory_facts:,} facts, {plan.memory_concurrency} open families, "
        f"idle TTL {plan.memory_idle_ttl_ms / 1000:.0f} s of fact time"
    )
    # Fresh processes, run side by side: memory readings do not suffer from sharing the CPU.
    with ThreadPoolExecutor(max_workers=plan.repeats) as pool:
        results = list(pool.map(lambda _: runner(["memory", "--plan", json.dumps(asdict(plan))]), range(plan.repeats)))
    per_family = Row(
        "B5",
        "reducer state per open thread (family: root thread + sub-agents; tracemalloc)",
        "bytes",
        [r["bytes_per_family"] for r in results],
        target=f"<= {B5_MAX_BYTES_PER_THREAD} bytes",
        higher_is_better=False,
        note=f"changelog value {results[0]['changelog_bytes_per_family']:.0f} B/family (msgpack)",
    )
    per_family.passed = per_family.worst <= B5_MAX_BYTES_PER_THREAD
    per_thread = Row(
        "B5",
        "reducer state per thread id (sub-agent threads counted too)",
        "bytes",
        [r["bytes_per_thread"] for r in results],
        higher_is_better=False,
        note="info",
    )
    growth_runs = []
    for r in results:
        growth, _ = _rss_growth(r["samples"])
        growth_runs.append(100 * growth)
    flat = Row(
        "B5",
        "RSS growth over the steady second half of the stream",
        "%",
        growth_runs,
        target=f"<= {100 * B5_MAX_RSS_GROWTH:.0f} % (flat)",
        higher_is_better=False,
    )
    flat.passed = max(growth_runs) <= 100 * B5_MAX_RSS_GROWTH
    report.rows += [per_family, per_thread, flat]
    first = results[0]
    _, detail = _rss_growth(first["samples"])
    report.series["rss_samples"] = first["samples"]
    report.notes.append(
        f"state measured after {first['facts_traced']:,} facts: {first['families']:,} families, "
        f"{first['threads']:,} threads, {first['state_bytes'] / 1e6:.1f} MB held; mean entries per family "
        + ", ".join(f"{k} {v:.2f}" for k, v in first["entries"].items())
    )
    report.notes.append(detail)
    if per_family.passed is False or flat.passed is False or plan.mode == "full":
        report.profiles["B5 allocations"] = (
            "tracemalloc: state bytes by allocation site (per family)\n  " + "\n  ".join(first["top_allocations"])
        )
    return report


def _rss_growth(samples: list[list[int]] | list[tuple[int, int, int]]) -> tuple[float, str]:
    """Relative RSS growth from the middle of the stream to its end, and a sentence describing it."""
    if len(samples) < 4:
        return 0.0, "too few samples"
    half = len(samples) // 2
    middle = samples[half]
    end = samples[-1]
    peak_after = max(sample[1] for sample in samples[half:])
    growth = (peak_after - middle[1]) / max(1, middle[1])
    families_mid = middle[2]
    families_end = end[2]
    return growth, (
        f"RSS {middle[1] / 2**20:.1f} MiB at {middle[0]:,} facts ({families_mid:,} families in state) -> peak "
        f"{peak_after / 2**20:.1f} MiB by {end[0]:,} facts ({families_end:,} families)"
    )
