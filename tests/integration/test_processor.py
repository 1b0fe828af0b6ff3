"""The reducer service against the real broker: rows, state and offsets, exactly once."""

from __future__ import annotations

import pytest

from schemas.codec import encode_fact
from tests.support.builders import (
    completed_command_item,
    sample_command_approval_request,
    sample_initialize,
    sample_server_response,
    sample_thread_response,
)
from tests.support.kafka import read_topic, wait_until
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
