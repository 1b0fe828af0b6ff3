"""``python -m services.sender`` as a process: configured by env, serves metrics, stops cleanly on SIGTERM.

This exercises the composition root exactly as a deployment runs it, against the real broker and the real
loopback endpoint (which here insists on the bearer token).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from tests.support.kafka import create_topics, free_ports, random_topic_name, wait_until
from tools.demo.endpoint import RecordingEndpoint

pytestmark = pytest.mark.kafka

REPO = Path(__file__).resolve().parents[2]
TOKEN = "tok-process-Pp93"


async def test_sender_process_delivers_serves_metrics_and_exits_0_on_sigterm_without_logging_the_token(
    kafka_bootstrap: str,
) -> None:
    events, dlq = random_topic_name("process-events"), random_topic_name("process-dlq")
    await create_topics(kafka_bootstrap, [events, dlq], 2)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for i in range(12):
            await producer.send_and_wait(
                events,
                value=json.dumps({"event_type": "codex_review_event", "event_params": {"seq": i}}).encode(),
                key=f"thread-{i % 3}".encode(),
                headers=[("row-id", f"facts-0-{i}-0".encode()), ("event-type", b"codex_review_event")],
            )
    finally:
        await producer.stop()

    (metrics_port,) = free_ports(1)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "SENDER_EVENTS_TOPIC": events,
        "SENDER_DLQ_TOPIC": dlq,
        "SENDER_GROUP_ID": random_topic_name("process-group"),
        "SENDER_AUTH_TOKEN": TOKEN,
        "SENDER_ALLOW_TOKEN_OVER_HTTP": "true",
        "SENDER_METRICS_PORT": str(metrics_port),
        "SENDER_LOG_LEVEL": "DEBUG",
    }
    with RecordingEndpoint(expected_token=TOKEN) as endpoint:
        env["SENDER_ENDPOINT_URL"] = endpoint.url
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.sender", cwd=REPO, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        stdout_task = asyncio.ensure_future(process.stdout.read())  # type: ignore[union-attr]
        stderr_task = asyncio.ensure_future(process.stderr.read())  # type: ignore[union-attr]
        try:
            await wait_until(lambda: len(endpoint.accepted_events()) == 12, timeout=60, message="12 rows delivered")
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{metrics_port}") as client:
                assert (await client.get("/readyz")).status_code == 200
                assert (await client.get("/healthz")).status_code == 200

                async def delivered_counted() -> bool:
                    # The counter moves once the sender has read the answer, a moment after the endpoint
                    # recorded the rows.
                    text = (await client.get("/metrics")).text
                    return "review_analytics_sender_rows_delivered_total 12.0" in text

                await wait_until(delivered_counted, timeout=10, message="rows_delivered_total == 12")
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
            returncode = await asyncio.wait_for(process.wait(), timeout=30)
        stdout, stderr = (await stdout_task).decode(), (await stderr_task).decode()

    assert returncode == 0, stderr
    lines = [json.loads(line) for line in stdout.splitlines()]  # every line is one JSON object
    names = [line["event"] for line in lines]
    assert {"sender_configured", "sender_started", "batch_sent", "sender_stopping", "sender_stopped"} <= set(names)
    assert all(line["service"] == "sender" for line in lines)
    assert all(r.status == 200 for r in endpoint.requests)  # the token was sent (the endpoint checks it) ...
    assert TOKEN not in stdout and TOKEN not in stderr  # ... and never logged
