"""The whole pipeline against the real broker and a real loopback endpoint.

What the endpoint receives must equal the offline replay of the same facts: the same multiset of rows,
and for every thread the same rows in the same order.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import pytest

from tests.support.kafka import wait_until
from tests.support.pipeline import (
    expected_rows_by_family,
    make_topics,
    publish,
    rows_by_family,
    running_processor,
    running_sender,
)
from tools.demo.endpoint import RecordingEndpoint
from tools.demo.generator import Workload

pytestmark = pytest.mark.kafka


def workload_facts(seed: int, threads: int) -> list[tuple[str | None, bytes]]:
    return [(fact.key, fact.value) for fact in Workload(seed=seed, threads=threads).facts()]


def per_thread(rows: Iterable[dict[str, Any]]) -> dict[str, list[str]]:
    """Rows by the thread they describe (``event_params.thread_id``), in order.

    Rows of no thread (plugin state changes) have no order to keep across app-servers: they are
    compared as a multiset only.
    """
    grouped: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        thread = row.get("event_params", {}).get("thread_id")
        if thread is not None:
            grouped[str(thread)].append(json.dumps(row, sort_keys=True))
    return dict(grouped)


async def test_endpoint_receives_exactly_the_offline_replays_rows_in_order_per_thread(
    kafka_bootstrap: str, recording_endpoint: RecordingEndpoint
) -> None:
    topics = await make_topics(kafka_bootstrap, "pipeline-e2e")
    facts = workload_facts(seed=11, threads=60)
    expected = [json.loads(row) for rows in expected_rows_by_family(facts).values() for row in rows]
    await publish(kafka_bootstrap, topics.facts, facts)
    sender_config = topics.sender_config(kafka_bootstrap, recording_endpoint.url)
    async with running_processor(topics.processor_config(kafka_bootstrap)), running_sender(sender_config):
        await wait_until(
            lambda: len(recording_endpoint.unique_accepted_events()) >= len(expected),
            timeout=90,
            message=f"{len(expected)} rows at the endpoint",
        )
    received = recording_endpoint.unique_accepted_events()
    assert len(received) == len(expected)
    assert sorted(json.dumps(r, sort_keys=True) for r in received) == sorted(
        json.dumps(r, sort_keys=True) for r in expected
    )
    assert per_thread(received) == per_thread(expected)


async def test_two_reducers_in_one_group_split_the_partitions_and_produce_the_same_rows(kafka_bootstrap: str) -> None:
    topics = await make_topics(kafka_bootstrap, "pipeline-two", partitions=4)
    facts = workload_facts(seed=12, threads=60)
    expected = expected_rows_by_family(facts)
    total = sum(len(rows) for rows in expected.values())
    config = topics.processor_config(kafka_bootstrap)
    async with running_processor(config) as first, running_processor(config) as second:
        await wait_until(
            lambda: first.assigned and second.assigned and first.ready() and second.ready(),
            timeout=60,
            message="both reducers own partitions",
        )
        owned = ({tp.partition for tp in first.assigned}, {tp.partition for tp in second.assigned})
        assert owned[0] and owned[1] and not owned[0] & owned[1]
        assert owned[0] | owned[1] == {0, 1, 2, 3}
        await publish(kafka_bootstrap, topics.facts, facts)

        async def all_rows_committed() -> bool:
            return sum(len(rows) for rows in (await rows_by_family(kafka_bootstrap, topics.events)).values()) >= total

        await wait_until(all_rows_committed, timeout=90, message=f"{total} committed rows")
        assert first.commits > 0 and second.commits > 0
    assert await rows_by_family(kafka_bootstrap, topics.events) == expected
