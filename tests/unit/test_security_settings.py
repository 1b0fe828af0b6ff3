"""Fail-closed security settings, TLS client files, URL credential masking and the Kafka failure table.

No broker here: ``tests/integration/test_security.py`` proves the same against real SASL_SSL and mutual-TLS
listeners. Certificates are generated once per module by ``tools.kafka_security``.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
)
from prometheus_client import CollectorRegistry

from services.config import ProcessorConfig, SenderConfig, config_summary, describe_settings, load_config
from services.errors import ConfigError
from services.exitcodes import EXIT_AUTH, EXIT_FAILED, EXIT_UNREACHABLE, EXIT_USAGE
from services.kafka_errors import KafkaAuthFailed, classify_failure
from services.metrics import start_metrics_server
from services.redact import mask_url_credentials
from tools.kafka_security import TlsMaterial, generate_tls_material

URL_PASSWORD = "urlpw-5e6f-never-print-me"
CREDENTIAL_URL = f"https://svc:{URL_PASSWORD}@analytics.example.com"
TOKEN = "tok-77aa-never-print-me"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    return generate_tls_material(tmp_path_factory.mktemp("tls"))


# --------------------------------------------------------------------------------------------------------
# Fail closed
# --------------------------------------------------------------------------------------------------------


def test_sasl_plaintext_is_refused_without_the_explicit_opt_in() -> None:
    env = {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"}
    with pytest.raises(ConfigError, match="KAFKA_ALLOW_SASL_PLAINTEXT=true"):
        load_config(ProcessorConfig, env=env)
    accepted = load_config(ProcessorConfig, env={**env, "KAFKA_ALLOW_SASL_PLAINTEXT": "true"})
    assert accepted.kafka.security_protocol == "SASL_PLAINTEXT"


def test_a_token_over_plain_http_is_refused_unless_explicitly_allowed() -> None:
    with pytest.raises(ConfigError, match="SENDER_ALLOW_TOKEN_OVER_HTTP=true") as caught:
        load_config(SenderConfig, env={"SENDER_AUTH_TOKEN": TOKEN, "SENDER_ENDPOINT_URL": "http://analytics:80"})
    assert TOKEN not in str(caught.value)
    allowed = load_config(SenderConfig, env={"SENDER_AUTH_TOKEN": TOKEN, "SENDER_ALLOW_TOKEN_OVER_HTTP": "true"})
    assert allowed.endpoint_url.startswith("http://")
    over_https = load_config(SenderConfig, env={"SENDER_AUTH_TOKEN": TOKEN, "SENDER_ENDPOINT_URL": CREDENTIAL_URL})
    assert over_https.auth_token is not None


def test_credentials_inside_a_plain_http_url_are_refused_and_not_echoed() -> None:
    with pytest.raises(ConfigError, match="carries credentials over http://") as caught:
        load_config(SenderConfig, env={"SENDER_ENDPOINT_URL": f"http://svc:{URL_PASSWORD}@analytics"})
    assert URL_PASSWORD not in str(caught.value)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KAFKA_SSL_CERTFILE": "/c.pem"}, "KAFKA_SSL_CERTFILE is set but KAFKA_SECURITY_PROTOCOL=PLAINTEXT"),
        ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_KEYFILE": "/k.pem"}, "KAFKA_SSL_KEYFILE is set without"),
        ({"SENDER_ENDPOINT_CERTFILE": "/c.pem"}, "SENDER_ENDPOINT_URL is http://"),
        (
            {"SENDER_ENDPOINT_URL": "https://a", "SENDER_ENDPOINT_KEYFILE": "/k.pem"},
            "SENDER_ENDPOINT_KEYFILE is set without",
        ),
    ],
)
def test_inconsistent_tls_file_settings_are_configuration_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(SenderConfig, env=env)


def test_kafka_client_certificate_is_loaded_and_a_mismatched_key_names_the_setting(tls: TlsMaterial) -> None:
    env = {
        "KAFKA_SECURITY_PROTOCOL": "SSL",
        "KAFKA_SSL_CAFILE": str(tls.ca_cert),
        "KAFKA_SSL_CERTFILE": str(tls.client_cert),
        "KAFKA_SSL_KEYFILE": str(tls.client_key),
    }
    context = load_config(ProcessorConfig, env=env).kafka.client_kwargs()["ssl_context"]
    assert isinstance(context, ssl.SSLContext) and context.verify_mode == ssl.CERT_REQUIRED
    wrong_key = load_config(ProcessorConfig, env={**env, "KAFKA_SSL_KEYFILE": str(tls.untrusted_client_key)})
    with pytest.raises(ConfigError, match="KAFKA_SSL_KEYFILE="):
        wrong_key.kafka.client_kwargs()


def test_endpoint_tls_context_uses_the_configured_ca_and_client_certificate(tls: TlsMaterial, tmp_path: Path) -> None:
    config = load_config(
        SenderConfig,
        env={
            "SENDER_ENDPOINT_URL": "https://127.0.0.1:8443",
            "SENDER_ENDPOINT_CAFILE": str(tls.ca_cert),
            "SENDER_ENDPOINT_CERTFILE": str(tls.client_cert),
            "SENDER_ENDPOINT_KEYFILE": str(tls.client_key),
        },
    )
    context = config.endpoint_ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [cert["subject"] for cert in context.get_ca_certs()] == [((("commonName", "review-analytics test CA"),),)]
    missing = load_config(
        SenderConfig, env={"SENDER_ENDPOINT_URL": "https://h", "SENDER_ENDPOINT_CAFILE": str(tmp_path / "none.pem")}
    )
    with pytest.raises(ConfigError, match="SENDER_ENDPOINT_CAFILE="):
        missing.endpoint_ssl_context()


def test_every_new_security_setting_is_in_help_with_its_variable() -> None:
    sender = {row[0] for row in describe_settings(SenderConfig)}
    processor = {row[0] for row in describe_settings(ProcessorConfig)}
    kafka = {"KAFKA_SSL_CERTFILE", "KAFKA_SSL_KEYFILE", "KAFKA_ALLOW_SASL_PLAINTEXT"}
    assert kafka | {"PROCESSOR_METRICS_HOST"} <= processor
    assert (
        kafka
        | {
            "SENDER_ALLOW_TOKEN_OVER_HTTP",
            "SENDER_ENDPOINT_CAFILE",
            "SENDER_ENDPOINT_CERTFILE",
            "SENDER_ENDPOINT_KEYFILE",
            "SENDER_METRICS_HOST",
        }
        <= sender
    )
    assert load_config(SenderConfig, env={}).metrics_host == "0.0.0.0"  # reachable by Prometheus in a pod


def test_the_metrics_server_binds_the_configured_host() -> None:
    server = start_metrics_server(0, CollectorRegistry(), host="127.0.0.1")
    try:
        assert server.host == "127.0.0.1"
    finally:
        server.close()


# --------------------------------------------------------------------------------------------------------
# Credentials inside URLs
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("https://svc:pw@host/x", "https://svc:***@host/x"),
        ("error at http://tok@host:8080 and https://h/ok", "error at http://***@host:8080 and https://h/ok"),
        ("SASL_SSL://user:pw@broker:9093", "SASL_SSL://user:***@broker:9093"),
        ("'https://a:b@c'", "'https://a:***@c'"),
        ("mail me@example.com, see https://host/path", "mail me@example.com, see https://host/path"),
    ],
)
def test_mask_url_credentials_hides_only_the_secret_part(text: str, shown: str) -> None:
    assert mask_url_credentials(text) == shown


def test_a_credential_url_is_masked_in_the_config_summary_and_in_config_errors() -> None:
    config = load_config(SenderConfig, env={"SENDER_ENDPOINT_URL": CREDENTIAL_URL})
    assert config_summary(config)["endpoint_url"] == "https://svc:***@analytics.example.com"
    with pytest.raises(ConfigError) as caught:
        load_config(SenderConfig, env={"SENDER_ENDPOINT_URL": f"ftp://svc:{URL_PASSWORD}@host"})
    assert "SENDER_ENDPOINT_URL" in str(caught.value) and URL_PASSWORD not in str(caught.value)


# --------------------------------------------------------------------------------------------------------
# One classification: exception -> exit code and one line
# --------------------------------------------------------------------------------------------------------


def _wrapped(cause: BaseException) -> KafkaConnectionError:
    error = KafkaConnectionError("Connection at 127.0.0.1:9093 closed")
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("exc", "code", "start"),
    [
        (SaslAuthenticationFailed("invalid credentials"), EXIT_AUTH, "Kafka authentication failed"),
        (
            ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"),
            EXIT_AUTH,
            "TLS: the broker's certificate is not trusted",
        ),
        (
            _wrapped(ssl.SSLError(1, "[SSL: SSLV3_ALERT_BAD_CERTIFICATE] sslv3 alert bad certificate")),
            EXIT_AUTH,
            "TLS: the broker refused the client certificate",
        ),
        (TopicAuthorizationFailedError(), EXIT_AUTH, "Kafka denied access"),
        (KafkaAuthFailed("Kafka authentication failed at h:1: x"), EXIT_AUTH, "Kafka authentication failed"),
        (KafkaConnectionError("Unable to bootstrap"), EXIT_UNREACHABLE, "Kafka is unreachable"),
        (ConnectionRefusedError(111, "Connect call failed"), EXIT_UNREACHABLE, "Kafka is unreachable"),
        (ConfigError("invalid KAFKA_X"), EXIT_USAGE, "invalid KAFKA_X"),
        (RuntimeError("boom\nsecond line"), EXIT_FAILED, "unexpected failure"),
    ],
)
def test_every_failure_maps_to_its_exit_code_and_one_line(exc: BaseException, code: int, start: str) -> None:
    failure = classify_failure(exc, bootstrap="127.0.0.1:9093")
    assert failure.exit_code == code
    assert failure.message.startswith(start)
    assert "\n" not in failure.message


def test_a_failure_message_masks_credentials_in_urls() -> None:
    failure = classify_failure(KafkaConnectionError(f"cannot reach {CREDENTIAL_URL}"))
    assert URL_PASSWORD not in failure.message and "svc:***@" in failure.message
