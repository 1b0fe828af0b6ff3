"""Read-only views of the broker the verifier needs: whole topics, end offsets, committed offsets, lag.

Every call opens its own short-lived client, so a view taken after a broker restart never reuses a
broken connection, and every call has a deadline.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from tests.support.kafka import partition_ids, read_topic

CALL_TIMEOUT_S = 30.0


async def read_all(
    bootstrap: str, topic: str, isolation_level: str = "read_committed", within_s: float = 90.0
) -> list[Any]:
    """Every record of ``topic`` from the beginning to the end fixed at the start of the read."""
    return await read_topic(bootstrap, topic, isolation_level, timeout=within_s)


async def end_offsets(bootstrap: str, topic: str, isolation_level: str = "read_uncommitted") -> dict[int, int]:
    """High watermark per partition (``read_uncommitted``) or last stable offset (``read_committed``)."""
    partitions = [TopicPartition(topic, p) for p in await partition_ids(bootstrap, topic)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level=isolation_level, enable_auto_commit=False)
    await asyncio.wait_for(consumer.start(), CALL_TIMEOUT_S)
    try:
        ends = await asyncio.wait_for(consumer.end_offsets(partitions), CALL_TIMEOUT_S)
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


async def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int | None]:
    """The group's committed offset per partition of ``topic`` (``None``: nothing committed)."""
    partitions = await partition_ids(bootstrap, topic)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await asyncio.wait_for(admin.start(), CALL_TIMEOUT_S)
    try:
        offsets = await asyncio.wait_for(admin.list_consumer_group_offsets(group), CALL_TIMEOUT_S)
    finally:
        await admin.close()
    found: dict[int, int | None] = dict.fromkeys(partitions)
    for tp, meta in offsets.items():
        if tp.topic == topic and meta is not None and meta.offset >= 0:
            found[tp.partition] = meta.offset
    return found


async def processor_lag(bootstrap: str, group: str, facts_topic: str) -> int:
    """Facts not yet committed by the reducer group: sum over partitions of (end - committed)."""
    ends = await end_offsets(bootstrap, facts_topic)
    committed = await committed_offsets(bootstrap, group, facts_topic)
    return sum(end - (committed.get(p) or 0) for p, end in ends.items())


async def sender_lag(bootstrap: str, group: str, events_topic: str) -> int:
    """Rows not yet committed by the sender group: visible records at or after its committed offsets.

    The events topic is transactional, so its end offset counts commit markers and the sender, which
    commits ``last row + 1``, may stay one below the end for ever. A partition is drained when no
    ``read_committed``-visible record lies at or after the committed offset.
    """
    committed = await committed_offsets(bootstrap, group, events_topic)
    return await visible_after(bootstrap, events_topic, {p: (o or 0) for p, o in committed.items()})


async def visible_after(bootstrap: str, topic: str, offsets: dict[int, int], within_s: float = 60.0) -> int:
    """How many ``read_committed``-visible records of ``topic`` lie at or after ``offsets[partition]``."""
    partitions = [TopicPartition(topic, p) for p in offsets]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False)
    await asyncio.wait_for(consumer.start(), CALL_TIMEOUT_S)
    count = 0
    try:
        consumer.assign(partitions)
        ends = await asyncio.wait_for(consumer.end_offsets(partitions), CALL_TIMEOUT_S)
        for tp in partitions:
            consumer.seek(tp, min(offsets[tp.partition], ends[tp]))
        deadline = asyncio.get_running_loop().time() + within_s
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"reading {topic} up to {ends} took over {within_s} s")
            batch = await consumer.getmany(timeout_ms=200)
            for tp, records in batch.items():
                count += sum(1 for r in records if r.offset < ends[tp])
    finally:
        await consumer.stop()
    return count
