"""What the broker accepts: ``max.message.bytes`` of the topics the processor writes, read at start.

The processor writes rows to the events topic, state to the changelog and dead letters to the facts
dead-letter topic, all in one transaction. A record one of them refuses fails the transaction, and the
retry fails the same way: the partition would stall for ever. So at start the processor reads the
effective ``max.message.bytes`` of each of these topics (the topic's override, else the broker's
``message.max.bytes``, which is what Kafka reports for a topic without an override; a topic the broker
does not know yet gets the broker's value, read separately) and every record it produces stays under
the smallest of them less :data:`BATCH_OVERHEAD_BYTES`: that is ``Limits.max_record_bytes``, the bound
the containment boundary checks rows, changelog records and dead letters against (key + value +
headers of one record).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from services.errors import ConfigError

TOPIC_LIMIT: Final = "max.message.bytes"
BROKER_LIMIT: Final = "message.max.bytes"
KAFKA_DEFAULT_MAX_MESSAGE_BYTES: Final = 1_048_588
"""Kafka's default ``message.max.bytes`` (1 MiB + 12): used only if the broker does not say."""
BATCH_OVERHEAD_BYTES: Final = 4096
"""Room left in a record batch besides the record's key, value and headers: the 61-byte batch header,
the record's varint lengths and attributes, and the header names' lengths, with a wide margin (the
limit applies to the whole batch, and a batch may hold one such record)."""
MIN_MAX_MESSAGE_BYTES: Final = 64 * 1024
"""A topic accepting less than this cannot hold a row or a family's state; refused at start."""


@dataclass(frozen=True)
class BrokerLimits:
    """``max.message.bytes`` per topic, and where each value came from (``topic`` / ``broker`` / ``default``)."""

    max_message_bytes: Mapping[str, int]
    source: Mapping[str, str]

    @property
    def smallest(self) -> int:
        return min(self.max_message_bytes.values())

    @property
    def max_record_bytes(self) -> int:
        """The largest key + value + headers of one produced record that every topic accepts."""
        return self.smallest - BATCH_OVERHEAD_BYTES


def topic_limits(responses: Iterable[Any]) -> dict[str, tuple[int, str]]:
    """``{topic: (max.message.bytes, source)}`` from DescribeConfigs responses; topics the broker reported
    an error for (unknown topic) or without the entry are left out."""
    found: dict[str, tuple[int, str]] = {}
    for response in responses:
        for error_code, _message, _type, name, entries, *_ in response.resources:
            if error_code != 0:
                continue
            for entry in entries:
                config_name, value, _read_only, config_source, *_ = entry
                if config_name == TOPIC_LIMIT and value is not None:
                    found[name] = (int(value), "topic" if config_source == 1 else "broker")
    return found


def broker_limit(responses: Iterable[Any]) -> int | None:
    """``message.max.bytes`` from a DescribeConfigs response of a broker resource, if it has one."""
    for response in responses:
        for error_code, _message, _type, _name, entries, *_ in response.resources:
            if error_code != 0:
                continue
            for entry in entries:
                if entry[0] == BROKER_LIMIT and entry[1] is not None:
                    return int(entry[1])
    return None


def combine(topics: Sequence[str], per_topic: Mapping[str, tuple[int, str]], broker_value: int | None) -> BrokerLimits:
    """The limits of ``topics``: their own value where the broker gave one, else the broker's (or Kafka's
    default). Raises :class:`ConfigError` for a topic that accepts less than :data:`MIN_MAX_MESSAGE_BYTES`."""
    sizes: dict[str, int] = {}
    sources: dict[str, str] = {}
    for topic in topics:
        if topic in per_topic:
            sizes[topic], sources[topic] = per_topic[topic]
        elif broker_value is not None:
            sizes[topic], sources[topic] = broker_value, "broker"
        else:
            sizes[topic], sources[topic] = KAFKA_DEFAULT_MAX_MESSAGE_BYTES, "default"
        if sizes[topic] < MIN_MAX_MESSAGE_BYTES:
            raise ConfigError(
                f"topic {topic!r} accepts records of at most {sizes[topic]} bytes ({TOPIC_LIMIT}); the processor "
                f"needs at least {MIN_MAX_MESSAGE_BYTES}. Operator action: raise the topic's {TOPIC_LIMIT}."
            )
    return BrokerLimits(sizes, sources)


async def read_broker_limits(admin: AIOKafkaAdminClient, topics: Sequence[str]) -> BrokerLimits:
    """Ask the broker for the ``max.message.bytes`` of ``topics`` (see the module docstring)."""
    per_topic = topic_limits(
        await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, {TOPIC_LIMIT: None}) for topic in topics]
        )
    )
    broker_value: int | None = None
    if any(topic not in per_topic for topic in topics):
        cluster = await admin.describe_cluster()
        brokers = [broker["node_id"] for broker in cluster.get("brokers", [])]
        if brokers:
            broker_value = broker_limit(
                await admin.describe_configs(
                    [ConfigResource(ConfigResourceType.BROKER, str(min(brokers)), {BROKER_LIMIT: None})]
                )
            )
    return combine(topics, per_topic, broker_value)
