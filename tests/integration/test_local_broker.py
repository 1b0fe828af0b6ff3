"""The local Kafka broker does what the pipeline relies on, proven against the real broker with aiokafka.

Each test owns its topics (random names), so they share the session broker without interfering. The
kill/restart and CLI tests run private, short-lived brokers, because they take the broker down.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import ProducerFenced

from tests.support.kafka import (
    admin_client,
    create_topics,
    free_ports,
    random_topic_name,
    read_topic,
    start_broker_on_free_ports,
    wait_until,
)
from tools.localkafka import REPO_ROOT, BrokerHandle

pytestmark = pytest.mark.kafka


def values(records: list[object]) -> list[bytes]:
    return [record.value for record in records]  # type: ignore[attr-defined]


async def started_producer(bootstrap: str, **options: object) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **options)
    await producer.start()
    return producer


async def committed_offset(bootstrap: str, group_id: str, partition: TopicPartition) -> int | None:
    """The group's committed offset for ``partition`` as the group coordinator reports it (None if none)."""
    async with admin_client(bootstrap) as admin:
        offsets = await admin.list_consumer_group_offsets(group_id, partitions=[partition])
    committed = offsets.get(partition)
    return None if committed is None or committed.offset < 0 else int(committed.offset)


@pytest.fixture
async def private_broker(tmp_path: Path) -> AsyncIterator[BrokerHandle]:
    """A broker of the test's own, for tests that crash or restart it."""
    broker = await asyncio.to_thread(start_broker_on_free_ports, tmp_path / "kafka")
    try:
        yield broker
    finally:
        await asyncio.to_thread(broker.stop)


async def test_produced_records_are_consumed_with_their_keys_values_and_headers_in_order(
    kafka_bootstrap: str,
) -> None:
    topic = random_topic_name("round-trip")
    await create_topics(kafka_bootstrap, [topic], partitions=1)
    sent = [(f"key-{n}".encode(), f"value-{n}".encode(), [("n", str(n).encode())]) for n in range(20)]

    producer = await started_producer(kafka_bootstrap, acks="all", enable_idempotence=True)
    try:
        for key, value, headers in sent:
            await producer.send(topic, value, key=key, headers=headers)
        await producer.flush()
    finally:
        await producer.stop()

    records = await read_topic(kafka_bootstrap, topic)
    assert [(r.key, r.value, list(r.headers)) for r in records] == sent
    assert [r.offset for r in records] == list(range(20))


async def test_read_committed_consumer_sees_committed_transactions_and_never_aborted_ones(
    kafka_bootstrap: str,
) -> None:
    topic = random_topic_name("read-committed")
    await create_topics(kafka_bootstrap, [topic], partitions=1)
    producer = await started_producer(kafka_bootstrap, transactional_id=f"txn-{uuid.uuid4().hex}")
    try:
        async with producer.transaction():
            await producer.send_and_wait(topic, b"committed-1")
            await producer.send_and_wait(topic, b"committed-2")
        await producer.begin_transaction()
        await producer.send_and_wait(topic, b"aborted-1")
        await producer.send_and_wait(topic, b"aborted-2")
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send_and_wait(topic, b"committed-3")
    finally:
        await producer.stop()

    # Commit markers are written after commit_transaction() returns; the last committed record becoming
    # visible proves every earlier transaction in the partition has been decided.
    async def last_commit_visible() -> bool:
        return b"committed-3" in values(await read_topic(kafka_bootstrap, topic))

    await wait_until(last_commit_visible, timeout=10, message="the last committed transaction to become visible")

    assert values(await read_topic(kafka_bootstrap, topic, "read_committed")) == [
        b"committed-1",
        b"committed-2",
        b"committed-3",
    ]
    # The aborted records were really written; only the isolation level hides them.
    assert values(await read_topic(kafka_bootstrap, topic, "read_uncommitted")) == [
        b"committed-1",
        b"committed-2",
        b"aborted-1",
        b"aborted-2",
        b"committed-3",
    ]


async def test_send_offsets_to_transaction_commits_group_offsets_only_when_the_transaction_commits(
    kafka_bootstrap: str,
) -> None:
    source, sink = random_topic_name("eos-source"), random_topic_name("eos-sink")
    await create_topics(kafka_bootstrap, [source, sink], partitions=1)
    group_id = f"group-{uuid.uuid4().hex}"
    partition = TopicPartition(source, 0)

    plain = await started_producer(kafka_bootstrap, acks="all")
    try:
        for n in range(8):
            await plain.send(source, f"in-{n}".encode())
        await plain.flush()
    finally:
        await plain.stop()

    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=kafka_bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    transactional = await started_producer(kafka_bootstrap, transactional_id=f"eos-{uuid.uuid4().hex}")
    await consumer.start()
    try:
        consumed: list[object] = []

        async def all_inputs_consumed() -> bool:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                consumed.extend(batch)
            return len(consumed) >= 8

        await wait_until(all_inputs_consumed, timeout=20, message="the consumer to read all 8 inputs")

        # Committed transaction: outputs for inputs 0-4 and "next offset to read" = 5.
        async with transactional.transaction():
            for record in consumed[:5]:
                await transactional.send(sink, b"out-" + record.value)  # type: ignore[attr-defined]
            await transactional.send_offsets_to_transaction({partition: 5}, group_id)

        async def offset_committed() -> bool:
            return await committed_offset(kafka_bootstrap, group_id, partition) == 5

        await wait_until(offset_committed, timeout=10, message="group offset 5 after the commit")

        # Aborted transaction: its offset (8) must not replace the committed one.
        await transactional.begin_transaction()
        for record in consumed[5:]:
            await transactional.send(sink, b"out-" + record.value)  # type: ignore[attr-defined]
        await transactional.send_offsets_to_transaction({partition: 8}, group_id)
        await transactional.abort_transaction()
    finally:
        await transactional.stop()
        await consumer.stop()

    # After the abort the coordinator still reports 5 (never 8), and the sink holds only the committed outputs.
    await asyncio.sleep(0.5)  # give a wrongly applied commit time to show up
    assert await committed_offset(kafka_bootstrap, group_id, partition) == 5
    assert values(await read_topic(kafka_bootstrap, sink)) == [f"out-in-{n}".encode() for n in range(5)]

    # A new member of the group resumes at the committed offset: inputs 5-7 are processed again.
    successor = AIOKafkaConsumer(
        source,
        bootstrap_servers=kafka_bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await successor.start()
    try:
        resumed = await successor.getone()
        assert (resumed.offset, resumed.value) == (5, b"in-5")
    finally:
        await successor.stop()


async def test_second_producer_with_the_same_transactional_id_fences_the_first(kafka_bootstrap: str) -> None:
    topic = random_topic_name("fencing")
    await create_topics(kafka_bootstrap, [topic], partitions=1)
    transactional_id = f"fenced-{uuid.uuid4().hex}"

    zombie = await started_producer(kafka_bootstrap, transactional_id=transactional_id)
    successor: AIOKafkaProducer | None = None
    try:
        await zombie.begin_transaction()
        await zombie.send_and_wait(topic, b"zombie-open")

        # init_transactions() (inside start()) bumps the epoch and aborts the zombie's open transaction.
        successor = await started_producer(kafka_bootstrap, transactional_id=transactional_id)
        with pytest.raises(ProducerFenced):
            await zombie.send_and_wait(topic, b"zombie-after-fence")
        with pytest.raises(ProducerFenced):
            await zombie.commit_transaction()

        async with successor.transaction():
            await successor.send_and_wait(topic, b"successor")
    finally:
        await zombie.stop()
        if successor is not None:
            await successor.stop()

    async def successor_visible() -> bool:
        return values(await read_topic(kafka_bootstrap, topic)) == [b"successor"]

    await wait_until(successor_visible, timeout=10, message="only the successor's record under read_committed")
    assert values(await read_topic(kafka_bootstrap, topic, "read_uncommitted")) == [b"zombie-open", b"successor"]


async def test_broker_keeps_records_and_group_offsets_across_kill_and_restart(
    private_broker: BrokerHandle,
) -> None:
    bootstrap = private_broker.bootstrap
    topic = random_topic_name("crash")
    await create_topics(bootstrap, [topic], partitions=2)
    group_id = f"crash-group-{uuid.uuid4().hex}"
    before = [(n % 2, f"before-{n}".encode()) for n in range(50)]

    producer = await started_producer(bootstrap, acks="all", enable_idempotence=True)
    try:
        for partition, value in before:
            await producer.send(topic, value, partition=partition)
        await producer.flush()
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
        await consumer.commit({TopicPartition(topic, 0): 10, TopicPartition(topic, 1): 20})
    finally:
        await consumer.stop()
    old_pid = private_broker.pid

    private_broker.kill()
    assert not private_broker.is_running()
    await asyncio.to_thread(private_broker.restart)

    assert private_broker.is_running()
    assert private_broker.pid != old_pid
    assert private_broker.bootstrap == bootstrap
    records = await read_topic(bootstrap, topic)
    assert sorted((r.partition, r.value) for r in records) == sorted(before)
    assert await committed_offset(bootstrap, group_id, TopicPartition(topic, 0)) == 10
    assert await committed_offset(bootstrap, group_id, TopicPartition(topic, 1)) == 20
    # The restarted broker takes writes again, after the old data.
    producer = await started_producer(bootstrap, acks="all")
    try:
        metadata = await producer.send_and_wait(topic, b"after-restart", partition=0)
    finally:
        await producer.stop()
    assert metadata.offset == 25


async def test_cli_starts_reports_and_stops_a_broker_through_its_pid_file(tmp_path: Path) -> None:
    port, controller_port = free_ports(2)
    data_dir = tmp_path / "cli-kafka"
    ports = ["--port", str(port), "--controller-port", str(controller_port)]

    def kafka_cli(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(REPO_ROOT / "scripts" / "kafka"), *arguments, "--data-dir", str(data_dir)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    started = await asyncio.to_thread(kafka_cli, "start", *ports)
    try:
        assert started.returncode == 0, started.stderr
        assert f"bootstrap 127.0.0.1:{port}" in started.stdout
        assert "ready in" in started.stdout
        pid = int((data_dir / "broker.pid").read_text())

        status = await asyncio.to_thread(kafka_cli, "status")
        assert status.returncode == 0
        assert f"pid {pid}, bootstrap 127.0.0.1:{port}" in status.stdout
    finally:
        stopped = await asyncio.to_thread(kafka_cli, "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert f"stopped broker pid {pid}" in stopped.stdout

    after = await asyncio.to_thread(kafka_cli, "status")
    assert after.returncode == 3
    assert "not running" in after.stdout
    assert not (data_dir / "broker.pid").exists()
