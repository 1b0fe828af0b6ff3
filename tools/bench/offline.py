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
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import msgspec
from aiokafka.structs import ConsumerRecord

from reducer.boundary import PartitionReducer
from schemas.codec import encode_family
from schemas.compiled import ENV, VARIANT_SETTINGS, requested, variant
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


def _timed(function: Callable[[list[bytes]], int], values: list[bytes]) -> tuple[float, float]:
    """Facts per wall-clock second and per CPU second of this process (the latter barely moves when other
    processes compete for the cores; wall-clock rates are what the targets judge)."""
    cpu = time.process_time()
    started = time.perf_counter()
    function(values)
    elapsed = time.perf_counter() - started
    return len(values) / elapsed, len(values) / max(1e-9, time.process_time() - cpu)


def profile_call(function: Callable[[], Any], title: str, top: int = 18) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    function()
    profiler.disable()
    return profile_summary(pstats.Stats(profiler, stream=io.StringIO()), title=title, top=top)


def run_b1(plan: Plan, copy: Copy, *, force_profile: bool = False) -> CaseReport:
    report = CaseReport("B1", "reducer without a broker")
    values = copy.values
    built = variant()
    say(
        f"B1: {len(values)} facts, {plan.repeats} runs each of reduce / codec ceiling / worker batch path; "
        f"reducer build: {built}"
    )
    reduce_all(values[: min(len(values), 20_000)])  # warm caches (imports, decoders, type caches)
    runs: dict[str, list[tuple[float, float]]] = {"ceiling": [], "reducer": [], "worker": []}
    for _ in range(plan.repeats):
        for part, rates in _b1_repeat(values).items():
            runs[part].append(rates)
    rows_out = reduce_all(values)
    report.rows += _b1_rows(runs, variant=None)
    report.series["variant"] = built
    report.series["rows_per_fact"] = rows_out / max(1, len(values))
    report.notes.append(f"reducer build measured: {built} ({ENV}={requested()}; python -m tools.compile status)")
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
        report.rows.append(_replay_row(plan, values, [rate for rate, _ in runs["ceiling"]]))
    if force_profile or (plan.profile_misses and report.rows[0].passed is False):
        report.profiles["B1 reducer"] = profile_call(lambda: reduce_all(values), "cProfile of reduce_all (B1)")
    if force_profile:
        report.profiles["B1 processor batch path"] = profile_call(
            lambda: worker_all(values), "cProfile of PartitionWorker.reduce_batch over the workload (no Kafka)"
        )
    return report


def _b1_repeat(values: list[bytes]) -> dict[str, tuple[float, float]]:
    """One B1 repeat: (wall, CPU) facts/s of the ceiling, the reducer and the batch path, in that order."""
    return {
        "ceiling": _timed(codec_ceiling, values),
        "reducer": _timed(reduce_all, values),
        "worker": _timed(worker_all, values),
    }


def _b1_rows(runs: dict[str, list[tuple[float, float]]], *, variant: str | None) -> list[Row]:
    """B1's rows from (wall, CPU) rates per run; ``variant`` names the build in the rows when several are measured."""
    tag = f" [{variant}]" if variant else ""
    wall = {name: [rate for rate, _ in pairs] for name, pairs in runs.items()}
    cpu = {name: [rate for _, rate in pairs] for name, pairs in runs.items()}
    reducer = Row(
        "B1",
        f"reducer: decode + reduce + encode rows{tag}",
        "facts/s",
        wall["reducer"],
        wall["ceiling"],
        "msgspec decode+encode",
        target=f">= {B1_MIN_RATIO:.0%} of ceiling and >= {B1_MIN_RATE:,.0f}/s",
    )
    reducer.passed = (reducer.worst_ratio or 0) >= B1_MIN_RATIO and reducer.worst >= B1_MIN_RATE
    return [
        reducer,
        Row(
            "B1",
            f"processor batch path, no broker (caps, expiry, changelog encode){tag}",
            "facts/s",
            wall["worker"],
            wall["ceiling"],
            "msgspec decode+encode",
            note="info: the per-partition CPU work of B2 without Kafka",
        ),
        Row(
            "B1",
            f"reducer per CPU-second (process CPU time){tag}",
            "facts/CPU-s",
            cpu["reducer"],
            cpu["ceiling"],
            "msgspec decode+encode per CPU-second",
            note="info: CPU time, less sensitive than wall time to other processes on the machine",
        ),
    ]


def b1_child(values_path: str, *, digest: bool) -> dict[str, Any]:
    """One B1 repeat in a fresh process (``python -m tools.bench.child b1``): ceiling, reducer and batch path,
    (wall, CPU) facts/s each, with the build this process runs (set by ``RA_COMPILED`` in its environment)."""
    values = msgspec.msgpack.decode(Path(values_path).read_bytes(), type=list[bytes])
    gc.collect()
    gc.freeze()  # as in the bench process: the workload copy is the bench's, not the code's under test
    built = variant()
    reduce_all(values[: min(len(values), 20_000)])
    result: dict[str, Any] = {"variant": built, **_b1_repeat(values)}
    if digest:
        from tools.bench.digest import rows_digest

        result["rows_digest"] = rows_digest(values)
    return result


def run_b1_variants(
    plan: Plan, copy: Copy, variants: Sequence[str], runner: Callable[[list[str], dict[str, str]], dict[str, Any]]
) -> CaseReport:
    """B1 for several builds in one bench run (``bench --cases B1 --variants pure,compiled``).

    Each repeat runs every build once, in a fresh child process per build and repeat (``RA_COMPILED=0`` for
    pure, ``1`` for compiled: a missing or stale build fails the case instead of measuring pure Python twice);
    the order alternates between repeats, so drift of the machine's load hits every build alike. Each child
    measures its own ceiling, so every build's ratio is against a ceiling measured beside it."""
    report = CaseReport("B1", "reducer without a broker, " + " vs ".join(variants))
    values = copy.values
    say(f"B1: {len(values)} facts, {plan.repeats} runs of each build ({', '.join(variants)}) in child processes")
    runs: dict[str, dict[str, list[tuple[float, float]]]] = {
        name: {"ceiling": [], "reducer": [], "worker": []} for name in variants
    }
    digests: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="bench-b1-") as tmp:
        path = Path(tmp) / "values.msgpack"
        path.write_bytes(msgspec.msgpack.encode(values))
        for repeat in range(plan.repeats):
            order = list(variants) if repeat % 2 == 0 else list(reversed(variants))
            for name in order:
                args = ["b1", "--values", str(path)] + (["--digest"] if name not in digests else [])
                result = runner(args, {ENV: VARIANT_SETTINGS[name]})
                if result["variant"] != name:
                    raise RuntimeError(f"asked for the {name} build, the child ran {result['variant']}")
                if "rows_digest" in result:
                    digests[name] = result["rows_digest"]
                for part in ("ceiling", "reducer", "worker"):
                    rates = result[part]
                    runs[name][part].append((float(rates[0]), float(rates[1])))
    for name in variants:
        report.rows += _b1_rows(runs[name], variant=name)
    if len(variants) == 2:
        base, other = variants
        measures = (
            ("", "facts/s", "info: wall-clock rates"),
            (" per CPU-second", "facts/CPU-s", "info: process CPU time"),
        )
        for part, title in (("reducer", "reducer"), ("worker", "processor batch path")):
            for index, (per, unit, note) in enumerate(measures):  # index 0: wall-clock rate, 1: CPU rate
                report.rows.append(
                    Row(
                        "B1",
                        f"{title}{per}: {other} against {base}",
                        unit,
                        [pair[index] for pair in runs[other][part]],
                        [pair[index] for pair in runs[base][part]],
                        f"{title} [{base}]{per}",
                        note=note,
                    )
                )
    report.series["variants"] = list(variants)
    report.series["rows_digests"] = digests
    first = next(iter(digests.values()), None)
    report.series["rows_digest"] = first
    same = len(set(digests.values())) == 1
    report.notes.append(
        "rows digest per build (tools.bench.digest, SHA-256 over the batch path's output): "
        + ", ".join(f"{name} {digest}" for name, digest in digests.items())
        + (" (identical)" if same else " (DIFFERENT: a build changed the rows)")
    )
    if not same:
        report.error = "the builds' rows digests differ"
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
