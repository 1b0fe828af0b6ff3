"""The reducer service against the real broker: rows, state and offsets, exactly once."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client.metrics import MetricWrapperBase

from schemas.codec import encode_fact
from schemas.topics import DEAD_LETTER_TOPIC_MAX_BYTES, changelog_topic
from services.config import KafkaSettings
from services.lag import LagReader
from services.processor.broker_limits import BATCH_OVERHEAD_BYTES, KAFKA_DEFAULT_MAX_MESSAGE_BYTES, read_broker_limits
from services.processor.partition import restore_consumer, restore_states
from services.processor.transaction import send_batched
from tests.support.builders import (
    reviewed_family,
    sample_initialize,
)
from tests.support.kafka import (
    admin_client,
    create_topics,
    partition_ids,
    random_topic_name,
    read_topic,
    wait_until,
)
from tests.support.pipeline import (
    expected_rows_by_family,
    hold_commits,
    make_topics,
    publish,
    rows_by_family,
    running_processor,
)

pytestmark = pytest.mark.kafka


def sample(metric: MetricWrapperBase, **labels: str) -> float:
    """The current value of one series of ``metric`` (0 if it has none yet)."""
    for family in metric.collect():
        for found in family.samples:
            if found.labels == labels and not found.name.endswith("_created"):
                return float(found.value)
    return 0.0


def small_stream(families: int = 12) -> list[tuple[str | None, bytes]]:
    facts: list[tuple[str | None, bytes]] = [(None, encode_fact(sample_initialize()))]
    for index in range(families):
        facts.extend(reviewed_family(f"thread-{index}", 100 + index))
    return facts


async def test_processor_publishes_the_offline_reducers_rows_per_family(kafka_bootstrap: str) -> None:
    topics = await make_topics(kafka_bootstrap, "processor-rows")
    facts = small_stream()
    await publish(kafka_bootstrap, topics.facts, facts)
    expected = expected_rows_by_family(facts)
    total = sum(len(rows) for rows in expected.values())
    async with running_processor(topics.processor_config(kafka_bootstrap)):

        async def all_rows_committed() -> bool:
            return len(await read_topic(kafka_bootstrap, topics.events)) >= total

        await wait_until(all_rows_committed, timeout=60, message=f"{total} committed rows")
    assert await rows_by_family(kafka_bootstrap, topics.events) == expected
    # Rows are sent in record batches per partition; each lands where producer.send(key=...) would put it.
    partitions = sorted(await partition_ids(kafka_bootstrap, topics.events))
    records = await read_topic(kafka_bootstrap, topics.events)
    assert {r.partition for r in records} == set(partitions)
    assert all(r.partition == DefaultPartitioner()(r.key, partitions, partitions) for r in records)


async def test_a_transaction_larger_than_one_record_batch_commits_every_record_in_order(
    kafka_bootstrap: str,
) -> None:
    topic = random_topic_name("batched")
    await create_topics(kafka_bootstrap, [topic], partitions=1)
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, transactional_id=f"{topic}-txn", max_batch_size=16 * 1024
    )
    await producer.start()
    values = [f"{index:06d}".encode() * 170 for index in range(300)]  # ~1 KiB each: ~19 record batches
    try:
        await producer.begin_transaction()
        futures = await send_batched(producer, topic, 0, [(b"k", value, [("n", b"1")]) for value in values])
        await producer.commit_transaction()
    finally:
        await producer.stop()
    assert len(futures) > 10
    records = await read_topic(kafka_bootstrap, topic)
    assert [r.value for r in records] == values
    assert all(r.key == b"k" and r.headers == (("n", b"1"),) for r in records)


async def test_restarted_processor_restores_state_and_emits_nothing_twice(kafka_bootstrap: str) -> None:
    topics = await make_topics(kafka_bootstrap, "processor-restore")
    init = [(None, encode_fact(sample_initialize()))]
    first = [fact for index in range(6) for fact in reviewed_family(f"thread-{index}", 200 + index)[:2]]
    second = [fact for index in range(6) for fact in reviewed_family(f"thread-{index}", 200 + index)[2:]]
    expected = expected_rows_by_family(init + first + second)
    total = sum(len(rows) for rows in expected.values())
    config = topics.processor_config(kafka_bootstrap)
    await publish(kafka_bootstrap, topics.facts, init + first)
    async with running_processor(config):

        async def thread_rows_committed() -> bool:
            return len(await read_topic(kafka_bootstrap, topics.events)) >= 6

        await wait_until(thread_rows_committed, timeout=60, message="first half committed")
    # The pending reviews of the first half live only in the changelog now.
    await publish(kafka_bootstrap, topics.facts, second)
    async with running_processor(config):

        async def all_rows_committed() -> bool:
            return len(await read_topic(kafka_bootstrap, topics.events)) >= total

        await wait_until(all_rows_committed, timeout=60, message=f"{total} committed rows")
    assert await rows_by_family(kafka_bootstrap, topics.events) == expected


async def test_the_changelog_holds_the_committed_input_offset_of_every_partition(kafka_bootstrap: str) -> None:
    """F6: each transaction writes its input offset to the changelog too, so a partition can resume from
    the changelog's copy when the broker answers an offset fetch with "none"."""
    topics = await make_topics(kafka_bootstrap, "processor-offset-copy", partitions=2)
    facts = small_stream(8)
    expected = expected_rows_by_family(facts)
    total = sum(len(rows) for rows in expected.values())
    config = topics.processor_config(kafka_bootstrap)
    await publish(kafka_bootstrap, topics.facts, facts)
    async with running_processor(config):

        async def all_rows_committed() -> bool:
            return len(await read_topic(kafka_bootstrap, topics.events)) >= total

        await wait_until(all_rows_committed, timeout=60, message=f"{total} committed rows")
    async with LagReader(KafkaSettings(bootstrap_servers=kafka_bootstrap)) as reader:
        (group,) = await reader.read({topics.group: [topics.facts]})
    committed = {p.partition: p.committed for p in group.partitions}
    restorer = restore_consumer(bootstrap_servers=kafka_bootstrap)
    await restorer.start()
    try:
        restored = await restore_states(restorer, changelog_topic(topics.group, topics.facts), [0, 1], idle_ttl_ms=0)
    finally:
        await restorer.stop()
    assert {partition: offset for partition, (_, offset) in restored.items()} == committed


async def test_a_partition_whose_transaction_stalls_does_not_hold_back_the_other_partitions(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each partition has its own commit loop: while partition 0's first transaction hangs, partition 1
    keeps committing (facts published after the hang began included), and partition 0's facts polled
    meanwhile all commit once it resumes."""
    topics = await make_topics(kafka_bootstrap, "processor-independent", partitions=2)
    first = small_stream(16)
    second = [fact for index in range(16, 32) for fact in reviewed_family(f"thread-{index}", 100 + index)]
    expected = expected_rows_by_family(first + second)
    partition_of = {family: DefaultPartitioner()(family.encode(), [0, 1], [0, 1]) for family in expected}
    assert set(partition_of.values()) == {0, 1}

    def rows_on_partition_1(rows: dict[str, list[bytes]]) -> int:
        return sum(len(r) for family, r in rows.items() if partition_of[family] == 1)

    gate = hold_commits(monkeypatch, partition=0)
    async with running_processor(topics.processor_config(kafka_bootstrap)):
        for wave, rows_so_far in ((first, expected_rows_by_family(first)), (second, expected)):
            await publish(kafka_bootstrap, topics.facts, wave)
            wanted = rows_on_partition_1(rows_so_far)

            async def partition_1_rows_committed(wanted: int = wanted) -> bool:
                return len(await read_topic(kafka_bootstrap, topics.events)) >= wanted

            await wait_until(partition_1_rows_committed, timeout=60, message=f"{wanted} rows of partition 1")
            assert len(await read_topic(kafka_bootstrap, topics.events)) == wanted
        gate.set()
        total = sum(len(rows) for rows in expected.values())

        async def all_rows_committed() -> bool:
            return len(await read_topic(kafka_bootstrap, topics.events)) >= total

        await wait_until(all_rows_committed, timeout=60, message=f"{total} committed rows")
    assert await rows_by_family(kafka_bootstrap, topics.events) == expected


async def test_the_record_limit_is_the_smallest_max_message_bytes_of_the_topics_the_processor_writes(
    kafka_bootstrap: str,
) -> None:
    """The events topic gets its own, smaller limit; the changelog has none (the broker's default applies);
    a topic the broker does not know gets the broker's ``message.max.bytes``."""
    topics = await make_topics(kafka_bootstrap, "processor-limits", partitions=1)
    async with admin_client(kafka_bootstrap) as admin:
        await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topics.events, {"max.message.bytes": "300000"})]
        )
        missing = random_topic_name("processor-limits-missing")
        assert (await read_broker_limits(admin, [missing])).source == {missing: "broker"}
    config = topics.processor_config(kafka_bootstrap)
    changelog = changelog_topic(topics.group, topics.facts)
    async with running_processor(config) as processor:
        await wait_until(lambda: bool(processor.workers) and processor.ready(), timeout=60, message="partition taken")
        limits = processor.broker_limits
        assert limits is not None
        assert dict(limits.max_message_bytes) == {
            topics.events: 300_000,
            changelog: KAFKA_DEFAULT_MAX_MESSAGE_BYTES,
            f"{topics.facts}.dlq": DEAD_LETTER_TOPIC_MAX_BYTES,
        }
        assert limits.source[topics.events] == "topic" and limits.source[changelog] == "broker"
        assert processor.limits.max_record_bytes == 300_000 - BATCH_OVERHEAD_BYTES
        assert [worker.reducer.limits for worker in processor.workers.values()] == [processor.limits]


async def test_a_partition_holding_more_than_max_backlog_bytes_stops_fetching_until_it_commits(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Partition 0's first transaction hangs with more than PROCESSOR_MAX_BACKLOG_BYTES of facts in it:
    its fetching pauses (counted), so facts published meanwhile are not fetched into its backlog; once
    the transaction commits, it fetches again and every row is committed once."""
    topics = await make_topics(kafka_bootstrap, "processor-backlog-bytes", partitions=2)
    first = small_stream(16)
    second = [fact for index in range(16, 32) for fact in reviewed_family(f"thread-{index}", 100 + index)]
    expected = expected_rows_by_family(first + second)
    gate = hold_commits(monkeypatch, partition=0)
    await publish(kafka_bootstrap, topics.facts, first)
    config = topics.processor_config(kafka_bootstrap, max_backlog_bytes=1024)
    async with running_processor(config) as processor:
        metrics = processor.metrics
        try:

            def partition_0_paused_for_bytes() -> bool:
                return sample(metrics.fetch_pauses, reason="backlog_bytes") >= 1

            await wait_until(partition_0_paused_for_bytes, timeout=60, message="partition 0 paused for its bytes")
            held = sample(metrics.backlog_bytes, partition="0")
            assert held > 1024
            await publish(kafka_bootstrap, topics.facts, second)
            on_partition_1 = sum(1 for r in await read_topic(kafka_bootstrap, topics.facts) if r.partition == 1)

            def partition_1_consumed_both_waves() -> bool:
                return sample(metrics.facts_consumed) >= on_partition_1

            await wait_until(partition_1_consumed_both_waves, timeout=60, message="partition 1 caught up")
            assert sample(metrics.backlog_bytes, partition="0") == held  # nothing more fetched for partition 0
        finally:
            gate.set()
        total = sum(len(rows) for rows in expected.values())

        async def all_rows_committed() -> bool:
            return len(await read_topic(kafka_bootstrap, topics.events)) >= total

        await wait_until(all_rows_committed, timeout=60, message=f"{total} committed rows")
        assert sample(metrics.backlog_bytes, partition="0") == 0
    assert await rows_by_family(kafka_bootstrap, topics.events) == expected
