"""``services.config``: settings from env then flags, validation messages, Kafka kwargs, and secrets that never show.

The secret tests cover every way a token could leak: ``repr``/``str`` of the secret and of the config, the
startup summary, ``--help``, validation errors, and log lines (both ``capture_logs`` and the real JSON output).
"""

from __future__ import annotations

import argparse
import io
import logging
import pickle
import ssl
from collections.abc import Iterator
from pathlib import Path

import certifi
import pytest
import structlog
from structlog.testing import capture_logs

from reducer.limits import Limits
from services.config import (
    KafkaSettings,
    ProcessorConfig,
    Secret,
    SenderConfig,
    add_config_arguments,
    config_summary,
    describe_settings,
    load_config,
)
from services.errors import ConfigError
from services.logging import configure_logging, redact_secrets
from services.sender.__main__ import build_parser

TOKEN = "tok-Zx81-very-secret"
PASSWORD = "pw-Qq77-very-secret"
HTTPS_URL = "https://analytics.example.com"


def _parse(argv: list[str], env: dict[str, str] | None = None) -> SenderConfig:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, SenderConfig)
    return load_config(SenderConfig, env=env or {}, args=parser.parse_args(argv))


# --------------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------------


def test_defaults_match_the_documented_loopback_setup() -> None:
    config = load_config(SenderConfig, env={})

    assert config == SenderConfig()
    assert config.kafka.bootstrap_servers == "127.0.0.1:19092"
    assert config.kafka.security_protocol == "PLAINTEXT"
    assert (config.events_topic, config.dlq_topic, config.group_id) == (
        "events",
        "events.dlq",
        "review-analytics-sender",
    )
    assert config.endpoint_url == "http://127.0.0.1:18080"
    assert config.auth_token is None and config.account_id is None
    assert (config.request_timeout_s, config.max_batch_rows, config.max_batch_bytes) == (10.0, 500, 1024 * 1024)
    assert config.verify_tls is True


def test_environment_variables_set_fields_including_nested_kafka_settings() -> None:
    config = load_config(
        SenderConfig,
        env={
            "KAFKA_BOOTSTRAP_SERVERS": "kafka-0:9092,kafka-1:9092",
            "SENDER_EVENTS_TOPIC": "rows",
            "SENDER_MAX_BATCH_ROWS": "50",
            "SENDER_REQUEST_TIMEOUT_S": "2.5",
            "SENDER_VERIFY_TLS": "false",
            "SENDER_AUTH_TOKEN": TOKEN,
            "SENDER_ENDPOINT_URL": HTTPS_URL,
            "SENDER_LOG_LEVEL": "DEBUG",
            "UNRELATED": "ignored",
        },
    )

    assert config.kafka.bootstrap_servers == "kafka-0:9092,kafka-1:9092"
    assert config.events_topic == "rows"
    assert config.max_batch_rows == 50
    assert config.request_timeout_s == 2.5
    assert config.verify_tls is False
    assert config.auth_token is not None and config.auth_token.reveal() == TOKEN
    assert config.log_level == "DEBUG"


def test_flags_override_environment_variables() -> None:
    config = _parse(
        ["--max-batch-rows", "7", "--kafka-bootstrap-servers", "flag:1", "--verify-tls"],
        env={"SENDER_MAX_BATCH_ROWS": "50", "KAFKA_BOOTSTRAP_SERVERS": "env:1", "SENDER_VERIFY_TLS": "0"},
    )

    assert config.max_batch_rows == 7
    assert config.kafka.bootstrap_servers == "flag:1"
    assert config.verify_tls is True


def test_a_flag_not_given_leaves_the_environment_value() -> None:
    assert _parse([], env={"SENDER_GROUP_ID": "g2"}).group_id == "g2"
    assert _parse(["--no-verify-tls"]).verify_tls is False


def test_an_empty_environment_variable_counts_as_unset() -> None:
    config = load_config(SenderConfig, env={"SENDER_ACCOUNT_ID": "", "SENDER_AUTH_TOKEN": "", "SENDER_GROUP_ID": ""})

    assert config.account_id is None
    assert config.auth_token is None
    assert config.group_id == "review-analytics-sender"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SENDER_MAX_BATCH_ROWS": "zero"}, r"invalid SENDER_MAX_BATCH_ROWS \(flag --max-batch-rows\) 'zero'"),
        ({"SENDER_MAX_BATCH_ROWS": "0"}, "SENDER_MAX_BATCH_ROWS .* Expected `int` >= 1"),
        ({"SENDER_ENDPOINT_URL": "ftp://x"}, "SENDER_ENDPOINT_URL"),
        ({"SENDER_VERIFY_TLS": "maybe"}, "SENDER_VERIFY_TLS"),
        ({"SENDER_LOG_LEVEL": "LOUD"}, "SENDER_LOG_LEVEL"),
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL"),
        ({"SENDER_BACKOFF_BASE_S": "60"}, "lower the base or raise the cap"),
        ({"SENDER_DLQ_TOPIC": "events"}, "dead-lettered rows would be sent again"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"),
        ({"KAFKA_SSL_CAFILE": "/ca.pem"}, "does not use TLS"),
    ],
)
def test_invalid_settings_raise_config_error_naming_what_to_fix(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(SenderConfig, env=env)


def test_help_lists_every_setting_with_its_environment_variable_and_default() -> None:
    text = build_parser().format_help()

    for env, default in [
        ("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092"),
        ("KAFKA_SASL_PASSWORD", "unset"),
        ("SENDER_EVENTS_TOPIC", "events"),
        ("SENDER_DLQ_TOPIC", "events.dlq"),
        ("SENDER_ENDPOINT_URL", "http://127.0.0.1:18080"),
        ("SENDER_AUTH_TOKEN", "unset"),
        ("SENDER_MAX_BATCH_BYTES", "1048576"),
        ("SENDER_VERIFY_TLS", "true"),
    ]:
        assert env in text
        assert default in text
    assert "--kafka-bootstrap-servers" in text
    assert "--no-verify-tls" in text
    assert "python -m services.sender" in text


# --------------------------------------------------------------------------------------------------------
# Kafka client kwargs
# --------------------------------------------------------------------------------------------------------


def test_plaintext_kwargs_carry_only_the_address_and_protocol() -> None:
    assert KafkaSettings(bootstrap_servers="k:1").client_kwargs(client_id="x") == {
        "bootstrap_servers": "k:1",
        "security_protocol": "PLAINTEXT",
        "client_id": "x",
    }


def test_ssl_kwargs_carry_an_ssl_context_built_from_the_ca_file() -> None:
    kwargs = KafkaSettings(security_protocol="SSL", ssl_cafile=certifi.where()).client_kwargs()

    context = kwargs["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert "sasl_plain_password" not in kwargs


def test_sasl_ssl_kwargs_reveal_the_password_only_to_the_client() -> None:
    settings = KafkaSettings(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="svc",
        sasl_password=Secret(PASSWORD),
    )

    kwargs = settings.client_kwargs()

    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kwargs["sasl_plain_username"] == "svc"
    assert kwargs["sasl_plain_password"] == PASSWORD
    assert isinstance(kwargs["ssl_context"], ssl.SSLContext)
    assert PASSWORD not in repr(settings)


def test_an_unreadable_ca_file_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="KAFKA_SSL_CAFILE"):
        KafkaSettings(security_protocol="SSL", ssl_cafile="/nonexistent/ca.pem").client_kwargs()


# --------------------------------------------------------------------------------------------------------
# Secrets never show
# --------------------------------------------------------------------------------------------------------


def test_secret_repr_and_str_are_masked_and_reveal_gives_the_value() -> None:
    secret = Secret(TOKEN)

    assert repr(secret) == "***"
    assert str(secret) == "***"
    assert f"{secret}" == "***"
    assert secret.reveal() == TOKEN
    assert secret == Secret(TOKEN)
    assert secret != Secret("other")


def test_secret_refuses_to_be_pickled() -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(Secret(TOKEN))


def test_config_repr_and_summary_hide_the_token_and_password() -> None:
    config = load_config(
        SenderConfig,
        env={
            "SENDER_AUTH_TOKEN": TOKEN,
            "SENDER_ENDPOINT_URL": HTTPS_URL,
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_USERNAME": "svc",
            "KAFKA_SASL_PASSWORD": PASSWORD,
        },
    )

    summary = config_summary(config)

    for text in (repr(config), str(config), repr(summary)):
        assert TOKEN not in text
        assert PASSWORD not in text
    assert summary["auth_token"] == "***"
    assert summary["kafka"]["sasl_password"] == "***"


def test_an_invalid_secret_setting_is_reported_without_its_value() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(
            SenderConfig,
            env={"SENDER_AUTH_TOKEN": TOKEN, "SENDER_ENDPOINT_URL": HTTPS_URL, "SENDER_DLQ_TOPIC": "events"},
        )
    assert TOKEN not in str(caught.value)


def test_captured_log_events_never_contain_the_token() -> None:
    config = load_config(SenderConfig, env={"SENDER_AUTH_TOKEN": TOKEN, "SENDER_ENDPOINT_URL": HTTPS_URL})
    log = structlog.get_logger()

    with capture_logs() as entries:
        log.info("sender_configured", config=config_summary(config))
        log.info("token_object_logged", auth_token=config.auth_token, config=config)

    assert entries
    assert TOKEN not in repr(entries)


@pytest.fixture
def json_log_stream() -> Iterator[io.BytesIO]:
    """Production logging into a buffer; structlog and the stdlib root logger are restored afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.BytesIO()
    configure_logging("sender", "DEBUG", stream=stream, cache=False)
    try:
        yield stream
    finally:
        structlog.reset_defaults()
        root.handlers[:] = handlers
        root.setLevel(level)


def test_rendered_json_logs_never_contain_the_token_or_password(json_log_stream: io.BytesIO) -> None:
    config = load_config(
        SenderConfig,
        env={
            "SENDER_AUTH_TOKEN": TOKEN,
            "SENDER_ENDPOINT_URL": HTTPS_URL,
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_USERNAME": "svc",
            "KAFKA_SASL_PASSWORD": PASSWORD,
        },
    )
    log = structlog.get_logger()
    log.info("secret_by_type", token=config.auth_token, nested={"deeper": [config.kafka.sasl_password]})
    log.info("secret_by_key", authorization=f"Bearer {TOKEN}", headers={"Authorization": f"Bearer {TOKEN}"})
    log.info("secret_by_key", password=PASSWORD, sasl_password=PASSWORD, api_key=TOKEN)
    log.info("whole_config", config=config, kwargs=config.kafka.client_kwargs())
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        token = config.auth_token.reveal() if config.auth_token else ""  # a local holding the value
        log.exception("with_traceback", length=len(token))
    logging.getLogger("aiokafka").warning("stdlib line with password=%s", "not-a-secret")

    output = json_log_stream.getvalue().decode()
    assert output.count("\n") == 6  # one JSON line per event, tracebacks included
    assert TOKEN not in output
    assert PASSWORD not in output
    assert '"token":"***"' in output
    assert '"service":"sender"' in output


def test_redaction_of_plain_values_depends_on_the_key_only_and_is_the_same_every_time() -> None:
    event = {
        "api_key": TOKEN,
        "Session-Token": 42,
        "cookie": b"c=1",
        "password": None,
        "secret_rotated": True,
        "rows": 7,
        "idempotency_key": "ab12",
        "event": "batch_sent",
        "token": Secret(TOKEN),
        "nested": {"Authorization": f"Bearer {TOKEN}", "latency_ms": 4.3},
    }
    expected = {
        "api_key": "***",
        "Session-Token": "***",
        "cookie": "***",
        "password": None,
        "secret_rotated": True,
        "rows": 7,
        "idempotency_key": "ab12",
        "event": "batch_sent",
        "token": "***",
        "nested": {"Authorization": "***", "latency_ms": 4.3},
    }
    for _ in range(3):  # the verdict per key is remembered after the first event
        assert redact_secrets(None, "info", dict(event)) == expected


def test_docs_sender_md_documents_every_sender_setting_with_its_flag_and_default() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "sender.md").read_text()

    for env, flag, default, _ in describe_settings(SenderConfig):
        [row] = [line for line in docs.splitlines() if line.startswith(f"| `{env}` |")]
        assert f"`{flag}`" in row
        assert (f"`{default}`" if default != "unset" else "unset") in row


PROCESSOR_BOUNDS = (
    "PROCESSOR_MAX_BACKLOG_BYTES",
    "PROCESSOR_STALL_AFTER_S",
    "PROCESSOR_MAX_CLOCK_SKEW_MS",
    "PROCESSOR_CLOCK_JUMP_FACTS",
    "PROCESSOR_STATE_BUDGET_BYTES",
    "PROCESSOR_MAX_CONNECTIONS",
)


def test_processor_bound_settings_become_the_reducers_limits_with_the_brokers_record_size() -> None:
    config = load_config(
        ProcessorConfig,
        env={
            "PROCESSOR_MAX_CLOCK_SKEW_MS": "60000",
            "PROCESSOR_CLOCK_JUMP_FACTS": "7",
            "PROCESSOR_STATE_BUDGET_BYTES": "1048576",
            "PROCESSOR_MAX_CONNECTIONS": "33",
            "PROCESSOR_MAX_BACKLOG_BYTES": "2048",
            "PROCESSOR_STALL_AFTER_S": "2.5",
        },
    )
    assert config.limits(max_record_bytes=123_456) == Limits(
        max_record_bytes=123_456,
        max_clock_skew_ms=60_000,
        clock_jump_facts=7,
        state_budget_bytes=1_048_576,
        max_connections=33,
    )
    assert (config.max_backlog_bytes, config.stall_after_s) == (2048, 2.5)


def test_every_limits_field_but_the_brokers_record_size_is_a_processor_setting() -> None:
    settings = {field for field in ProcessorConfig.__struct_fields__}
    assert set(Limits.__struct_fields__) - settings == {"max_record_bytes"}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PROCESSOR_STALL_AFTER_S": "0"}, "PROCESSOR_STALL_AFTER_S"),
        ({"PROCESSOR_MAX_BACKLOG_BYTES": "10"}, "PROCESSOR_MAX_BACKLOG_BYTES"),
        ({"PROCESSOR_CLOCK_JUMP_FACTS": "0"}, "PROCESSOR_CLOCK_JUMP_FACTS"),
    ],
)
def test_out_of_range_processor_bounds_are_refused_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(ProcessorConfig, env=env)


def test_docs_reliability_md_documents_every_processor_bound_with_its_flag_and_default() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "reliability.md").read_text()
    described = {env: (flag, default) for env, flag, default, _ in describe_settings(ProcessorConfig)}
    for env in PROCESSOR_BOUNDS:
        flag, default = described[env]
        [row] = [line for line in docs.splitlines() if line.startswith(f"| `{env}` |")]
        assert f"`{flag}`" in row and f"`{default}`" in row
