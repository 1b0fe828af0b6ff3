"""The shared runner (services/cli.py): exit codes, the one JSON error line, --version, build_info, cleanup."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import platform
import socket
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed, TopicAuthorizationFailedError
from prometheus_client import CollectorRegistry, generate_latest

from services.cli import CommandParser, UsageError, command_parser, exit_code, run, start_client, version
from services.config import ProcessorConfig, SenderConfig, load_config
from services.errors import ConfigError
from services.exitcodes import EXIT_AUTH, EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE
from services.metrics import ProcessorMetrics, SenderMetrics


def error_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError("bad"), EXIT_USAGE),
        (UsageError("bad flag"), EXIT_USAGE),
        (KafkaConnectionError("Unable to bootstrap"), EXIT_UNREACHABLE),
        (ConnectionRefusedError(111, "refused"), EXIT_UNREACHABLE),
        (TimeoutError(), EXIT_UNREACHABLE),
        (SaslAuthenticationFailed(), EXIT_AUTH),
        (TopicAuthorizationFailedError(), EXIT_AUTH),
        (RuntimeError("a bug"), EXIT_FAILED),
    ],
)
def test_each_failure_maps_to_its_exit_code(error: BaseException, code: int) -> None:
    assert exit_code(error) == code


def test_a_cause_decides_the_code_when_the_error_wraps_it() -> None:
    try:
        try:
            raise SaslAuthenticationFailed()
        except SaslAuthenticationFailed as inner:
            raise RuntimeError("start failed") from inner
    except RuntimeError as outer:
        assert exit_code(outer) == EXIT_AUTH


def test_a_failure_is_one_json_error_line_with_its_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    def body() -> int:
        raise ConfigError("invalid KAFKA_X: nope")

    assert run("tool", body) == EXIT_USAGE
    captured = capsys.readouterr()
    [line] = error_lines(captured.err)
    assert line["level"] == "error" and line["service"] == "tool" and line["event"] == "command_failed"
    assert line["error"] == "invalid KAFKA_X: nope" and line["exit_code"] == EXIT_USAGE
    assert "Traceback" not in captured.err and captured.out == ""


def test_an_unexpected_error_exits_1_with_its_traceback_inside_the_json_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def body() -> int:
        raise RuntimeError("a bug")

    assert run("tool", body) == EXIT_FAILED
    [line] = error_lines(capsys.readouterr().err)
    assert line["error_type"] == "RuntimeError" and "Traceback" in line["exception"]


def test_services_log_their_error_line_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    def body() -> int:
        raise ConfigError("bad")

    assert run("processor", body, log_to="stdout") == EXIT_USAGE
    [line] = error_lines(capsys.readouterr().out)
    assert line["service"] == "processor"


def test_bad_usage_is_a_json_line_and_exit_2_not_an_argparse_exit(capsys: pytest.CaptureFixture[str]) -> None:
    parser = command_parser("tool", description="d")
    parser.add_argument("--count", type=int)
    assert run("tool", lambda: parser.parse_args(["--count", "abc"]) and 0) == EXIT_USAGE
    [line] = error_lines(capsys.readouterr().err)
    assert (
        "invalid int value: 'abc'" in line["error"]
        and "(usage: tool [-h] [--version] [--count COUNT])" in line["error"]
    )


def test_version_prints_the_package_version_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    parser = command_parser("tool", description="d")
    assert run("tool", lambda: parser.parse_args(["--version"]) and 0) == EXIT_OK
    assert capsys.readouterr().out.strip() == f"tool {version()} (review-analytics)"
    assert version()[0].isdigit()


def test_help_ends_with_the_exit_code_table(capsys: pytest.CaptureFixture[str]) -> None:
    parser = command_parser("tool", description="d")
    assert isinstance(parser, CommandParser)
    assert run("tool", lambda: parser.parse_args(["--help"]) and 0) == EXIT_OK
    assert "4  authentication or TLS failed" in capsys.readouterr().out


@pytest.mark.parametrize("metrics", [ProcessorMetrics, SenderMetrics])
def test_each_service_exports_build_info_with_the_version_and_python_version(metrics: Any) -> None:
    registry = CollectorRegistry()
    metrics(registry)
    text = generate_latest(registry).decode()
    labels = f'python_version="{platform.python_version()}",version="{version()}"'
    assert f"review_analytics_build_info{{{labels}}} 1.0" in text


@pytest.mark.parametrize(
    ("config_type", "env", "listed"),
    [
        (ProcessorConfig, {"PROCESSOR_LOG_LEVEL": "info"}, "valid values: DEBUG, ERROR, INFO, WARNING"),
        (SenderConfig, {"SENDER_VERIFY_TLS": "yes"}, "valid values: true, false, 1, 0"),
        (SenderConfig, {"KAFKA_SECURITY_PROTOCOL": "TLS"}, "valid values: PLAINTEXT, SASL_PLAINTEXT, SASL_SSL, SSL"),
    ],
)
def test_a_refused_setting_lists_its_valid_values(config_type: Any, env: dict[str, str], listed: str) -> None:
    with pytest.raises(ConfigError, match=listed):
        load_config(config_type, env=env)


@pytest.mark.filterwarnings("ignore::ResourceWarning")  # let aiokafka's __del__ reach its "Unclosed" log line
def test_a_client_whose_start_failed_is_stopped_so_no_unclosed_warning(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def body() -> int:
        async with contextlib.AsyncExitStack() as stack:
            await start_client(stack, AIOKafkaConsumer(bootstrap_servers=f"127.0.0.1:{port}"))
        return 0

    assert run("tool", body) == EXIT_UNREACHABLE
    gc.collect()
    captured = capsys.readouterr()
    assert "Unclosed" not in captured.err + captured.out
    assert [line["exit_code"] for line in error_lines(captured.err) if line["event"] == "command_failed"] == [3]


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_the_naive_start_does_warn_unclosed(caplog: pytest.LogCaptureFixture) -> None:
    """The control of the test above: without start_client the failed consumer is reported unclosed."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def naive() -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=f"127.0.0.1:{port}")
        with contextlib.suppress(KafkaConnectionError):
            await consumer.start()
        del consumer
        gc.collect()

    with caplog.at_level("ERROR", logger="asyncio"):
        asyncio.run(naive())
    assert "Unclosed AIOKafkaConsumer" in caplog.text


def test_lag_with_a_malformed_bootstrap_address_exits_2_naming_the_variable(capsys: pytest.CaptureFixture[str]) -> None:
    from services.lag import main as lag_main

    assert lag_main(["--kafka-bootstrap-servers", "localhost:abc", "--group", "g:t"], env={}) == EXIT_USAGE
    [line] = error_lines(capsys.readouterr().err)
    assert "KAFKA_BOOTSTRAP_SERVERS: 'localhost:abc' is not host:port" in line["error"]


def test_publish_of_a_missing_file_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    from services.publish import main as publish_main

    assert publish_main(["/no/such/facts.jsonl", "--kafka-bootstrap-servers", "127.0.0.1:1"], env={}) == EXIT_USAGE
    [line] = error_lines(capsys.readouterr().err)
    assert line["error"] == "cannot read '/no/such/facts.jsonl': No such file or directory"


def test_publish_to_an_unreachable_broker_exits_3_without_unclosed_clients(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from services.publish import main as publish_main

    facts = tmp_path / "f.jsonl"
    facts.write_text("")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert publish_main([str(facts), "--kafka-bootstrap-servers", f"127.0.0.1:{port}"], env={}) == EXIT_UNREACHABLE
    gc.collect()
    assert "Unclosed" not in capsys.readouterr().err
