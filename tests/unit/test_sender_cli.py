"""``python -m services.sender`` on the command line: help text and configuration errors (no broker needed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.sender", *argv],
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
    assert "SENDER_MAX_BATCH_ROWS" in result.stderr
    assert "--max-batch-rows" in result.stderr


def test_an_invalid_token_setting_is_reported_without_echoing_the_token() -> None:
    result = _run("--dlq-topic", "events", env={"SENDER_AUTH_TOKEN": "tok-cli-Yy12"})

    assert result.returncode == 2
    assert "tok-cli-Yy12" not in result.stderr + result.stdout
