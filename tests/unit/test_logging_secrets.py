"""Logs have a stable key set; the endpoint token and the SASL password never leave the process in clear.

``tests/unit/test_config.py`` proves redaction of values handed to a logger. This file captures
*everything* real processes print: the reducer and sender command lines at DEBUG (their own lines,
aiokafka's, httpx's, tracebacks, ``--help``, configuration errors), and a sender that really delivers
rows with the token to an endpoint that checks it, plus its ``/metrics`` page.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import structlog

from schemas.codec import encode_fact
from services.logging import configure_logging
from tests.support.builders import (
    reviewed_family,
    sample_initialize,
)
from tests.support.kafka import free_ports, read_topic, wait_until
from tests.support.pipeline import make_topics, publish, running_processor
from tools.demo.endpoint import RecordingEndpoint

TOKEN = "tok-9f8e7d6c5b4a-never-print-me"
PASSWORD = "sasl-pw-1a2b3c4d-never-print-me"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def json_logs() -> Iterator[io.BytesIO]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.BytesIO()
    configure_logging("processor", "INFO", stream=stream, cache=False)
    try:
        yield stream
    finally:
        structlog.contextvars.clear_contextvars()
        structlog.reset_defaults()
        root.handlers[:] = handlers
        root.setLevel(level)


def lines(stream: io.BytesIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().decode().splitlines()]


def test_every_line_starts_with_the_stable_keys_and_carries_the_bound_context(json_logs: io.BytesIO) -> None:
    log = structlog.get_logger("processor")
    structlog.contextvars.bind_contextvars(group="g", topic="facts", partition=3, offset=41, thread_id="thread-1")
    log.info("transaction_committed", facts=2)
    log.debug("below_the_level")
    structlog.contextvars.clear_contextvars()
    logging.getLogger("aiokafka").warning("a library line")

    first, library = lines(json_logs)
    assert list(first)[:4] == ["timestamp", "level", "service", "event"]
    assert first == {
        "timestamp": first["timestamp"],
        "level": "info",
        "service": "processor",
        "event": "transaction_committed",
        "group": "g",
        "topic": "facts",
        "partition": 3,
        "offset": 41,
        "thread_id": "thread-1",
        "facts": 2,
    }
    assert str(first["timestamp"]).endswith("Z")  # UTC, ISO 8601
    assert list(library)[:4] == ["timestamp", "level", "service", "event"]
    assert (library["level"], library["service"], library["logger"]) == ("warning", "processor", "aiokafka")


# --------------------------------------------------------------------------------------------------------
# Whole processes
# --------------------------------------------------------------------------------------------------------


def run_module(module: str, *args: str, env: dict[str, str], timeout: float = 60) -> str:
    """Run ``python -m module args`` with exactly ``env`` (plus PATH); return stdout and stderr together."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        env={"PATH": os.environ.get("PATH", ""), **env},
        cwd=ROOT,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    return done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")


def secret_env(bootstrap: str) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAFKA_ALLOW_SASL_PLAINTEXT": "true",
        "KAFKA_SASL_USERNAME": "svc",
        "KAFKA_SASL_PASSWORD": PASSWORD,
        "SENDER_AUTH_TOKEN": TOKEN,
        "SENDER_ALLOW_TOKEN_OVER_HTTP": "true",
        "SENDER_LOG_LEVEL": "DEBUG",
        "SENDER_METRICS_PORT": "0",
        "PROCESSOR_LOG_LEVEL": "DEBUG",
        "PROCESSOR_METRICS_PORT": "0",
    }


def assert_clean(output: str) -> None:
    assert TOKEN not in output
    assert PASSWORD not in output
    # Not even a recognisable fragment (e.g. a truncated repr).
    assert "never-print-me" not in output


@pytest.mark.parametrize("module", ["services.sender", "services.processor"])
def test_a_service_that_fails_to_reach_kafka_prints_neither_secret(module: str) -> None:
    (closed_port,) = free_ports(1)
    output = run_module(module, env=secret_env(f"127.0.0.1:{closed_port}"), timeout=120)
    assert '"service"' in output  # it did log, at DEBUG, including the failure
    assert_clean(output)


@pytest.mark.parametrize("module", ["services.sender", "services.processor", "services.lag", "services.dlq_replay"])
def test_help_and_configuration_errors_print_neither_secret(module: str) -> None:
    env = secret_env("127.0.0.1:1")
    assert_clean(run_module(module, "--help", env=env))
    broken = {**env, "SENDER_MAX_BATCH_ROWS": "0", "PROCESSOR_SESSION_TIMEOUT_MS": "1"}
    output = run_module(module, env=broken)
    assert "error" in output.lower()
    assert_clean(output)
    # A secret passed as a flag is not echoed back when another setting is wrong either.
    flag = "--kafka-sasl-password"
    assert_clean(run_module(module, flag, PASSWORD, "--kafka-security-protocol", "SSL-NOT", env={}))


@contextlib.asynccontextmanager
async def sender_process(env: dict[str, str]) -> AsyncIterator[list[str]]:
    """``python -m services.sender`` with ``env`` for the block, then SIGTERM; its whole output (stdout and
    stderr, drained while it runs) is appended to the yielded list on the way out."""
    sender = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.sender",
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert sender.stdout is not None
    captured = asyncio.get_running_loop().create_task(sender.stdout.read())  # drained while it runs
    output: list[str] = []
    try:
        yield output
    finally:
        sender.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(sender.wait(), timeout=30)
        except TimeoutError:
            sender.kill()
            await sender.wait()
        output.append((await captured).decode(errors="replace"))


@pytest.mark.kafka
async def test_a_delivering_sender_sends_the_token_but_never_logs_or_exports_it(kafka_bootstrap: str) -> None:
    topics = await make_topics(kafka_bootstrap, "secrets", partitions=2)
    facts = [(None, encode_fact(sample_initialize()))]
    for index in range(4):
        facts.extend(reviewed_family(f"thread-s{index}", 900 + index))
    await publish(kafka_bootstrap, topics.facts, facts)
    async with running_processor(topics.processor_config(kafka_bootstrap)):

        async def rows_committed() -> bool:
            return len(await read_topic(kafka_bootstrap, topics.events)) >= 4

        await wait_until(rows_committed, timeout=60, message="rows on events")
    total = len(await read_topic(kafka_bootstrap, topics.events))

    (metrics_port,) = free_ports(1)
    with RecordingEndpoint(expected_token=TOKEN, log_requests=True) as endpoint:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "SENDER_EVENTS_TOPIC": topics.events,
            "SENDER_DLQ_TOPIC": f"{topics.events}.dlq",
            "SENDER_GROUP_ID": f"{topics.group}-sender",
            "SENDER_ENDPOINT_URL": endpoint.url,
            "SENDER_AUTH_TOKEN": TOKEN,
            "SENDER_ALLOW_TOKEN_OVER_HTTP": "true",
            "SENDER_LOG_LEVEL": "DEBUG",
            "SENDER_METRICS_PORT": str(metrics_port),
        }
        async with sender_process(env) as captured:
            await wait_until(
                lambda: len(endpoint.accepted_events()) >= total, timeout=60, message=f"{total} rows accepted"
            )
            async with httpx.AsyncClient() as client:
                metrics = (await client.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
        output = captured[0]
        statuses = {request.status for request in endpoint.requests}

    assert statuses == {200}  # the endpoint checked the token: it was sent on every request
    assert "review_analytics_sender_rows_delivered_total" in metrics
    assert '"event":"sender_started"' in output and '"logger":"aiokafka' in output  # it logged, libraries too
    assert_clean(output)
    assert_clean(metrics)


URL_PASSWORD = "urlpw-0f0e-never-print-me"


@pytest.mark.kafka
async def test_a_password_inside_the_endpoint_url_is_masked_in_logs_errors_help_and_metrics(
    kafka_bootstrap: str,
) -> None:
    """A sender whose ``SENDER_ENDPOINT_URL`` carries ``user:password`` and whose endpoint cannot be reached:
    its config line, its retry errors (which name the URL), aiokafka's and httpx's lines, ``--help``, a
    configuration error and ``/metrics`` show ``svc:***@`` and never the password."""
    from aiokafka import AIOKafkaProducer

    from services.sender.loop import EVENT_TYPE_HEADER, ROW_ID_HEADER
    from tests.support.kafka import create_topics, random_topic_name

    events = random_topic_name("url-secret-events")
    await create_topics(kafka_bootstrap, [events, f"{events}.dlq"], 1)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        headers = [(ROW_ID_HEADER, b"row-1"), (EVENT_TYPE_HEADER, b"codex_review")]
        await producer.send_and_wait(events, b'{"event_type":"codex_review"}', key=b"k", headers=headers)
    finally:
        await producer.stop()

    closed_port, metrics_port = free_ports(2)
    url = f"https://svc:{URL_PASSWORD}@127.0.0.1:{closed_port}"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "SENDER_EVENTS_TOPIC": events,
        "SENDER_DLQ_TOPIC": f"{events}.dlq",
        "SENDER_GROUP_ID": random_topic_name("url-secret-group"),
        "SENDER_ENDPOINT_URL": url,
        "SENDER_LOG_LEVEL": "DEBUG",
        "SENDER_METRICS_PORT": str(metrics_port),
        "SENDER_BACKOFF_CAP_S": "0.5",
    }
    help_and_error = run_module("services.sender", "--help", env=env) + run_module(
        "services.sender", env={**env, "SENDER_MAX_BATCH_ROWS": "0", "SENDER_ENDPOINT_URL": url.replace("https", "ftp")}
    )
    metrics = ""

    async def retried_twice() -> bool:
        nonlocal metrics
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
        found = re.search(r'review_analytics_sender_retries_total\{reason="connection_error"\} (\S+)', metrics)
        return found is not None and float(found.group(1)) >= 2

    captured: list[str] = []
    try:
        async with sender_process(env) as captured:
            await wait_until(retried_twice, timeout=120, interval=0.3, message="two connection errors")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- sender output ---\n{''.join(captured)[-4000:]}") from None
    output = captured[0]

    for text in (help_and_error, output, metrics):
        assert URL_PASSWORD not in text
        assert "never-print-me" not in text
    assert "https://svc:***@127.0.0.1" in output  # the config line and the retry errors, masked
    assert '"outcome":"retrying"' in output and "could not talk to https://svc:***@" in output
    assert "invalid SENDER_" in help_and_error


def test_a_credential_url_is_masked_in_every_log_line(json_logs: io.BytesIO) -> None:
    credential_url = f"https://svc:{URL_PASSWORD}@analytics.example.com"
    log = structlog.get_logger()
    log.info("posting", url=credential_url, nested={"urls": [credential_url]})
    log.info(f"free text mentioning {credential_url}")
    try:
        raise RuntimeError(f"could not talk to {credential_url}")
    except RuntimeError:
        log.exception("with_traceback")
    logging.getLogger("httpx").warning("library line %s", credential_url)

    output = json_logs.getvalue().decode()
    assert len(lines(json_logs)) == 4
    assert URL_PASSWORD not in output
    assert output.count("https://svc:***@analytics.example.com") >= 5
