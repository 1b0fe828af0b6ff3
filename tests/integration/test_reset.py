"""``reset`` against the real broker: offsets and changelog state move together, refused while members run."""

from __future__ import annotations

import asyncio
import io

import pytest

from reducer.boundary import PartitionReducer
from reducer.snapshot import snapshot
from schemas.codec import encode_fact
from schemas.topics import changelog_topic
from services.config import KafkaSettings
from services.exitcodes import EXIT_FAILED, EXIT_OK
from services.lag import LagReader
from services.processor.partition import restore_consumer, restore_states
from services.reset import main
from tests.support.builders import (
    reviewed_family,
    sample_initialize,
)
from tests.support.kafka import read_topic, wait_until
from tests.support.pipeline import Topics, make_topics, publish, running_processor

pytestmark = pytest.mark.kafka


async def reset_cli(bootstrap: str, topics: Topics, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    flags = ["--kafka-bootstrap-servers", bootstrap, "--facts-topic", topics.facts, "--events-topic", topics.events]
    flags += ["--group-id", topics.group, "--transactional-id-prefix", topics.group]
    code = await asyncio.to_thread(main, [*argv, *flags], env={}, out=out)
    return code, out.getvalue()


async def committed(bootstrap: str, topics: Topics) -> int | None:
    async with LagReader(KafkaSettings(bootstrap_servers=bootstrap)) as reader:
        [group] = await reader.read({topics.group: [topics.facts]})
    [partition] = group.partitions
    return partition.committed


async def changelog_state(bootstrap: str, topics: Topics) -> tuple[dict[str, bytes], int | None]:
    consumer = restore_consumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        restored = await restore_states(consumer, changelog_topic(topics.group, topics.facts), [0], idle_ttl_ms=10**12)
    finally:
        await consumer.stop()
    reducer, offset = restored[0]
    return snapshot(reducer.state), offset


async def caught_up(bootstrap: str, topics: Topics, end: int) -> None:
    async def done() -> bool:
        return await committed(bootstrap, topics) == end

    await wait_until(done, timeout=60, interval=0.3, message=f"reducer committed {end}")


async def test_reset_moves_offsets_and_changelog_state_together(kafka_bootstrap: str) -> None:
    topics = await make_topics(kafka_bootstrap, "reset", partitions=1)
    # One family whose review spans the reset point: the request before it, its answer after it.
    # Offsets 0-2 (initialize, thread started, approval requested) are before the point; the answer is after it.
    facts = [(None, encode_fact(sample_initialize())), *reviewed_family("thread-r", 7)]
    point = 3
    await publish(kafka_bootstrap, topics.facts, facts)
    config = topics.processor_config(kafka_bootstrap)
    async with running_processor(config):
        await caught_up(kafka_bootstrap, topics, len(facts))
        code, text = await reset_cli(kafka_bootstrap, topics, "--to-earliest")
        assert code == EXIT_FAILED and "stop every processor first" in text  # refused while members are active
    first_rows = await read_topic(kafka_bootstrap, topics.events)
    assert first_rows  # the review was settled after the point: its rows need the request from before it

    code, text = await reset_cli(kafka_bootstrap, topics, "--to-offset", str(point), "--dry-run")
    assert code == EXIT_OK and "dry run: nothing written" in text
    assert text.splitlines()[2].split() == [
        "0",
        "0",
        str(len(facts)),
        str(len(facts)),
        str(point),
        "rebuild",
        "state",
        "from",
        "3",
        "facts",
    ]
    assert await committed(kafka_bootstrap, topics) == len(facts)

    code, text = await reset_cli(kafka_bootstrap, topics, "--to-offset", str(point))
    assert code == EXIT_OK, text
    assert await committed(kafka_bootstrap, topics) == point
    expected = PartitionReducer(idle_ttl_ms=config.idle_ttl_ms)
    expected.run([value for _key, value in facts[:point]])
    state, stored_offset = await changelog_state(kafka_bootstrap, topics)
    assert (state, stored_offset) == (snapshot(expected.state), point)

    # The reducer resumes at the point with the state as of the point: the rows after it come out again, equal.
    async with running_processor(config):
        await caught_up(kafka_bootstrap, topics, len(facts))
    again = (await read_topic(kafka_bootstrap, topics.events))[len(first_rows) :]
    assert again  # the review row of the answer after the point, which needs the request before it
    assert [(r.key, r.value, r.headers) for r in again] == [
        (r.key, r.value, r.headers) for r in first_rows if int(dict(r.headers)["row-id"].split(b"-")[-2]) >= point
    ]

    code, _ = await reset_cli(kafka_bootstrap, topics, "--to-earliest")
    assert code == EXIT_OK
    assert await committed(kafka_bootstrap, topics) == 0
    state, stored_offset = await changelog_state(kafka_bootstrap, topics)
    assert (state, stored_offset) == (snapshot(PartitionReducer(idle_ttl_ms=1).state), 0)  # the empty state
