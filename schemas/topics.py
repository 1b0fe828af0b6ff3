"""The pipeline's topics: names, partition counts and configurations, spelled here only.

``facts`` (app-servers -> processor), its dead-letter topic ``facts.dlq``, the processor's changelog,
``events`` (processor -> sender) and its dead-letter topic ``events.dlq``.

Changelog topics are internal: their name is derived from the consumer group and the input topic
(``changelog__<group>--<input>--reducer-state``) so two deployments never share one, and they are
compacted. Their partition count must equal the input's: changelog partition P holds the state of
input partition P (checked at start-up, ``services.processor.topics.check_copartitioned``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

FACTS_TOPIC: Final = "facts"
"""Default name of the topic app-servers publish facts to."""
EVENTS_TOPIC: Final = "events"
"""Default name of the topic the processor writes rows to and the sender reads."""
DEAD_LETTER_SUFFIX: Final = ".dlq"
DEAD_LETTER_TOPIC_MAX_BYTES: Final = 4 * 1024 * 1024
"""``max.message.bytes`` of the facts dead-letter topic as ``setup-topics`` creates it."""
DEAD_LETTER_RETENTION_MS: Final = 30 * 24 * 3600 * 1000
"""Default ``retention.ms`` of both dead-letter topics: 30 days to notice, fix and ``replay-dlq``."""


def changelog_topic(group_id: str, input_topic: str) -> str:
    return f"changelog__{group_id}--{input_topic}--reducer-state"


def dead_letter_topic(topic: str) -> str:
    """The dead-letter topic of ``topic`` (its headers: :mod:`schemas.headers`)."""
    return f"{topic}{DEAD_LETTER_SUFFIX}"


def dead_letter_source(dlq_topic: str) -> str | None:
    """The topic ``dlq_topic`` is the dead-letter topic of, or ``None`` when it is not named like one."""
    if dlq_topic.endswith(DEAD_LETTER_SUFFIX) and len(dlq_topic) > len(DEAD_LETTER_SUFFIX):
        return dlq_topic[: -len(DEAD_LETTER_SUFFIX)]
    return None


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)
    replication_factor: int = 1


def min_insync_replicas(replication_factor: int) -> int:
    """``min.insync.replicas`` for a replication factor: 2 from 3 replicas on (a write is on two brokers before
    it is acknowledged, and one broker may be down), else 1 (with 2 replicas, 2 would stop writes whenever
    either broker is down)."""
    return 2 if replication_factor >= 3 else 1


def pipeline_topics(
    *,
    facts_topic: str,
    events_topic: str,
    group_id: str,
    partitions: int,
    events_partitions: int | None = None,
    replication_factor: int = 1,
    min_insync: int | None = None,
) -> list[TopicSpec]:
    """Every topic the pipeline needs, with its partition count, replication and configuration.

    Every topic gets ``replication_factor`` replicas and, when it is above 1, ``min.insync.replicas`` =
    ``min_insync`` (default :func:`min_insync_replicas`): the processor's transactions and the publisher
    write with ``acks=all``, so a write needs that many in-sync copies. :class:`ValueError` for an
    impossible combination.
    """
    if replication_factor < 1:
        raise ValueError(f"replication factor {replication_factor} is below 1; use 3 on a cluster of 3 brokers")
    isr = min_insync if min_insync is not None else min_insync_replicas(replication_factor)
    if not 1 <= isr <= replication_factor:
        raise ValueError(
            f"min.insync.replicas {isr} must be between 1 and the replication factor ({replication_factor})"
        )
    common = {"min.insync.replicas": str(isr)} if replication_factor > 1 else {}
    retention = {"retention.ms": str(DEAD_LETTER_RETENTION_MS)}
    dead_letters = {"max.message.bytes": str(DEAD_LETTER_TOPIC_MAX_BYTES), **retention}
    specs: list[tuple[str, int, dict[str, str]]] = [
        (facts_topic, partitions, {}),
        (dead_letter_topic(facts_topic), partitions, dead_letters),
        (
            changelog_topic(group_id, facts_topic),
            partitions,
            {"cleanup.policy": "compact", "min.compaction.lag.ms": "0", "segment.ms": "600000"},
        ),
        (events_topic, events_partitions or partitions, {}),
        (dead_letter_topic(events_topic), events_partitions or partitions, retention),
    ]
    return [TopicSpec(name, count, {**common, **configs}, replication_factor) for name, count, configs in specs]
