"""The ``lag`` command against the real broker: non-zero while the reducer is stopped, zero once it caught up."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest

from schemas.codec import encode_fact
from services.config import KafkaSettings
from services.exitcodes import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE
from services.lag import LagReader, main
from tests.support.builders import (
    reviewed_family,
    sample_initialize,
)
from tests.support.kafka import free_ports, wait_until
from tests.support.pipeline import Topics, make_topics, publish, running_processor

pytestmark = pytest.mark.kafka


async def lag_cli(*argv: str) -> tuple[int, str]:
    """Run ``main(argv)`` (it calls ``asyncio.run``) on a thread; return its exit code and stdout."""
    out = io.StringIO()
    code = await asyncio.to_thread(main, list(argv), env={}, out=out)
    return code, out.getvalue()


async def group_lag_json(bootstrap: str, topics: Topics, *extra: str) -> tuple[int, dict[str, Any]]:
    code, text = await lag_cli(
        "--json", "--group", f"{topics.group}:{topics.facts}", "--kafka-bootstrap-servers", bootstrap, *extra
    )
    (group,) = json.loads(text)["groups"]
    assert isinstance(group, dict)
    return code, group


async def total_lag(bootstrap: str, topics: Topics) -> int:
    async with LagReader(KafkaSettings(bootstrap_servers=bootstrap)) as reader:
        (group,) = await reader.read({topics.group: [topics.facts]})
    return group.total


async def test_lag_is_non_zero_while_the_reducer_is_stopped_and_zero_after_it_caught_up(kafka_bootstrap: str) -> None:
    topics = await make_topics(kafka_bootstrap, "lag-cli", partitions=3)
    config = topics.processor_config(kafka_bootstrap)
    first = [(None, encode_fact(sample_initialize()))] + [
        fact for index in range(4) for fact in reviewed_family(f"thread-a{index}", 300 + index)
    ]
    await publish(kafka_bootstrap, topics.facts, first)

    # The group commits offsets once, then stops: from now on its lag is measurable.
    async with running_processor(config):

        async def first_batch_committed() -> bool:
            return await total_lag(kafka_bootstrap, topics) == 0

        await wait_until(first_batch_committed, timeout=60, message="first batch committed")

    second = [fact for index in range(5) for fact in reviewed_family(f"thread-b{index}", 400 + index)]
    await publish(kafka_bootstrap, topics.facts, second)

    code, stopped = await group_lag_json(kafka_bootstrap, topics)
    assert code == EXIT_OK
    assert stopped["group"] == topics.group
    assert stopped["total"] == len(second)  # facts has no transactions: the lag is exact
    assert [p["partition"] for p in stopped["partitions"]] == [0, 1, 2]
    assert all(p["committed"] is not None for p in stopped["partitions"])
    assert all(p["lag"] == p["end"] - p["committed"] for p in stopped["partitions"])
    assert all(p["consumer_id"] is None and p["client_id"] is None for p in stopped["partitions"])  # nobody consumes
    assert (await group_lag_json(kafka_bootstrap, topics, "--max-lag", "0"))[0] == EXIT_FAILED

    async with running_processor(config):

        async def caught_up() -> bool:
            code, group = await group_lag_json(kafka_bootstrap, topics, "--max-lag", "0")
            return code == EXIT_OK and group["total"] == 0

        await wait_until(caught_up, timeout=60, interval=0.5, message="lag 0 reported by the lag command")
        _, running = await group_lag_json(kafka_bootstrap, topics)
        assert running["state"] == "Stable"
        assert all(p["consumer_id"] for p in running["partitions"])  # the running reducer owns every partition
        assert {p["client_id"] for p in running["partitions"]} == {"review-analytics-reducer"}
        code, table = await lag_cli(
            "--group", f"{topics.group}:{topics.facts}", "--kafka-bootstrap-servers", kafka_bootstrap
        )
        members_code, members = await lag_cli(
            "--members", "--group", f"{topics.group}:{topics.facts}", "--kafka-bootstrap-servers", kafka_bootstrap
        )
        list_code, listed = await lag_cli("--list", "--kafka-bootstrap-servers", kafka_bootstrap)
    assert code == EXIT_OK
    lines = table.splitlines()
    assert lines[0] == f"Consumer group '{topics.group}' (Stable)"
    assert lines[1].split() == [
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "LAG-SECONDS",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
    ]
    rows = [line.split() for line in lines if line.startswith(topics.group)]
    assert len(rows) == 3 and {row[-1] for row in rows} == {"review-analytics-reducer"}
    assert members_code == EXIT_OK
    member_lines = members.splitlines()
    assert member_lines[1].split() == ["GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS"]
    [member] = [line.split() for line in member_lines[2:]]
    assert member[0] == topics.group and member[3:] == ["review-analytics-reducer", "3"]
    assert list_code == EXIT_OK and topics.group in listed.splitlines()
    assert lines[-1] == "TOTAL LAG 0"
    assert all(p["lag"] == 0 and p["committed"] == p["end"] for p in running["partitions"])


async def test_a_group_that_never_committed_lags_by_the_whole_topic(kafka_bootstrap: str) -> None:
    topics = await make_topics(kafka_bootstrap, "lag-new-group", partitions=2)
    facts = [fact for index in range(3) for fact in reviewed_family(f"thread-c{index}", 500 + index)]
    await publish(kafka_bootstrap, topics.facts, facts)
    code, group = await group_lag_json(kafka_bootstrap, topics)
    assert code == EXIT_OK
    assert group["total"] == len(facts)
    assert all(p["committed"] is None for p in group["partitions"])
    _, table = await lag_cli("--group", f"{topics.group}:{topics.facts}", "--kafka-bootstrap-servers", kafka_bootstrap)
    rows = [line.split() for line in table.splitlines() if line.startswith(topics.group)]
    assert [row[3] for row in rows] == ["-", "-"]  # CURRENT-OFFSET of a partition never committed


async def test_default_groups_come_from_the_services_variables(kafka_bootstrap: str) -> None:
    topics = await make_topics(kafka_bootstrap, "lag-defaults", partitions=1)
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "PROCESSOR_GROUP_ID": topics.group,
        "PROCESSOR_FACTS_TOPIC": topics.facts,
        "SENDER_GROUP_ID": f"{topics.group}-sender",
        "SENDER_EVENTS_TOPIC": topics.events,
    }
    out = io.StringIO()
    code = await asyncio.to_thread(main, ["--json"], env=env, out=out)
    assert code == EXIT_OK
    listed = {(g["group"], p["topic"]) for g in json.loads(out.getvalue())["groups"] for p in g["partitions"]}
    assert listed == {(topics.group, topics.facts), (f"{topics.group}-sender", topics.events)}


async def test_an_unreachable_broker_exits_3() -> None:
    (port,) = free_ports(1)
    out = io.StringIO()
    code = await asyncio.to_thread(
        main, ["--group", "g:t", "--kafka-bootstrap-servers", f"127.0.0.1:{port}"], env={}, out=out
    )
    assert code == EXIT_UNREACHABLE
