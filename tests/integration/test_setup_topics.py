"""setup-topics against the real (single) broker: the broker's own refusal at once, topic configs applied."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from services.exitcodes import EXIT_OK, EXIT_USAGE
from services.setup_topics import main
from tests.support.kafka import admin_client, random_topic_name

pytestmark = pytest.mark.kafka


def names(prefix: str) -> list[str]:
    return ["--facts-topic", random_topic_name(f"{prefix}-facts"), "--events-topic", random_topic_name(f"{prefix}-ev")]


async def test_a_replication_factor_above_the_broker_count_reports_the_brokers_error_at_once(
    kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    code = await asyncio.to_thread(
        main, ["--replication-factor", "3", "--kafka-bootstrap-servers", kafka_bootstrap, *names("rf")], env={}
    )
    elapsed = time.monotonic() - started
    [line] = [json.loads(text) for text in capsys.readouterr().err.splitlines() if '"command_failed"' in text]
    assert code == EXIT_USAGE
    assert "InvalidReplicationFactorError" in line["error"] and "only 1 broker(s) are registered" in line["error"]
    assert "partitions" not in line["error"]
    assert elapsed < 10


async def test_config_flags_are_applied_to_the_topics_created(
    kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = names("cfg")
    facts = flags[1]
    code = await asyncio.to_thread(
        main,
        [
            "--partitions",
            "2",
            "--config",
            f"{facts}.dlq:retention.ms=3600000",
            "--config",
            f"{facts}:max.message.bytes=200000",
            "--kafka-bootstrap-servers",
            kafka_bootstrap,
            *flags,
        ],
        env={},
    )
    assert code == EXIT_OK
    assert f"created  {facts}.dlq" in capsys.readouterr().out
    async with admin_client(kafka_bootstrap) as admin:
        [response] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, f"{facts}.dlq"), ConfigResource(ConfigResourceType.TOPIC, facts)]
        )
    configs = {resource[3]: {entry[0]: entry[1] for entry in resource[4]} for resource in response.resources}
    assert configs[f"{facts}.dlq"]["retention.ms"] == "3600000"
    assert configs[facts]["max.message.bytes"] == "200000"
