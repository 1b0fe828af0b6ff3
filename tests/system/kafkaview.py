"""Read-only views of the broker the verifier and the faults need: whole topics, end offsets, committed
offsets, lag, partition leaders, and the transactions the broker itself reports open
(:func:`wait_open_transaction`).

Every call opens its own short-lived client, so a view taken after a broker restart never reuses a
broken connection, and every call has a deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError, for_code
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import CompactArray, CompactString, Int16, Int32, Int64, Schema, TaggedFields

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


# --- the broker's own view of open transactions (Admin API ListTransactions / DescribeTransactions) ------
#
# aiokafka has no client for these two requests; the structs below are their v0 schemas (flexible
# versions, KIP-664), sent through the admin client like its own requests. ListTransactions goes to every
# broker (each lists the transactions it coordinates); DescribeTransactions to the id's coordinator.

OPEN_STATE = "Ongoing"
NODE_TIMEOUT_S = 3.0
"""How long one broker may take to answer ListTransactions or DescribeTransactions before it is left out."""
"""The transaction coordinator's state between the first AddPartitionsToTxn and EndTxn."""


class _ListTransactionsResponse(Response):
    API_KEY = 66
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("error_code", Int16),
        ("unknown_state_filters", CompactArray(CompactString("utf-8"))),
        (
            "transaction_states",
            CompactArray(
                ("transactional_id", CompactString("utf-8")),
                ("producer_id", Int64),
                ("transaction_state", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class _ListTransactionsStruct(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = 66
    API_VERSION = 0
    RESPONSE_TYPE = _ListTransactionsResponse
    SCHEMA = Schema(
        ("state_filters", CompactArray(CompactString("utf-8"))),
        ("producer_id_filters", CompactArray(Int64)),
        ("tags", TaggedFields),
    )


class _ListTransactions(Request[_ListTransactionsStruct]):
    API_KEY = 66

    def __init__(self, states: list[str]) -> None:
        self._states = states

    def build(self, request_struct_class: type[_ListTransactionsStruct]) -> _ListTransactionsStruct:
        return request_struct_class(self._states, [], {})


class _DescribeTransactionsResponse(Response):
    API_KEY = 65
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "transaction_states",
            CompactArray(
                ("error_code", Int16),
                ("transactional_id", CompactString("utf-8")),
                ("transaction_state", CompactString("utf-8")),
                ("transaction_timeout_ms", Int32),
                ("transaction_start_time_ms", Int64),
                ("producer_id", Int64),
                ("producer_epoch", Int16),
                (
                    "topics",
                    CompactArray(
                        ("topic", CompactString("utf-8")),
                        ("partitions", CompactArray(Int32)),
                        ("tags", TaggedFields),
                    ),
                ),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class _DescribeTransactionsStruct(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = 65
    API_VERSION = 0
    RESPONSE_TYPE = _DescribeTransactionsResponse
    SCHEMA = Schema(("transactional_ids", CompactArray(CompactString("utf-8"))), ("tags", TaggedFields))


class _DescribeTransactions(Request[_DescribeTransactionsStruct]):
    API_KEY = 65

    def __init__(self, transactional_ids: list[str]) -> None:
        self._ids = transactional_ids

    def build(self, request_struct_class: type[_DescribeTransactionsStruct]) -> _DescribeTransactionsStruct:
        return request_struct_class(self._ids, {})


@dataclass(frozen=True)
class OpenTransaction:
    """One transaction the broker's transaction coordinator reports as open (``Ongoing``)."""

    transactional_id: str
    coordinator: int
    """Node id of the broker coordinating it (the one whose death aborts it at the next epoch bump)."""
    producer_id: int
    producer_epoch: int
    start_ms: int
    """Broker wall-clock time (ms) of the transaction's first partition."""
    timeout_ms: int
    partitions: dict[str, tuple[int, ...]]
    """The partitions it has written to so far, by topic."""

    def as_json(self) -> dict[str, Any]:
        return {
            "txn_id": self.transactional_id,
            "coordinator": self.coordinator,
            "producer": [self.producer_id, self.producer_epoch],
            "start_ms": self.start_ms,
            "partitions": {topic: list(parts) for topic, parts in self.partitions.items()},
        }


async def open_transactions(bootstrap: str, transactional_ids: Collection[str]) -> dict[str, OpenTransaction]:
    """The transactions among ``transactional_ids`` that the broker(s) report ``Ongoing`` right now."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await asyncio.wait_for(admin.start(), CALL_TIMEOUT_S)
    try:
        return await asyncio.wait_for(_open_transactions(admin, set(transactional_ids)), CALL_TIMEOUT_S)
    finally:
        await admin.close()


async def wait_open_transaction(
    bootstrap: str, transactional_ids: Collection[str], *, within_s: float = 60.0, poll_s: float = 0.05
) -> dict[str, OpenTransaction]:
    """Poll until the broker reports at least one of ``transactional_ids`` ``Ongoing``; return those it does.

    Raises ``AssertionError`` after ``within_s`` without one. One admin client serves every poll (a poll
    is one ListTransactions per broker, plus a DescribeTransactions when something is open).
    """
    wanted = set(transactional_ids)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await asyncio.wait_for(admin.start(), CALL_TIMEOUT_S)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    polls = 0
    try:
        while True:
            polls += 1
            found = await asyncio.wait_for(_open_transactions(admin, wanted), CALL_TIMEOUT_S)
            if found:
                return found
            if loop.time() > deadline:
                raise AssertionError(
                    f"the broker reported no open transaction of {sorted(wanted)} in {within_s:.0f} s ({polls} polls)"
                )
            await asyncio.sleep(poll_s)
    finally:
        await admin.close()


async def _open_transactions(admin: AIOKafkaAdminClient, wanted: set[str]) -> dict[str, OpenTransaction]:
    """Ask every broker of the metadata; a broker that does not answer within :data:`NODE_TIMEOUT_S` (killed or
    paused by a fault) is left out: the transactions it coordinates cannot be seen until it is back."""
    metadata = await admin._get_cluster_metadata()
    coordinator_of: dict[str, int] = {}
    for broker in metadata.brokers:
        node = broker[0]
        try:
            listed = await asyncio.wait_for(admin._send_request(_ListTransactions([OPEN_STATE]), node), NODE_TIMEOUT_S)
        except (TimeoutError, KafkaError, OSError):
            continue
        if listed.error_code:
            raise for_code(listed.error_code)(f"ListTransactions on broker {node}")
        for txn_id, _producer, state, _tags in listed.transaction_states:
            if txn_id in wanted and state == OPEN_STATE:
                coordinator_of[txn_id] = node
    found: dict[str, OpenTransaction] = {}
    for node in sorted(set(coordinator_of.values())):
        ids = sorted(t for t, n in coordinator_of.items() if n == node)
        try:
            described = await asyncio.wait_for(admin._send_request(_DescribeTransactions(ids), node), NODE_TIMEOUT_S)
        except (TimeoutError, KafkaError, OSError):
            continue
        for error, txn_id, state, timeout_ms, start_ms, producer_id, epoch, topics, _ in described.transaction_states:
            if error or state != OPEN_STATE:  # ended (or moved) between the two requests
                continue
            partitions = {topic: tuple(sorted(parts)) for topic, parts, _tags in topics}
            found[txn_id] = OpenTransaction(txn_id, node, producer_id, epoch, start_ms, timeout_ms, partitions)
    return found


async def partition_leaders(bootstrap: str, topic: str) -> dict[int, int]:
    """Partition -> leader node id (-1: none) of ``topic``, from the metadata."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await asyncio.wait_for(admin.start(), CALL_TIMEOUT_S)
    try:
        described = await asyncio.wait_for(admin.describe_topics([topic]), CALL_TIMEOUT_S)
    finally:
        await admin.close()
    return {p["partition"]: p["leader"] for t in described for p in t["partitions"]}
