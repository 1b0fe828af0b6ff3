"""Static membership (PROCESSOR_GROUP_INSTANCE_ID): restarting one processor does not rebalance the others.

The control is the same restart with dynamic membership, where the member leaving makes the group rebalance
and the other processor's partitions are revoked and assigned again."""

from __future__ import annotations

import pytest
from aiokafka.structs import TopicPartition

from services.config import ProcessorConfig
from services.processor.service import Processor
from tests.support.kafka import wait_until
from tests.support.pipeline import make_topics, running_processor

pytestmark = pytest.mark.kafka


def revocations(processor: Processor) -> float:
    value: float = processor.metrics.rebalances.labels(kind="revoked")._value.get()
    return value


@pytest.mark.parametrize("static", [True, False], ids=["static", "dynamic-control"])
async def test_restarting_one_static_member_does_not_rebalance_the_other(kafka_bootstrap: str, static: bool) -> None:
    topics = await make_topics(kafka_bootstrap, "static", partitions=2)

    def config(instance: str) -> ProcessorConfig:
        return topics.processor_config(
            kafka_bootstrap,
            group_instance_id=instance if static else None,
            session_timeout_ms=10_000,
            transaction_timeout_ms=5_000,
        )

    async with running_processor(config("a")) as first:
        await wait_until(lambda: len(first.workers) == 2, timeout=60, message="a owns both partitions")
        async with running_processor(config("b")) as second:
            await wait_until(
                lambda: len(first.workers) == 1 and len(second.workers) == 1, timeout=60, message="one partition each"
            )
            kept, before = set(first.assigned), revocations(first)
        async with running_processor(config("b")) as restarted:
            await wait_until(lambda: len(restarted.workers) == 1, timeout=60, message="b is back with one partition")
            if static:
                assert revocations(first) == before  # no rebalance reached a
                assert first.assigned == kept
                assert restarted.assigned == {TopicPartition(topics.facts, p) for p in (0, 1)} - kept
            else:
                assert revocations(first) > before  # the control: b leaving and joining rebalanced a
