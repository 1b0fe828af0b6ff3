"""Lag in seconds, DLQ depths and the stand-alone exporter (``lag --serve``) against the real broker.

Records are produced with chosen timestamps (minutes in the past) and the group's offsets are committed
by hand, so the expected ages are known: the age of a partition is that of the first record at or after
the group's committed offset, 0 when nothing is left.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from services.config import KafkaSettings
from services.lag import LagReader
from tests.integration.test_lag import lag_cli
from tests.support.kafka import create_topics, free_ports, random_topic_name, wait_until

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[2]
AGES_S = {0: (900, 600, 60), 1: (300,)}
"""Per partition, the ages (seconds before the test) of the records produced; partition 2 stays empty."""
COMMITTED = {0: 1, 1: 1}
"""What the group has finished: partition 0 up to offset 1 (its oldest unfinished record is 600 s old),
partition 1 everything."""
DLQ_RECORDS = 4
TOLERANCE_S = 30.0


@dataclass(frozen=True)
class Setup:
    bootstrap: str
    topic: str
    dlq: str
    group: str
    fresh_group: str
    started: float


async def make_setup(bootstrap: str) -> Setup:
    topic, dlq = random_topic_name("freshness"), random_topic_name("freshness-dlq")
    await create_topics(bootstrap, [topic], 3)
    await create_topics(bootstrap, [dlq], 1)
    started = time.time()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for partition, ages in AGES_S.items():
            for age in ages:
                stamp = int((started - age) * 1000)
                await producer.send_and_wait(topic, b"x", partition=partition, timestamp_ms=stamp)
        for _ in range(DLQ_RECORDS):
            await producer.send_and_wait(dlq, b"letter", partition=0)
    finally:
        await producer.stop()
    group = random_topic_name("freshness-group")
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(3)])
        await consumer.commit({TopicPartition(topic, p): offset for p, offset in COMMITTED.items()})
    finally:
        await consumer.stop()
    return Setup(bootstrap, topic, dlq, group, random_topic_name("freshness-never"), started)


async def test_lag_seconds_is_the_age_of_the_first_record_the_group_has_not_finished(kafka_bootstrap: str) -> None:
    setup = await make_setup(kafka_bootstrap)
    async with LagReader(KafkaSettings(bootstrap_servers=kafka_bootstrap)) as reader:
        finished, never = await reader.read({setup.group: [setup.topic], setup.fresh_group: [setup.topic]})
        depths = await reader.dlq_depths([setup.dlq, "no-such-topic-at-all"])
    ages = {p.partition: p.age_s for p in finished.partitions}
    assert [p.lag for p in finished.partitions] == [2, 0, 0]
    assert ages[0] is not None and 600 <= ages[0] <= 600 + TOLERANCE_S
    assert ages[1] == 0.0 and ages[2] == 0.0  # caught up; empty
    # A group that never committed has not finished anything: its oldest record is the partition's first.
    never_ages = {p.partition: p.age_s for p in never.partitions}
    assert never_ages[0] is not None and 900 <= never_ages[0] <= 900 + TOLERANCE_S
    assert never_ages[1] is not None and 300 <= never_ages[1] <= 300 + TOLERANCE_S
    assert never_ages[2] == 0.0
    assert depths == {setup.dlq: DLQ_RECORDS}

    code, table = await lag_cli("--group", f"{setup.group}:{setup.topic}", "--kafka-bootstrap-servers", kafka_bootstrap)
    assert code == 0
    header, *rows = [line.split() for line in table.splitlines()[1:4]]
    assert header[header.index("LAG") + 1] == "LAG-SECONDS"
    column = header.index("LAG-SECONDS")
    assert 600 <= float(rows[0][column]) <= 600 + TOLERANCE_S
    assert rows[1][column] == "0.0"


async def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def readyz(port: int) -> int:
    try:
        async with httpx.AsyncClient() as client:
            return (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code
    except httpx.TransportError:
        return 0


async def test_lag_serve_exports_lag_and_dlq_depth_of_a_group_with_no_live_member(kafka_bootstrap: str) -> None:
    setup = await make_setup(kafka_bootstrap)
    (port,) = free_ports(1)
    argv = [sys.executable, "-m", "services.lag", "--serve", str(port), "--watch", "0.5"]
    argv += ["--group", f"{setup.group}:{setup.topic}", "--dlq-topic", setup.dlq]
    argv += ["--kafka-bootstrap-servers", kafka_bootstrap]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "PROCESSOR_", "SENDER_"))}
    process = await asyncio.create_subprocess_exec(
        *argv, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:

        async def ready() -> bool:
            assert process.returncode is None, "lag --serve exited early"
            return await readyz(port) == 200

        await wait_until(ready, timeout=30, interval=0.2, message="lag --serve ready")
        samples = await scrape(port)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), timeout=20)
    assert process.returncode == 0, output.decode()

    def value(name: str, partition: int) -> float:
        labels = (("group", setup.group), ("partition", str(partition)), ("topic", setup.topic))
        return samples[(f"review_analytics_{name}", labels)]

    assert [value("consumer_lag_records", p) for p in range(3)] == [2.0, 0.0, 0.0]
    assert 600 <= value("consumer_lag_seconds", 0) <= 600 + TOLERANCE_S
    assert value("consumer_lag_seconds", 1) == 0.0
    assert [value("consumer_committed_offset", p) for p in (0, 1)] == [1.0, 1.0]
    never_committed = (("group", setup.group), ("partition", "2"), ("topic", setup.topic))
    assert ("review_analytics_consumer_committed_offset", never_committed) not in samples
    assert samples[("review_analytics_dlq_depth_records", (("topic", setup.dlq),))] == DLQ_RECORDS
    last = samples[("review_analytics_lag_monitor_last_success_timestamp_seconds", ())]
    assert setup.started <= last <= time.time()
