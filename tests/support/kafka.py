"""Real-Kafka test support: the session broker fixture, topic helpers and deadline-bound polling.

Registered as a pytest plugin by ``tests/conftest.py``, so its fixtures are available to every test:

- ``kafka_broker`` (session): one local KRaft broker (``tools.localkafka``) on free ports in a temporary
  directory, started once per pytest session and stopped at the end. If it cannot start, every test that
  uses it *errors* with the reason and the broker log tail; it never skips.
- ``kafka_bootstrap`` (session): ``kafka_broker.bootstrap``, for tests that only need the address.
- ``kafka_cluster`` (session): a 3-node cluster (``tools.kafkacluster``), started on first use only.

Helpers for tests that want their own broker or their own topics:

- ``start_broker_on_free_ports(data_dir)``: a private broker (e.g. for kill/restart tests).
- ``random_topic_name(prefix)``: a unique, legal topic name; isolation between tests is by name.
- ``await create_topics(bootstrap, names, partitions, configs)``: create and wait for partition leaders.
- ``await read_topic(bootstrap, topic, isolation_level)``: every record from the beginning to the current end.
- ``await wait_until(predicate, timeout, interval)``: poll with a deadline, fail with a clear message.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import for_code

from tools.kafkacluster import ClusterHandle, start_cluster_on_free_ports
from tools.localkafka import BrokerHandle, LocalKafkaError, free_ports, start_on_free_ports

__all__ = [
    "admin_client",
    "create_topics",
    "free_ports",
    "kafka_bootstrap",
    "kafka_broker",
    "kafka_cluster",
    "partition_ids",
    "random_topic_name",
    "read_topic",
    "start_broker_on_free_ports",
    "started_or_fail",
    "wait_until",
]

# Generous: an empty jar cache means a Maven download first (about 7 s here), then a JVM start (3-5 s).
BROKER_READY_TIMEOUT_S = 90.0
_TOPIC_NAME_MAX = 249
_ILLEGAL_TOPIC_CHARS = re.compile(r"[^a-zA-Z0-9._-]+")
T = TypeVar("T")


# ---------------------------------------------------------------------------------------------------------
# Brokers
# ---------------------------------------------------------------------------------------------------------


def start_broker_on_free_ports(data_dir: Path, *, attempts: int = 3, **options: Any) -> BrokerHandle:
    """Start a private broker in ``data_dir`` on free ports (``tools.localkafka.start_on_free_ports``),
    with the test suite's ready timeout unless ``options`` say otherwise."""
    options.setdefault("ready_timeout", BROKER_READY_TIMEOUT_S)
    return start_on_free_ports(data_dir, attempts=attempts, **options)


def started_or_fail(what: str, start: Callable[[], T]) -> T:
    """``start()`` a local broker or cluster; if it cannot start, fail the test (an error, never a skip) with
    the launcher's message, which says what to do and ends with the broker log (or mvn output) tail."""
    try:
        return start()
    except LocalKafkaError as exc:
        failure = f"{what} could not start: {type(exc).__name__}: {exc}"
    pytest.fail(failure, pytrace=False)  # outside `except`: no duplicated "during handling" traceback


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerHandle]:
    """The session's real Kafka broker; errors (never skips) with the broker log tail if it cannot start."""
    data_dir = tmp_path_factory.mktemp("kafka-broker")
    broker = started_or_fail("the local Kafka broker", lambda: start_broker_on_free_ports(data_dir))
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterHandle]:
    """A 3-node local cluster (``tools.kafkacluster``) on free ports, started on first use and stopped at the
    end of the session; errors (never skips) like ``kafka_broker``. Tests that kill or stop nodes restore them
    (``ClusterHandle.ensure_all_running``; the system tests' ``cluster`` fixture does it)."""
    data_dir = tmp_path_factory.mktemp("kafka-cluster")
    cluster = started_or_fail(
        "the local Kafka cluster", lambda: start_cluster_on_free_ports(data_dir, ready_timeout=180.0)
    )
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: BrokerHandle) -> str:
    """``127.0.0.1:<port>`` of the session broker."""
    return kafka_broker.bootstrap


# ---------------------------------------------------------------------------------------------------------
# Topics
# ---------------------------------------------------------------------------------------------------------


def random_topic_name(prefix: str = "topic") -> str:
    """``<prefix>-<10 hex chars>``, with characters Kafka rejects replaced; pass the test name as prefix."""
    suffix = uuid.uuid4().hex[:10]
    clean = _ILLEGAL_TOPIC_CHARS.sub("-", prefix).strip("-.") or "topic"
    return f"{clean[: _TOPIC_NAME_MAX - len(suffix) - 1]}-{suffix}"


@asynccontextmanager
async def admin_client(bootstrap: str) -> AsyncIterator[Any]:
    """A started ``AIOKafkaAdminClient``, closed on exit."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def create_topics(
    bootstrap: str,
    names: Sequence[str],
    partitions: int,
    configs: Mapping[str, str] | None = None,
    *,
    timeout: float = 30.0,  # noqa: ASYNC109 - a deadline for the leader wait, reported by wait_until
) -> None:
    """Create ``names`` (replication factor 1) and return once metadata shows a leader for every partition.

    Waiting for leaders avoids the retriable ``NotLeaderForPartitionError`` a producer otherwise gets right
    after creation. Raises the broker's error (e.g. ``TopicAlreadyExistsError``) if a topic is refused.
    """
    if isinstance(names, str):
        raise TypeError("names must be a sequence of topic names, not a single string")
    async with admin_client(bootstrap) as admin:
        response = await admin.create_topics(
            [NewTopic(name, partitions, 1, topic_configs=dict(configs or {})) for name in names],
            timeout_ms=int(timeout * 1000),
        )
        for topic_error in response.topic_errors:
            topic, error_code = topic_error[0], topic_error[1]
            if error_code != 0:
                detail = topic_error[2] if len(topic_error) > 2 else None
                raise for_code(error_code)(f"creating topic {topic!r} failed: {detail or 'no detail'}")

        async def every_partition_has_a_leader() -> bool:
            described = await admin.describe_topics(list(names))
            by_name = {topic["topic"]: topic for topic in described if topic["error_code"] == 0}
            return all(
                name in by_name
                and len(by_name[name]["partitions"]) == partitions
                and all(p["error_code"] == 0 and p["leader"] >= 0 for p in by_name[name]["partitions"])
                for name in names
            )

        await wait_until(
            every_partition_has_a_leader,
            timeout=timeout,
            interval=0.05,
            message=f"partition leaders for {list(names)}",
        )


async def read_topic(
    bootstrap: str,
    topic: str,
    isolation_level: str = "read_committed",
    *,
    timeout: float = 15.0,  # noqa: ASYNC109 - a deadline that fails with the offsets still missing
) -> list[Any]:
    """Every record of ``topic`` (all partitions, partition by partition) from the beginning to the current end.

    The end is fixed when the read starts: the high watermark for ``read_uncommitted``, the last stable offset
    for ``read_committed``. No consumer group is used and nothing is committed. Returns aiokafka
    ``ConsumerRecord``s ordered by (partition, offset).
    """
    partitions = [TopicPartition(topic, partition) for partition in await partition_ids(bootstrap, topic)]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        isolation_level=isolation_level,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end_offsets = await consumer.end_offsets(partitions)
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        while [tp for tp in partitions if await consumer.position(tp) < end_offsets[tp]]:
            if time.monotonic() >= deadline:
                raise AssertionError(f"reading {topic!r} to its end offsets {end_offsets} took over {timeout} s")
            batches = await consumer.getmany(timeout_ms=200)
            for batch in batches.values():
                records.extend(batch)
        return sorted(records, key=lambda record: (record.partition, record.offset))
    finally:
        await consumer.stop()


async def partition_ids(
    bootstrap: str,
    topic: str,
    *,
    timeout: float = 15.0,  # noqa: ASYNC109 - passed to wait_until
) -> list[int]:
    """The partition ids of ``topic``, sorted; waits until the broker knows the topic."""
    found: list[int] = []

    async def topic_is_known() -> bool:
        nonlocal found
        async with admin_client(bootstrap) as admin:
            (described,) = await admin.describe_topics([topic])
        found = sorted(partition["partition"] for partition in described["partitions"])
        return described["error_code"] == 0 and bool(found)

    await wait_until(topic_is_known, timeout=timeout, message=f"metadata for topic {topic!r}")
    return found


# ---------------------------------------------------------------------------------------------------------
# Polling
# ---------------------------------------------------------------------------------------------------------


async def wait_until(
    predicate: Callable[[], bool | Awaitable[bool]],
    # asyncio.timeout() would cancel mid-call and lose the "waiting for what" message this helper exists for.
    timeout: float = 10.0,  # noqa: ASYNC109
    interval: float = 0.1,
    *,
    message: str = "",
) -> None:
    """Call ``predicate`` (sync or async) every ``interval`` s until it returns truthy, for ``timeout`` s.

    Raises:
        AssertionError: on the deadline, naming what was awaited (``message`` or the predicate's name), how
            long, and the last exception the predicate raised, if any. Exceptions while polling count as "not
            yet" so a predicate may, for example, read from a broker that is still starting.
    """
    deadline = time.monotonic() + timeout
    attempts = 0
    last_error: BaseException | None = None
    while True:
        attempts += 1
        try:
            outcome = predicate()
            if inspect.isawaitable(outcome):
                outcome = await outcome
            if outcome:
                return
        except Exception as exc:  # retried until the deadline, then reported
            last_error = exc
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__qualname__", repr(predicate))
            reason = f"; last error: {last_error!r}" if last_error is not None else ""
            raise AssertionError(f"timed out after {timeout:.1f} s ({attempts} attempts) waiting for {what}{reason}")
        await asyncio.sleep(interval)
