"""Helpers for tests that run the pipeline against the real broker: topics, publishing, expectations."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import CollectorRegistry

from reducer import family_key, initial_state, reduce
from schemas.codec import decode_fact, encode_row
from schemas.state import PartitionState
from schemas.topics import pipeline_topics
from services.config import KafkaSettings, ProcessorConfig, SenderConfig
from services.metrics import ProcessorMetrics, SenderMetrics
from services.processor.service import Processor
from services.processor.topics import ensure_topics
from services.processor.transaction import Transaction
from services.producer import BROADCAST, FactPublisher
from services.sender.client import EndpointClient
from services.sender.loop import Sender, create_consumer, create_producer
from tests.support.kafka import random_topic_name, read_topic
from tests.support.processor_hooks import CrashPoints


@dataclass(frozen=True)
class Topics:
    facts: str
    events: str
    group: str

    def processor_config(self, bootstrap: str, **overrides: Any) -> ProcessorConfig:
        options: dict[str, Any] = {
            "kafka": KafkaSettings(bootstrap_servers=bootstrap),
            "facts_topic": self.facts,
            "events_topic": self.events,
            "group_id": self.group,
            "transactional_id_prefix": self.group,
            "metrics_port": 0,
            "poll_timeout_ms": 50,
        }
        options.update(overrides)
        return ProcessorConfig(**options)

    def sender_config(self, bootstrap: str, endpoint_url: str) -> SenderConfig:
        """The sender of these topics (its group: the reducer's, suffixed), posting to ``endpoint_url``."""
        return SenderConfig(
            kafka=KafkaSettings(bootstrap_servers=bootstrap),
            events_topic=self.events,
            dlq_topic=f"{self.events}.dlq",
            group_id=f"{self.group}-sender",
            endpoint_url=endpoint_url,
            metrics_port=0,
        )


async def make_topics(bootstrap: str, name: str, partitions: int = 4) -> Topics:
    topics = Topics(
        facts=random_topic_name(f"{name}-facts"),
        events=random_topic_name(f"{name}-events"),
        group=random_topic_name(f"{name}-group"),
    )
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await ensure_topics(
            admin,
            pipeline_topics(
                facts_topic=topics.facts, events_topic=topics.events, group_id=topics.group, partitions=partitions
            ),
        )
    finally:
        await admin.close()
    await asyncio.sleep(0.5)  # let partition leadership settle before the first produce
    return topics


async def publish(bootstrap: str, topic: str, facts: Iterable[tuple[str | None, bytes]]) -> int:
    """Publish encoded facts; a ``None`` key broadcasts to every partition (Initialize)."""
    publisher = FactPublisher(
        kafka=KafkaSettings(bootstrap_servers=bootstrap), topic=topic, producer_id="test", buffer_size=10**7
    )
    await publisher.start()
    count = 0
    for key, value in facts:
        assert publisher.publish_encoded(BROADCAST if key is None else key.encode(), value)
        count += 1
    await publisher.close()
    return count


def expected_rows_by_family(facts: Iterable[tuple[str | None, bytes]]) -> dict[str, list[bytes]]:
    """Rows the offline reducer produces, grouped by family key, in order."""
    return offline_run(facts)[1]


def offline_run(facts: Iterable[tuple[str | None, bytes]]) -> tuple[PartitionState, dict[str, list[bytes]]]:
    """The offline reducer over ``facts`` (undecodable ones skipped): its final state, and its rows grouped by
    family key, in order."""
    state = initial_state()
    rows: dict[str, list[bytes]] = defaultdict(list)
    for _key, value in facts:
        try:
            envelope = decode_fact(value)
        except ValueError:
            continue
        state, out = reduce(state, envelope)
        if out:
            rows[family_key(envelope)].extend(encode_row(row) for row in out)
    return state, dict(rows)


def hold_commits(monkeypatch: pytest.MonkeyPatch, partition: int) -> asyncio.Event:
    """Make every processor commit of input ``partition`` wait until the returned event is set (before its
    transaction begins); other partitions commit as usual."""
    gate = asyncio.Event()
    real_commit = Transaction.commit

    async def commit_holding(self: Transaction, producer: Any, out: Any, *, partition: int, **kwargs: Any) -> None:
        if partition == held:
            await gate.wait()
        await real_commit(self, producer, out, partition=partition, **kwargs)

    held = partition
    monkeypatch.setattr(Transaction, "commit", commit_holding)
    return gate


async def rows_by_family(bootstrap: str, events_topic: str) -> dict[str, list[bytes]]:
    """Committed rows on ``events``, grouped by record key (the family), in offset order."""
    rows: dict[str, list[bytes]] = defaultdict(list)
    for record in await read_topic(bootstrap, events_topic, "read_committed"):
        rows[record.key.decode()].append(record.value)
    return dict(rows)


@contextlib.asynccontextmanager
async def running_processor(config: ProcessorConfig, crash: str | None = None) -> AsyncIterator[Processor]:
    processor = Processor(config, metrics=ProcessorMetrics(CollectorRegistry()), hooks=CrashPoints(crash))
    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(processor.run(stop))
    try:
        yield processor
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=60)


@dataclass
class RunningSender:
    sender: Sender
    metrics: SenderMetrics
    registry: CollectorRegistry
    task: asyncio.Task[None]


@contextlib.asynccontextmanager
async def running_sender(config: SenderConfig) -> AsyncIterator[RunningSender]:
    """A Sender with real clients (built as its composition root builds them), running until the block ends."""
    registry = CollectorRegistry()
    metrics = SenderMetrics(registry)
    consumer, producer = create_consumer(config), create_producer(config)
    async with httpx.AsyncClient(timeout=config.request_timeout_s) as http:
        client = EndpointClient.for_config(http, config)
        await producer.start()
        await consumer.start()
        sender = Sender(consumer=consumer, producer=producer, client=client, config=config, metrics=metrics)
        task = asyncio.create_task(sender.run())
        try:
            yield RunningSender(sender, metrics, registry, task)
        finally:
            sender.stop()
            try:
                await asyncio.wait_for(task, timeout=20)
            finally:
                await consumer.stop()
                await producer.stop()
