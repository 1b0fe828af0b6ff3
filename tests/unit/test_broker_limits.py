"""The record limit derived from the broker's ``max.message.bytes`` (parsing and fallbacks)."""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest

from reducer.limits import DEFAULT_MAX_RECORD_BYTES
from services.errors import ConfigError
from services.processor.broker_limits import (
    BATCH_OVERHEAD_BYTES,
    KAFKA_DEFAULT_MAX_MESSAGE_BYTES,
    broker_limit,
    combine,
    topic_limits,
)

TOPIC_OVERRIDE = 1
DEFAULT_CONFIG = 5


class Response(NamedTuple):
    """The shape of aiokafka's DescribeConfigsResponse (v1+): resources of (error, message, type, name, entries)."""

    resources: list[tuple[Any, ...]]


def entry(name: str, value: str, source: int) -> tuple[Any, ...]:
    return (name, value, False, source, False, [])


def test_each_topics_value_and_whether_it_is_the_topics_own_or_the_brokers() -> None:
    response = Response(
        [
            (0, "", 2, "events", [entry("max.message.bytes", "300000", TOPIC_OVERRIDE)]),
            (0, "", 2, "changelog", [entry("max.message.bytes", "1048588", DEFAULT_CONFIG)]),
            (3, "", 2, "missing", []),
        ]
    )
    assert topic_limits([response]) == {"events": (300_000, "topic"), "changelog": (1_048_588, "broker")}


def test_the_smallest_topic_limit_less_the_overhead_is_the_record_limit() -> None:
    limits = combine(
        ["events", "changelog", "facts.dlq"],
        {"events": (2_000_000, "topic"), "changelog": (1_048_588, "broker"), "facts.dlq": (4_194_304, "topic")},
        None,
    )
    assert limits.smallest == 1_048_588
    assert limits.max_record_bytes == 1_048_588 - BATCH_OVERHEAD_BYTES


def test_a_topic_the_broker_did_not_describe_gets_the_brokers_message_max_bytes() -> None:
    broker = Response([(0, "", 4, "1", [entry("message.max.bytes", "500000", DEFAULT_CONFIG)])])
    limits = combine(["events", "facts.dlq"], {"facts.dlq": (4_194_304, "topic")}, broker_limit([broker]))
    assert limits.max_message_bytes == {"events": 500_000, "facts.dlq": 4_194_304}
    assert limits.source == {"events": "broker", "facts.dlq": "topic"}


def test_without_any_answer_kafkas_default_is_assumed() -> None:
    limits = combine(["events"], {}, None)
    assert limits.max_message_bytes == {"events": KAFKA_DEFAULT_MAX_MESSAGE_BYTES}
    assert limits.source == {"events": "default"}


def test_the_reducers_default_record_limit_is_a_default_brokers_limit_less_the_same_overhead() -> None:
    assert DEFAULT_MAX_RECORD_BYTES == KAFKA_DEFAULT_MAX_MESSAGE_BYTES - BATCH_OVERHEAD_BYTES


def test_a_topic_accepting_too_little_is_a_configuration_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="'events' accepts records of at most 1000 bytes"):
        combine(["events"], {"events": (1000, "topic")}, None)
