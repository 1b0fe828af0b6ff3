"""The reducer service against the real broker: rows, state and offsets, exactly once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from schemas.codec import encode_fact
from services.config import KafkaSettings
from services.lag import LagReader
from services.processor import service
from services.processor.faults import CrashPoints
from services.processor.partition import restore_consumer, restore_states
from services.processor.topics import changelog_topic
from services.processor.transaction import send_batched
from tests.support.builders import (
    completed_command_item,
    sample_command_approval_request,
    sample_initialize,
    sample_server_response,
    sample_thread_response,
)
from tests.support.kafka import create_topics, partition_ids, random_topic_name, read_topic, wait_until
from tests.support.pipeline import (
    expected_rows_by_family,
    make_topics,
    publish,
    rows_by_family,
    running_processor,
)

pytestmark = pytest.mark.kafka


def family_facts(thread: str, request_id: int) -> list[tuple[str | None, bytes]]:
    envelopes = [
        sample_thread_response(thread, request_id=request_id),
        sample_command_approval_request(request_id, thread_id=thread),
        sample_server_response(request_id, "accept", thread_id=thread),
        *completed_command_item(thread),
    ]
    return [(env.thread_id, encode_fact(env)) for env in envelopes]


def small_stream(families: int = 12) -> list[tuple[str | None, bytes]]:
    facts: list[tuple[str | None, bytes]] = [(None, encode_fact(sample_initialize()))]
    for index in range(families):
        facts.extend(family_facts(f"thread-{index}", 100 + index))
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
    first = [fact for index in range(6) for fact in family_facts(f"thread-{index}", 200 + index)[:2]]
    second = [fact for index in range(6) for fact in family_facts(f"thread-{index}", 200 + index)[2:]]
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
        restored = await restore_states(
            restorer, changelog_topic(topics.group, topics.facts), [0, 1], crash=CrashPoints(None), idle_ttl_ms=0
        )
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
    second = [fact for index in range(16, 32) for fact in family_facts(f"thread-{index}", 100 + index)]
    expected = expected_rows_by_family(first + second)
    partition_of = {family: DefaultPartitioner()(family.encode(), [0, 1], [0, 1]) for family in expected}
    assert set(partition_of.values()) == {0, 1}

    def rows_on_partition_1(rows: dict[str, list[bytes]]) -> int:
        return sum(len(r) for family, r in rows.items() if partition_of[family] == 1)

    gate = asyncio.Event()
    real_commit = service.commit

    async def commit_holding_partition_0(producer: Any, out: Any, *, partition: int, **kwargs: Any) -> None:
        if partition == 0:
            await gate.wait()
        await real_commit(producer, out, partition=partition, **kwargs)

    monkeypatch.setattr(service, "commit", commit_holding_partition_0)
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
