"""Creating and checking the pipeline's topics on the broker (their names and specs: :mod:`schemas.topics`)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Final

from aiokafka import errors as kafka_errors
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from schemas.topics import TopicSpec
from services.errors import ConfigError

_REFUSED_AS_CONFIG: Final = (
    kafka_errors.InvalidReplicationFactorError,
    kafka_errors.InvalidPartitionsError,
    kafka_errors.InvalidReplicationAssignmentError,
    kafka_errors.InvalidConfigurationError,
    kafka_errors.InvalidRequestError,
    kafka_errors.PolicyViolationError,
    kafka_errors.InvalidTopicError,
)
"""Broker refusals of a CreateTopics request that mean our settings are wrong (exit 2, not a retry)."""


def transactional_id(prefix: str, input_topic: str, partition: int) -> str:
    """The transactional id of the producer that owns input ``partition``: the same on every instance and
    across restarts, so the next owner (or ``reset``) fences the previous one."""
    return f"{prefix}-{input_topic}-{partition}"


async def ensure_topics(
    admin: AIOKafkaAdminClient,
    specs: list[TopicSpec],
    *,
    metadata_timeout_s: float = 30.0,
) -> dict[str, str]:
    """Create missing topics (with each spec's replication factor); leave existing ones, whatever their
    replication. Returns ``{name: "created" | "exists"}``.

    Raises :class:`ConfigError` when an existing topic has a different partition count than asked,
    because the routing contract (state of partition P lives in changelog partition P) depends on it, and
    when the broker refuses a creation because of its settings (replication factor above the number of
    brokers, an invalid partition count or topic config): the message is the broker's own. Other refusals
    (authorization, ...) are raised as the broker's ``KafkaError``.
    """
    existing = set(await admin.list_topics())
    missing = [spec for spec in specs if spec.name not in existing]
    outcome = {spec.name: "exists" for spec in specs if spec.name in existing}
    if missing:
        with contextlib.suppress(TopicAlreadyExistsError):  # created concurrently by another run; checked below
            response = await admin.create_topics(
                [
                    NewTopic(
                        name=spec.name,
                        num_partitions=spec.partitions,
                        replication_factor=spec.replication_factor,
                        topic_configs=spec.configs,
                    )
                    for spec in missing
                ]
            )
            _raise_refusals(response)
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


def _raise_refusals(response: Any) -> None:
    """Raise the first per-topic error of a CreateTopics response (``TOPIC_ALREADY_EXISTS`` is not one)."""
    for topic, code, *message in response.topic_errors:
        if code == 0 or code == TopicAlreadyExistsError.errno:
            continue
        error_type = kafka_errors.for_code(code)
        broker_says = (message[0] if message else None) or error_type.description
        text = f"the broker refused to create topic {topic!r}: {error_type.__name__}: {broker_says}"
        if issubclass(error_type, _REFUSED_AS_CONFIG):
            raise ConfigError(text)
        raise error_type(text)


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
