"""B4: the sender (events -> HTTP endpoint, commit after ack) against plain httpx POSTs of the same bodies.

* The endpoint is a minimal keep-alive HTTP server in its own process (:mod:`.child` ``endpoint``): it
  parses each body as JSON and answers 200, so neither side waits on a slow receiver.
* The rows are the reducer's own: each workload copy reduced offline, with the processor's key (the
  family) and headers (``row-id``, ``event-type``). A repeat publishes them in one transaction (the same
  gate as B2) to the events topic of a sender that is already running, joined and assigned (a real
  :class:`services.sender.Sender` in this process, with the production client settings); the clock runs
  from the commit to the sender's last offset commit.
* The baseline posts exactly the bodies the sender posted in that repeat (recorded by a thin
  :class:`EndpointClient` subclass), with the same idempotency keys, one sequential stream per
  partition and the partitions concurrently, as the sender does, on an identical ``httpx`` client.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import gc
import io
import pstats
import time
from collections import defaultdict
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry

from reducer.boundary import PartitionReducer
from schemas.headers import EVENT_TYPE_HEADER, ROW_ID_HEADER
from schemas.http import EVENTS_PATH
from services.config import KafkaSettings, SenderConfig
from services.metrics import SenderMetrics
from services.processor.partition import event_type_header
from services.sender.client import EndpointClient
from services.sender.loop import Sender, create_consumer, create_producer
from tools.bench.common import CaseReport, Row, cpu_seconds, profile_summary, say
from tools.bench.kafka import Child, KafkaEnv, create_topics, gated_publish
from tools.bench.plan import Plan
from tools.bench.workload import Copy
from tools.localkafka import free_ports

B4_MIN_RATIO = 0.90


def rows_of(copy: Copy, *, topic: str = "facts") -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    """The rows the processor would publish for ``copy`` (one partition's numbering): key, value, headers."""
    out: list[tuple[bytes, bytes, list[tuple[str, bytes]]]] = []
    reducer = PartitionReducer(idle_ttl_ms=24 * 3600 * 1000)
    batch = 1000
    for first, result in zip(range(0, len(copy.values), batch), reducer.run_all(copy.values, batch=batch), strict=True):
        for row in result.rows:
            headers = [
                (ROW_ID_HEADER, f"{topic}-{copy.index}-{first + row.position}-{row.nth}".encode()),
                (EVENT_TYPE_HEADER, event_type_header(row.cls)),
            ]
            out.append((row.family.encode(), row.value, headers))
    return out


class _RecordingClient(EndpointClient):
    """The sender's client, remembering each accepted body and its key, by the posting worker task."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bodies: dict[str, list[tuple[bytes, str]]] = defaultdict(list)
        self.post_seconds = 0.0
        self.workers: set[int] = set()
        """The sender's delivery tasks that posted (one per partition at a time; a worker delivers every
        chunk fetched for its partition while it runs)."""

    def reset(self) -> None:
        self.bodies.clear()
        self.workers.clear()
        self.post_seconds = 0.0

    async def post_batch(self, body: bytes, idempotency_key: str) -> int:
        started = time.monotonic()
        status = await super().post_batch(body, idempotency_key)
        self.post_seconds += time.monotonic() - started
        task = asyncio.current_task()
        self.workers.add(id(task))
        self.bodies[task.get_name() if task is not None else "?"].append((body, idempotency_key))
        return status


class _TimedConsumer(AIOKafkaConsumer):  # type: ignore[misc]
    """The sender's consumer (same object, same settings) that also notes when it committed a target."""

    bench_targets: dict[int, int]
    bench_committed: dict[int, int]
    bench_done: asyncio.Event
    bench_done_at: float

    bench_commit_seconds: float = 0.0
    bench_commits: int = 0

    async def commit(self, offsets: Any = None) -> None:
        started = time.monotonic()
        await super().commit(offsets)
        self.bench_commit_seconds += time.monotonic() - started
        self.bench_commits += 1
        for tp, offset in (offsets or {}).items():
            # An int, an (offset, metadata) tuple or an OffsetAndMetadata, as aiokafka accepts.
            value = offset if isinstance(offset, int) else offset[0] if isinstance(offset, tuple) else offset.offset
            self.bench_committed[tp.partition] = max(self.bench_committed.get(tp.partition, 0), value)
        if self.bench_targets and all(
            self.bench_committed.get(p, 0) >= target for p, target in self.bench_targets.items()
        ):
            self.bench_done_at = time.monotonic()
            self.bench_done.set()


def _http_client(timeout_s: float) -> httpx.AsyncClient:
    # The composition root's settings (services/sender/__main__.py).
    return httpx.AsyncClient(
        http1=True,
        http2=False,
        follow_redirects=False,
        timeout=timeout_s,
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=30.0),
    )


async def _plain_httpx(url: str, bodies: dict[str, list[tuple[bytes, str]]], timeout_s: float) -> float:
    """POST every recorded body, per-partition streams in parallel; return the seconds it took."""
    async with _http_client(timeout_s) as http:

        async def stream(items: list[tuple[bytes, str]]) -> None:
            for body, key in items:
                response = await http.post(
                    url, content=body, headers={"Content-Type": "application/json", "Idempotency-Key": key}
                )
                if response.status_code // 100 != 2:
                    raise RuntimeError(f"endpoint answered {response.status_code}")

        # Warm the connections as the sender's are warm, then time.
        await asyncio.gather(*(http.get(url.replace(EVENTS_PATH, "/healthz")) for _ in bodies))
        started = time.monotonic()
        await asyncio.gather(*(stream(items) for items in bodies.values()))
        return time.monotonic() - started


async def run_b4(
    env: KafkaEnv, plan: Plan, copies: list[Copy], spare: Copy, *, force_profile: bool = False
) -> CaseReport:
    report = CaseReport("B4", "sender: events -> HTTP endpoint, commit after ack")
    row_sets = [rows_of(copy)[: plan.sender_rows] for copy in [*copies, spare]]
    # The bench's own data, as for the workload copies (bench.__main__): these ~160k tuples and lists would
    # otherwise be traversed by every full collection the sender's allocations trigger in this process.
    gc.collect()
    gc.freeze()
    say(f"B4: {len(row_sets[0]):,} rows per run, {plan.repeats} runs; baseline: plain httpx, same bodies")
    port = free_ports(1)[0]
    endpoint = await Child("endpoint", ["endpoint", "--port", str(port)], env.work).start()
    await endpoint.wait_for(lambda last: last.get("ready") is True, 30, "endpoint ready")
    events = env.name("b4-events")
    await create_topics(env, [(events, plan.partitions, {}), (events + ".dlq", plan.partitions, {})])
    config = SenderConfig(
        kafka=KafkaSettings(bootstrap_servers=env.bootstrap),
        events_topic=events,
        dlq_topic=events + ".dlq",
        group_id=env.name("b4-sender"),
        endpoint_url=f"http://127.0.0.1:{port}",
        metrics_port=0,
    )
    consumer = create_consumer(config)
    consumer.__class__ = _TimedConsumer  # same instance and settings, plus the commit note
    assert isinstance(consumer, _TimedConsumer)
    consumer.bench_targets, consumer.bench_committed, consumer.bench_done = {}, {}, asyncio.Event()
    producer = create_producer(config)
    http = _http_client(config.request_timeout_s)
    client = _RecordingClient(http, base_url=config.endpoint_url, timeout_s=config.request_timeout_s)
    sender = Sender(
        consumer=consumer, producer=producer, client=client, config=config, metrics=SenderMetrics(CollectorRegistry())
    )
    sender_runs: list[float] = []
    httpx_runs: list[float] = []
    cpu_runs: list[float] = []
    breakdown: list[dict[str, float]] = []
    await producer.start()
    await consumer.start()
    running = asyncio.create_task(sender.run())
    try:
        deadline = time.monotonic() + 60
        while len(consumer.assignment()) < plan.partitions:
            if running.done():
                running.result()
            if time.monotonic() > deadline:
                raise TimeoutError("the sender was not assigned its partitions within 60 s")
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)
        for index, rows in enumerate(row_sets):
            profiling = index == len(row_sets) - 1
            if profiling and not force_profile and not (plan.profile_misses and _missed(sender_runs, httpx_runs)):
                break
            client.reset()
            consumer.bench_commit_seconds, consumer.bench_commits = 0.0, 0
            consumer.bench_done.clear()
            consumer.bench_targets = {}
            published = await gated_publish(env, events, rows)
            consumer.bench_targets = published.targets
            cpu_before = cpu_seconds()
            profiler = cProfile.Profile() if profiling else None
            if profiler is not None:
                profiler.enable()
            if all(consumer.bench_committed.get(p, 0) >= t for p, t in published.targets.items()):
                consumer.bench_done_at = time.monotonic()
            else:
                done_waiter = asyncio.ensure_future(consumer.bench_done.wait())
                await asyncio.wait({done_waiter, running}, timeout=600, return_when=asyncio.FIRST_COMPLETED)
                if running.done():
                    done_waiter.cancel()
                    running.result()
                    raise RuntimeError("the sender stopped before delivering every row")
                if not done_waiter.done():
                    done_waiter.cancel()
                    raise TimeoutError("the sender did not commit every row within 600 s")
            if profiler is not None:
                profiler.disable()
                report.profiles["B4 sender"] = profile_summary(
                    pstats.Stats(profiler, stream=io.StringIO()),
                    title="cProfile of the sender (in-process) over one extra run",
                )
                break
            elapsed = consumer.bench_done_at - published.committed_at
            sender_runs.append(len(rows) / elapsed)
            cpu_runs.append(cpu_seconds() - cpu_before)
            plain = await _plain_httpx(client.url, dict(client.bodies), config.request_timeout_s)
            httpx_runs.append(len(rows) / plain)
            requests = sum(len(items) for items in client.bodies.values())
            busy = elapsed * len(published.targets)
            breakdown.append(
                {
                    "requests": requests,
                    "workers": len(client.workers),
                    "commits": consumer.bench_commits,
                    "post_share": client.post_seconds / busy,
                    "commit_share": consumer.bench_commit_seconds / busy,
                    "cpu_share": cpu_runs[-1] / elapsed,
                }
            )
            say(
                f"  run {index}: sender {sender_runs[-1]:,.0f} rows/s, httpx {httpx_runs[-1]:,.0f} rows/s "
                f"({requests} requests by {len(client.workers)} delivery tasks, {consumer.bench_commits} commits)"
            )
    finally:
        sender.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(running, timeout=30)
        await consumer.stop()
        await producer.stop()
        await http.aclose()
        await endpoint.stop()
    row = Row(
        "B4",
        "sender: events -> endpoint, commit after ack",
        "rows/s",
        sender_runs,
        httpx_runs,
        "plain httpx POSTs of the same bodies",
        target=f">= {B4_MIN_RATIO:.0%} of httpx",
    )
    row.passed = (row.worst_ratio or 0) >= B4_MIN_RATIO
    report.rows.append(row)
    bodies = sum(len(value) for _key, value, _headers in row_sets[0])
    if breakdown:
        mid = sorted(breakdown, key=lambda b: b["post_share"])[len(breakdown) // 2]
        report.notes.append(
            f"where the sender's time goes (median run, share of partitions x wall time): POST "
            f"{100 * mid['post_share']:.0f} %, offset commit {100 * mid['commit_share']:.0f} %, the rest waiting "
            f"for fetches and scheduling; {mid['requests']:.0f} requests by {mid['workers']:.0f} delivery tasks, "
            f"{mid['commits']:.0f} commits; sender process CPU {100 * mid['cpu_share']:.0f} % of one core"
        )
        report.series["sender_breakdown"] = breakdown
    report.notes.append(
        f"{len(row_sets[0]):,} rows ({bodies / max(1, len(row_sets[0])):.0f} bytes mean) per run; "
        f"sender defaults: {config.max_batch_rows} rows / {config.max_batch_bytes // 1024} KiB per request, "
        f"{config.max_poll_records} records per poll"
    )
    if not report.profiles.get("B4 sender") and row.passed is False:
        report.notes.append("profile run skipped")
    return report


def _missed(sender_runs: list[float], httpx_runs: list[float]) -> bool:
    if not sender_runs or not httpx_runs:
        return False
    sender_runs = sorted(sender_runs)
    httpx_runs = sorted(httpx_runs)
    return sender_runs[len(sender_runs) // 2] / httpx_runs[len(httpx_runs) // 2] < B4_MIN_RATIO


__all__ = ["rows_of", "run_b4"]
