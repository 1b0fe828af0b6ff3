"""``/metrics`` of a running reducer and sender, scraped over real HTTP after a small run on the real broker.

Both services run in-process, built the way their composition roots build them, but with a registry the
test keeps and the metrics server on port 0. Values are checked exactly against what was published and
what the offline reducer produces for the same facts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from schemas.codec import encode_fact
from schemas.topics import dead_letter_topic
from services.config import SenderConfig
from services.lag_monitor import start_lag_monitor
from services.metrics import MetricsServer, ProcessorMetrics, SenderMetrics, start_metrics_server
from services.processor.service import Processor
from services.sender.client import EndpointClient
from services.sender.loop import Sender, create_consumer, create_producer
from tests.support.builders import (
    reviewed_family,
    sample_initialize,
    sample_server_response,
)
from tests.support.kafka import read_topic, wait_until
from tests.support.pipeline import Topics, expected_rows_by_family, hold_commits, make_topics, offline_run, publish
from tools.demo.endpoint import RecordingEndpoint

pytestmark = pytest.mark.kafka

LAG_INTERVAL_S = 0.2
YEAR_2100_MS = 4_102_444_800_000
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def fact_stream() -> list[tuple[str | None, bytes]]:
    facts: list[tuple[str | None, bytes]] = [(None, encode_fact(sample_initialize()))]
    for index in range(10):
        facts.extend(reviewed_family(f"thread-m{index}", 700 + index))
    facts.append(("thread-poison", b"\x00 not a fact"))
    # An answer to a request nobody asked (the rules drop it: unknown_request_id), from a producer whose clock
    # is in the year 2100 (too far ahead to move the watermark: a hit of max_clock_skew_ms).
    orphan = sample_server_response(99_999, "accept", thread_id="thread-orphan")
    facts.append(("thread-orphan", encode_fact(msgspec.structs.replace(orphan, observed_at_ms=YEAR_2100_MS))))
    return facts


async def scrape(server: MetricsServer) -> Samples:
    """Every sample of ``/metrics``, keyed by (sample name, sorted labels)."""
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{server.port}/metrics")
    assert response.status_code == 200
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    return {dict(labels)[label]: value for (sample, labels), value in samples.items() if sample == name}


async def probe(server: MetricsServer, path: str) -> int:
    return (await answer(server, path)).status_code


async def answer(server: MetricsServer, path: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(f"http://127.0.0.1:{server.port}{path}")


@dataclass
class Running:
    server: MetricsServer
    registry: CollectorRegistry


@contextlib.asynccontextmanager
async def running_processor_with_metrics(topics: Topics, bootstrap: str, **overrides: Any) -> AsyncIterator[Running]:
    """Like ``services.processor.__main__.serve``: processor, lag monitor and metrics server on port 0."""
    config = topics.processor_config(bootstrap, **overrides)
    registry = CollectorRegistry()
    metrics = ProcessorMetrics(registry)
    processor = Processor(config, metrics=metrics, client_id="reducer-metrics-test")
    server = start_metrics_server(0, registry, ready=processor.readiness, host="127.0.0.1")
    monitor = start_lag_monitor(
        config.kafka,
        {config.group_id: [config.facts_topic]},
        metrics.lag,
        LAG_INTERVAL_S,
        dlq_topics=[dead_letter_topic(config.facts_topic)],
    )
    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(processor.run(stop))
    try:
        yield Running(server, registry)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=60)
        monitor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await monitor
        server.close()


@contextlib.asynccontextmanager
async def running_sender_with_metrics(config: SenderConfig) -> AsyncIterator[Running]:
    """Like ``services.sender.__main__.serve``, plus the lag monitor, with the metrics server on port 0."""
    registry = CollectorRegistry()
    metrics = SenderMetrics(registry)
    consumer, producer = create_consumer(config), create_producer(config)
    async with httpx.AsyncClient(timeout=config.request_timeout_s) as http:
        client = EndpointClient.for_config(http, config)
        sender = Sender(consumer=consumer, producer=producer, client=client, config=config, metrics=metrics)
        await producer.start()
        await consumer.start()
        server = start_metrics_server(0, registry, ready=sender.is_ready, host="127.0.0.1")
        monitor = start_lag_monitor(
            config.kafka,
            {config.group_id: [config.events_topic]},
            metrics.lag,
            LAG_INTERVAL_S,
            dlq_topics=[config.dlq_topic],
        )
        task = asyncio.get_running_loop().create_task(sender.run())
        try:
            yield Running(server, registry)
        finally:
            sender.stop()
            await asyncio.wait_for(task, timeout=60)
            monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await monitor
            server.close()
            await consumer.stop()
            await producer.stop()


def expected_event_types(facts: list[tuple[str | None, bytes]]) -> Counter[str]:
    rows = [row for family in expected_rows_by_family(facts).values() for row in family]
    return Counter(json.loads(row)["event_type"] for row in rows)


def expected_drops(facts: list[tuple[str | None, bytes]]) -> dict[str, float]:
    """What the offline reducer's rules drop for the same facts, by reason."""
    drops = offline_run(facts)[0].drops
    assert drops, "the stream must make the rules drop something"
    return {reason: float(count) for reason, count in drops.items()}


async def test_reducer_metrics_count_exactly_what_was_published_and_lag_ends_at_zero(kafka_bootstrap: str) -> None:
    topics = await make_topics(kafka_bootstrap, "metrics-reducer", partitions=2)
    facts = fact_stream()
    await publish(kafka_bootstrap, topics.facts, facts)
    on_topic = len(await read_topic(kafka_bootstrap, topics.facts))  # Initialize went to both partitions
    expected = expected_event_types(facts)
    assert on_topic == len(facts) + 1 and sum(expected.values()) > 0

    async with running_processor_with_metrics(topics, kafka_bootstrap) as running:
        p = "review_analytics_processor"
        lag_name = "review_analytics_consumer_lag_records"

        async def consumed_all_and_lag_zero() -> bool:
            samples = await scrape(running.server)
            lag = by_label(samples, lag_name, "partition")
            return samples.get((f"{p}_facts_consumed_total", ()), 0) >= on_topic and lag == {"0": 0.0, "1": 0.0}

        await wait_until(consumed_all_and_lag_zero, timeout=60, interval=0.2, message="all facts consumed, lag 0")
        await asyncio.sleep(3 * LAG_INTERVAL_S)  # a few more rounds: nothing may change any more
        samples = await scrape(running.server)
        assert await probe(running.server, "/healthz") == 200
        assert await probe(running.server, "/readyz") == 200

    assert samples[(f"{p}_facts_consumed_total", ())] == on_topic
    assert by_label(samples, f"{p}_events_produced_total", "event_type") == dict(expected)
    assert by_label(samples, f"{p}_facts_dead_lettered_total", "reason") == {"undecodable": 1.0}
    assert by_label(samples, f"{p}_facts_dropped_total", "reason") == expected_drops(facts)
    assert by_label(samples, f"{p}_partition_stalled", "partition") == {"0": 0.0, "1": 0.0}
    assert set(by_label(samples, f"{p}_seconds_since_commit", "partition")) == {"0", "1"}
    assert by_label(samples, f"{p}_backlog_bytes", "partition") == {"0": 0.0, "1": 0.0}
    # Freshness: nothing left unfinished, in the process or on the broker; the lag monitor has read it.
    assert by_label(samples, f"{p}_oldest_unfinished_age_seconds", "partition") == {"0": 0.0, "1": 0.0}
    assert by_label(samples, "review_analytics_consumer_lag_seconds", "partition") == {"0": 0.0, "1": 0.0}
    assert samples[("review_analytics_lag_monitor_last_success_timestamp_seconds", ())] > 0
    # The undecodable fact, in a transaction: one record and at least one commit marker on facts.dlq.
    assert by_label(samples, "review_analytics_dlq_depth_records", "topic")[f"{topics.facts}.dlq"] >= 2
    state_bytes = by_label(samples, f"{p}_state_bytes", "partition")
    assert set(state_bytes) == {"0", "1"} and all(size > 0 for size in state_bytes.values())
    assert by_label(samples, f"{p}_limit_hits_total", "limit") == {"max_clock_skew_ms": 1.0}
    transactions = by_label(samples, f"{p}_transactions_total", "outcome")
    assert transactions.get("committed", 0) > 0
    assert transactions.get("aborted", 0) == 0
    assert by_label(samples, f"{p}_rebalances_total", "kind").get("assigned", 0) >= 1
    lag = {
        (dict(labels)["group"], dict(labels)["topic"], dict(labels)["partition"]): value
        for (name, labels), value in samples.items()
        if name == lag_name
    }
    assert lag == {(topics.group, topics.facts, "0"): 0.0, (topics.group, topics.facts, "1"): 0.0}
    families = by_label(
        {key: value for key, value in samples.items() if ("kind", "families") in key[1]},
        f"{p}_state_entries",
        "partition",
    )
    assert set(families) == {"0", "1"}


async def test_sender_metrics_count_the_rows_the_endpoint_accepted(
    kafka_bootstrap: str, recording_endpoint: RecordingEndpoint
) -> None:
    topics = await make_topics(kafka_bootstrap, "metrics-sender", partitions=2)
    facts = fact_stream()
    await publish(kafka_bootstrap, topics.facts, facts)
    expected = expected_event_types(facts)
    total = sum(expected.values())
    async with running_processor_with_metrics(topics, kafka_bootstrap):

        async def all_rows_committed() -> bool:
            return len(await read_topic(kafka_bootstrap, topics.events)) >= total

        await wait_until(all_rows_committed, timeout=60, message=f"{total} committed rows")

    config = topics.sender_config(kafka_bootstrap, recording_endpoint.url)
    async with running_sender_with_metrics(config) as running:
        s = "review_analytics_sender"

        async def delivered_everything() -> bool:
            samples = await scrape(running.server)
            return samples.get((f"{s}_rows_delivered_total", ()), 0) >= total

        await wait_until(delivered_everything, timeout=60, interval=0.2, message=f"{total} rows delivered")
        await asyncio.sleep(3 * LAG_INTERVAL_S)
        samples = await scrape(running.server)
        assert await probe(running.server, "/readyz") == 200

    requests = recording_endpoint.requests
    assert samples[(f"{s}_rows_delivered_total", ())] == total
    assert recording_endpoint.event_type_counts() == dict(expected)
    assert by_label(samples, f"{s}_requests_total", "status_class") == {"2xx": len(requests)}
    assert samples[(f"{s}_batch_rows_count", ())] == len(requests)
    assert samples[(f"{s}_batch_rows_sum", ())] == total
    assert samples[(f"{s}_request_duration_seconds_count", ())] == len(requests)
    assert by_label(samples, f"{s}_rows_dead_lettered_total", "reason") == {}
    # events is written in transactions: a caught-up group is at most one commit marker behind per partition.
    lag = by_label(samples, "review_analytics_consumer_lag_records", "partition")
    assert set(lag) == {"0", "1"}
    assert all(0 <= value <= 1 for value in lag.values())
    # Every row acknowledged: nothing unfinished in the sender, none on the broker (markers are not records).
    oldest = by_label(samples, f"{s}_oldest_unfinished_age_seconds", "partition")
    assert set(oldest) == {"0", "1"} and set(oldest.values()) == {0.0}
    assert by_label(samples, "review_analytics_consumer_lag_seconds", "partition") == {"0": 0.0, "1": 0.0}
    assert by_label(samples, "review_analytics_dlq_depth_records", "topic") == {config.dlq_topic: 0.0}


async def test_a_partition_that_cannot_commit_shows_as_stalled_and_readyz_answers_503_until_it_commits(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Partition 0's transactions hang (as in the test that partitions do not wait for each other): after
    PROCESSOR_STALL_AFTER_S it is stalled (gauge, one log line) and /readyz names it, while partition 1
    commits and is not; once partition 0 commits, it is unstalled and /readyz is 200 again."""
    topics = await make_topics(kafka_bootstrap, "metrics-stall", partitions=2)
    facts = fact_stream()
    await publish(kafka_bootstrap, topics.facts, facts)
    on_topic = len(await read_topic(kafka_bootstrap, topics.facts))
    gate = hold_commits(monkeypatch, partition=0)
    p = "review_analytics_processor"
    with capture_logs() as logs:
        async with running_processor_with_metrics(topics, kafka_bootstrap, stall_after_s=2.0) as running:

            async def partition_0_stalled_alone() -> bool:
                stalled = by_label(await scrape(running.server), f"{p}_partition_stalled", "partition")
                return stalled == {"0": 1.0, "1": 0.0}

            try:
                await wait_until(partition_0_stalled_alone, timeout=60, interval=0.2, message="partition 0 stalled")
                readyz = await answer(running.server, "/readyz")
                stalled_samples = await scrape(running.server)
                since_commit = by_label(stalled_samples, f"{p}_seconds_since_commit", "partition")
                oldest = by_label(stalled_samples, f"{p}_oldest_unfinished_age_seconds", "partition")
            finally:
                gate.set()  # whatever happened: the processor cannot stop while a commit waits
            assert readyz.status_code == 503
            assert readyz.text == "not ready: partitions stalled (lag, no commit for 2 s): 0\n"
            assert since_commit["0"] >= 2.0
            # The facts held by the hanging transaction were published before the processor started.
            assert oldest["0"] >= 2.0

            async def everything_committed_and_ready() -> bool:
                samples = await scrape(running.server)
                stalled = by_label(samples, f"{p}_partition_stalled", "partition")
                consumed = samples.get((f"{p}_facts_consumed_total", ()), 0)
                return consumed >= on_topic and stalled == {"0": 0.0, "1": 0.0}

            await wait_until(everything_committed_and_ready, timeout=60, interval=0.2, message="partition 0 resumed")
            assert await probe(running.server, "/readyz") == 200
            oldest = by_label(await scrape(running.server), f"{p}_oldest_unfinished_age_seconds", "partition")
            assert oldest == {"0": 0.0, "1": 0.0}
    stalls = [(e["event"], e["partition"]) for e in logs if e["event"] in ("partition_stalled", "partition_unstalled")]
    assert stalls.count(("partition_stalled", 0)) == 1
    assert stalls.count(("partition_unstalled", 0)) == 1


async def test_a_partition_that_ends_with_a_transaction_marker_is_not_stalled_once_caught_up(
    kafka_bootstrap: str,
) -> None:
    """Facts written in a transaction leave a commit marker at the end of each partition, which no record
    and no committed offset ever passes: a caught-up partition has read up to its end, and is not lagging."""
    topics = await make_topics(kafka_bootstrap, "metrics-marker", partitions=2)
    facts = fact_stream()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"{topics.facts}-txn")
    await producer.start()
    try:
        await producer.begin_transaction()
        for key, value in facts:
            if key is None:  # Initialize: every partition
                for partition in (0, 1):
                    await producer.send(topics.facts, value, partition=partition)
            else:
                await producer.send(topics.facts, value, key=key.encode())
        await producer.commit_transaction()
    finally:
        await producer.stop()
    on_topic = len(await read_topic(kafka_bootstrap, topics.facts, "read_committed"))
    p = "review_analytics_processor"
    async with running_processor_with_metrics(topics, kafka_bootstrap, stall_after_s=1.0) as running:

        async def consumed_all() -> bool:
            return (await scrape(running.server)).get((f"{p}_facts_consumed_total", ()), 0) >= on_topic

        await wait_until(consumed_all, timeout=60, interval=0.2, message=f"{on_topic} facts consumed")
        await asyncio.sleep(3.0)  # three times the stall bound: the markers must not count as lag
        stalled = by_label(await scrape(running.server), f"{p}_partition_stalled", "partition")
        assert stalled == {"0": 0.0, "1": 0.0}
        assert await probe(running.server, "/readyz") == 200
