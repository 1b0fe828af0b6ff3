"""``publish FILE`` against the real broker: routing, the Initialize broadcast, refused lines, exit codes."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest

from schemas.codec import encode_fact
from services.exitcodes import EXIT_FAILED, EXIT_OK
from services.producer import fallback_key
from services.publish import main
from tests.support.builders import envelope, sample_initialize, sample_thread_response
from tests.support.kafka import create_topics, random_topic_name, read_topic

pytestmark = pytest.mark.kafka


async def test_publish_routes_by_thread_broadcasts_initialize_and_reports_refused_lines(
    kafka_bootstrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    topic = random_topic_name("publish-facts")
    await create_topics(kafka_bootstrap, [topic], partitions=3)
    unrouted = envelope({"kind": "server_request_aborted", "completed_at_ms": 5, "request_id": 9}, thread_id=None)
    lines = [
        encode_fact(sample_initialize()),
        encode_fact(sample_thread_response("thread-a")),
        b"",  # blank lines are skipped
        b'{"v": 1, "producer": "p", "thread_id": "t", "fact": {"kind": "initialize"}}',  # line 4: invalid
        encode_fact(sample_thread_response("thread-b")),
        b"not json",  # line 6: undecodable
        encode_fact(unrouted),
    ]
    facts = tmp_path / "facts.jsonl"
    facts.write_bytes(b"\n".join(lines) + b"\n")
    out = io.StringIO()

    code = await asyncio.to_thread(
        main, [str(facts), "--facts-topic", topic, "--kafka-bootstrap-servers", kafka_bootstrap], env={}, out=out
    )

    assert code == EXIT_FAILED  # two lines were refused; the others are published
    assert out.getvalue().startswith("read 6 lines; published 4 facts (1 Initialize broadcast to every partition)")
    assert "refused 2 (invalid: 1, undecodable: 1); failed 0" in out.getvalue()
    refusals = [json.loads(line) for line in capsys.readouterr().err.splitlines() if '"line_refused"' in line]
    assert [(r["line"], r["reason"]) for r in refusals] == [(4, "invalid"), (6, "undecodable")]

    records = await read_topic(kafka_bootstrap, topic)
    initialize = [r for r in records if r.value == lines[0]]
    assert sorted(r.partition for r in initialize) == [0, 1, 2]  # one copy per partition
    keys = {r.value: r.key for r in records if r.value != lines[0]}
    assert keys == {lines[1]: b"thread-a", lines[4]: b"thread-b", lines[6]: fallback_key(unrouted.producer).encode()}


async def test_a_clean_file_from_stdin_exits_0(kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch) -> None:
    topic = random_topic_name("publish-stdin")
    await create_topics(kafka_bootstrap, [topic], partitions=1)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(encode_fact(sample_thread_response("t-1")) + b"\n")))
    out = io.StringIO()
    code = await asyncio.to_thread(
        main, ["-", "--facts-topic", topic, "--kafka-bootstrap-servers", kafka_bootstrap], env={}, out=out
    )
    assert code == EXIT_OK
    assert "published 1 facts" in out.getvalue()
    [record] = await read_topic(kafka_bootstrap, topic)
    assert record.key == b"t-1"
