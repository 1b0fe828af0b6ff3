"""Topic names and configurations: the only place that spells them.

Changelog topics are internal: their name is derived from the consumer group and the input topic
(``changelog__<group>--<input>--reducer-state``) so two deployments never share one, and they are
compacted. Their partition count must equal the input's: changelog partition P holds the state of
input partition P (checked at start-up, :func:`check_copartitioned`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from services.errors import ConfigError
from services.processor.deadletter import DEAD_LETTER_TOPIC_MAX_BYTES


def changelog_topic(group_id: str, input_topic: str) -> str:
    return f"changelog__{group_id}--{input_topic}--reducer-state"


def dead_letter_topic(topic: str) -> str:
    return f"{topic}.dlq"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)


def pipeline_topics(
    *,
    facts_topic: str,
    events_topic: str,
    group_id: str,
    partitions: int,
    events_partitions: int | None = None,
    replication_factor: int = 1,
) -> list[TopicSpec]:
    """Every topic the pipeline needs, with its partition count and configuration."""
    del replication_factor  # carried by ensure_topics
    return [
        TopicSpec(facts_topic, partitions),
        TopicSpec(dead_letter_topic(facts_topic), partitions, {"max.message.bytes": str(DEAD_LETTER_TOPIC_MAX_BYTES)}),
        TopicSpec(
            changelog_topic(group_id, facts_topic),
            partitions,
            {"cleanup.policy": "compact", "min.compaction.lag.ms": "0", "segment.ms": "600000"},
        ),
        TopicSpec(events_topic, events_partitions or partitions),
        TopicSpec(dead_letter_topic(events_topic), events_partitions or partitions),
    ]


async def ensure_topics(
    admin: AIOKafkaAdminClient,
    specs: list[TopicSpec],
    *,
    replication_factor: int = 1,
    metadata_timeout_s: float = 30.0,
) -> dict[str, str]:
    """Create missing topics; leave existing ones. Returns ``{name: "created" | "exists"}``.

    Raises :class:`ConfigError` when an existing topic has a different partition count than asked,
    because the routing contract (state of partition P lives in changelog partition P) depends on it.
    """
    existing = set(await admin.list_topics())
    missing = [spec for spec in specs if spec.name not in existing]
    outcome = {spec.name: "exists" for spec in specs if spec.name in existing}
    if missing:
        with contextlib.suppress(TopicAlreadyExistsError):  # created concurrently by another run; checked below
            await admin.create_topics(
                [
                    NewTopic(
                        name=spec.name,
                        num_partitions=spec.partitions,
                        replication_factor=replication_factor,
                        topic_configs=spec.configs,
                    )
                    for spec in missing
                ]
            )
        outcome.update({spec.name: "created" for spec in missing})
    names = [spec.name for spec in specs]
    counts = await partition_counts(admin, names)
    deadline = time.monotonic() + metadata_timeout_s
    while len(counts) < len(names) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)  # a topic just created may not be in the metadata yet (finding F7)
        counts = await partition_counts(admin, names)
    for spec in specs:
        if counts.get(spec.name) != spec.partitions:
            raise ConfigError(
                f"topic {spec.name!r} has {counts.get(spec.name)} partitions, expected {spec.partitions}. "
                "Operator action: the state of input partition P lives in changelog partition P, so facts, "
                "its dead-letter topic and the changelog must have the same partition count; recreate the "
                "topic or pass the existing count."
            )
    return outcome


async def partition_counts(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    described = await admin.describe_topics(names)
    return {
        str(topic["topic"]): len(topic["partitions"])
        for topic in described
        if topic.get("error_code", 0) == 0 and topic["partitions"]
    }


def check_copartitioned(facts_partitions: int, changelog_partitions: int, changelog: str) -> None:
    if facts_partitions != changelog_partitions:
        raise ConfigError(
            f"changelog {changelog!r} has {changelog_partitions} partitions but the facts topic has "
            f"{facts_partitions}. Operator action: run `setup-topics` with the facts topic's partition count, "
            "or delete the changelog (state is then rebuilt only from new facts)."
        )
