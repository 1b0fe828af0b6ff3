"""``python -m services.dlq_replay`` against the real broker: dead letters go back to ``facts``, unchanged."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest

from schemas.codec import encode_fact
from schemas.topics import dead_letter_topic
from services.dlq_replay import main
from services.exitcodes import EXIT_OK, EXIT_USAGE
from tests.support.builders import sample_initialize
from tests.support.kafka import read_topic, wait_until
from tests.support.pipeline import make_topics, publish, running_processor

pytestmark = pytest.mark.kafka


async def replay_cli(*argv: str) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    code = await asyncio.to_thread(main, [*argv, "--json"], env={}, out=out)
    return code, (json.loads(out.getvalue()) if out.getvalue() else {})


async def test_dead_lettered_facts_are_republished_with_their_key_and_bytes_without_dlq_headers(
    kafka_bootstrap: str,
) -> None:
    topics = await make_topics(kafka_bootstrap, "dlq-replay", partitions=2)
    dlq = dead_letter_topic(topics.facts)
    garbage = [(f"thread-{i}", b"\xff not json %d" % i) for i in range(3)]
    future_version = json.loads(encode_fact(sample_initialize()))
    future_version["v"] = 999
    wrong_type = ("thread-w", json.dumps(future_version).encode())
    facts = [(None, encode_fact(sample_initialize())), *garbage, wrong_type]
    await publish(kafka_bootstrap, topics.facts, facts)
    async with running_processor(topics.processor_config(kafka_bootstrap)):

        async def dead_lettered() -> bool:
            return len(await read_topic(kafka_bootstrap, dlq)) == 4

        await wait_until(dead_lettered, timeout=60, message="4 dead letters")
    letters = await read_topic(kafka_bootstrap, dlq)
    reasons = sorted(dict(r.headers)["dlq.reason"].decode() for r in letters)
    assert reasons.count("undecodable") == 3
    before = await read_topic(kafka_bootstrap, topics.facts)
    seen = {(r.partition, r.offset) for r in before}
    common = ["--dlq-topic", dlq, "--to-topic", topics.facts, "--kafka-bootstrap-servers", kafka_bootstrap]

    code, dry = await replay_cli(*common, "--dry-run")
    assert code == EXIT_OK
    assert (dry["dry_run"], dry["scanned"], dry["matched"], dry["replayed"]) == (True, 4, 4, 0)
    assert len(await read_topic(kafka_bootstrap, topics.facts)) == len(before)

    code, done = await replay_cli(*common, "--reason", "undecodable")
    assert code == EXIT_OK
    assert (done["scanned"], done["matched"], done["replayed"]) == (4, 3, 3)
    assert done["by_reason"] == {"undecodable": 3}
    assert done["skipped_by_reason"] == {"unsupported_version": 1}

    after = await read_topic(kafka_bootstrap, topics.facts)
    replayed = [r for r in after if (r.partition, r.offset) not in seen]
    assert sorted((r.key, r.value) for r in replayed) == sorted((k.encode(), v) for k, v in garbage)
    assert all(not any(key.startswith("dlq.") for key, _ in (r.headers or ())) for r in replayed)
    # Each replayed fact lands on the partition its key hashes to: where the publisher first sent it.
    first_partition = {r.value: r.partition for r in before}
    assert all(r.partition == first_partition[r.value] for r in replayed)

    # Starting each partition at the offset the run printed, a second run finds nothing.
    for partition, offset in done["next_offsets"].items():
        code, again = await replay_cli(*common, "--partition", partition, "--from-offset", str(offset))
        assert code == EXIT_OK
        assert (again["scanned"], again["replayed"]) == (0, 0)
        assert again["next_offsets"] == {partition: offset}


async def test_a_missing_dead_letter_topic_is_a_usage_error(kafka_bootstrap: str) -> None:
    code, _ = await replay_cli(
        "--dlq-topic", "no-such-topic-dlq", "--to-topic", "facts", "--kafka-bootstrap-servers", kafka_bootstrap
    )
    assert code == EXIT_USAGE
