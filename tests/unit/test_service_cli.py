"""The services on the command line: help text, configuration errors, unreachable brokers, a metrics port in
use (no broker needed). Each failure is one JSON line on stdout, with the exit code of services/exitcodes.py."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from services.exitcodes import EXIT_UNREACHABLE, EXIT_USAGE

REPO = Path(__file__).resolve().parents[2]


def _run(
    *argv: str, env: dict[str, str] | None = None, module: str = "services.sender"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *argv],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_help_explains_every_option_with_its_environment_variable_signals_and_exit_codes() -> None:
    result = _run("--help")

    assert result.returncode == 0
    for text in ("SENDER_AUTH_TOKEN", "KAFKA_BOOTSTRAP_SERVERS", "SENDER_MAX_BATCH_ROWS", "exit codes", "SIGTERM"):
        assert text in result.stdout


def test_an_invalid_setting_exits_2_naming_the_variable_and_the_flag() -> None:
    result = _run(env={"SENDER_MAX_BATCH_ROWS": "lots"})

    assert result.returncode == 2
    assert "SENDER_MAX_BATCH_ROWS" in result.stdout
    assert "--max-batch-rows" in result.stdout


def test_an_invalid_token_setting_is_reported_without_echoing_the_token() -> None:
    result = _run("--dlq-topic", "events", env={"SENDER_AUTH_TOKEN": "tok-cli-Yy12"})

    assert result.returncode == 2
    assert "tok-cli-Yy12" not in result.stderr + result.stdout


def _failure(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The one ``command_failed`` line; nothing else is printed that is not JSON (no plain traceback)."""
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.stderr == ""
    [failed] = [line for line in lines if line["event"] == "command_failed"]
    assert isinstance(failed, dict)
    assert "Unclosed" not in result.stdout
    return failed


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize("module", ["services.processor", "services.sender"])
def test_an_unreachable_broker_is_one_json_line_and_exit_3(module: str) -> None:
    result = _run(
        module=module,
        env={
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{_closed_port()}",
            "PROCESSOR_METRICS_PORT": "0",
            "SENDER_METRICS_PORT": "0",
        },
    )
    assert result.returncode == EXIT_UNREACHABLE
    failed = _failure(result)
    assert failed["exit_code"] == EXIT_UNREACHABLE and failed["error"].startswith("Kafka is unreachable")


@pytest.mark.parametrize(
    ("module", "variable"),
    [("services.processor", "PROCESSOR_METRICS_PORT"), ("services.sender", "SENDER_METRICS_PORT")],
)
def test_a_metrics_port_in_use_is_one_json_line_and_exit_2(module: str, variable: str) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _run(
            module=module, env={"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{_closed_port()}", variable: str(port)}
        )
    assert result.returncode == EXIT_USAGE
    assert (
        _failure(result)["error"]
        == f"{variable}={port}: the port is already in use; choose another port, or 0 to disable the server"
    )


@pytest.mark.parametrize("module", ["services.processor", "services.sender"])
def test_version_is_printed(module: str) -> None:
    result = _run("--version", module=module)
    assert result.returncode == 0 and "(review-analytics)" in result.stdout


async def test_the_sender_consumer_joins_with_its_static_instance_id_and_replica_client_id() -> None:
    from services.config import SenderConfig
    from services.sender.loop import create_consumer

    consumer = create_consumer(SenderConfig(group_instance_id="sender-0"), client_id="sender-host-12")
    try:
        assert consumer._group_instance_id == "sender-0"
        assert consumer._client._client_id == "sender-host-12"
    finally:
        await consumer.stop()  # never started; stopped so it is not reported unclosed
