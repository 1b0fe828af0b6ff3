"""A secured local broker for the whole session: SASL_SSL (SCRAM-SHA-512) and mutual-TLS listeners.

Registered as a pytest plugin by ``tests/conftest.py``:

- ``secured_kafka`` (session): one broker started by ``tools.kafka_security.start_secured_broker`` on free
  ports, with test-time certificates and the SCRAM user :data:`SCRAM_USER`. Its PLAINTEXT listener stays
  open for the tests' own set-up and checks (create topics, read results); the code under test connects
  only through the secured listeners. Started on first use, so runs that never ask for it pay nothing.

Helpers:

- :func:`listener_env`: the ``KAFKA_*`` environment a service needs for one listener (``sasl_ssl`` or
  ``mtls``), optionally spoiled (``wrong_password``, ``untrusted_ca``, ``untrusted_client_cert``) for the
  failure tests.
- :func:`listener_settings`: the same as a :class:`~services.config.KafkaSettings`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import pytest

from services.config import KafkaSettings, load_config
from tests.support.kafka import BROKER_READY_TIMEOUT_S, started_or_fail
from tools.kafka_security import ScramUser, SecuredBroker, generate_tls_material, start_secured_broker

__all__ = ["LISTENERS", "SCRAM_USER", "listener_env", "listener_settings", "secured_kafka"]

SCRAM_USER = ScramUser("pipeline", "scram-pw-3c4d-pipeline")
WRONG_PASSWORD = "scram-pw-wrong-never-print-me"
Listener = Literal["sasl_ssl", "mtls"]
LISTENERS: tuple[Listener, ...] = ("sasl_ssl", "mtls")
Spoil = Literal["wrong_password", "untrusted_ca", "untrusted_client_cert"] | None


@pytest.fixture(scope="session")
def secured_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredBroker]:
    """The session's secured broker; errors (never skips) with the broker log tail if it cannot start."""
    base = tmp_path_factory.mktemp("secured-kafka")
    material = generate_tls_material(base / "tls")
    broker = started_or_fail(
        "the secured local Kafka broker",
        lambda: start_secured_broker(base / "data", material, [SCRAM_USER], ready_timeout=BROKER_READY_TIMEOUT_S),
    )
    try:
        yield broker
    finally:
        broker.handle.stop()


def listener_env(broker: SecuredBroker, listener: Listener, spoil: Spoil = None) -> dict[str, str]:
    """``KAFKA_*`` variables that connect to ``listener`` (as an operator would set them)."""
    tls = broker.material
    cafile = tls.untrusted_ca_cert if spoil == "untrusted_ca" else tls.ca_cert
    if listener == "sasl_ssl":
        return {
            "KAFKA_BOOTSTRAP_SERVERS": broker.sasl_ssl_bootstrap,
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "KAFKA_SASL_USERNAME": SCRAM_USER.name,
            "KAFKA_SASL_PASSWORD": WRONG_PASSWORD if spoil == "wrong_password" else SCRAM_USER.password,
            "KAFKA_SSL_CAFILE": str(cafile),
        }
    untrusted = spoil == "untrusted_client_cert"
    return {
        "KAFKA_BOOTSTRAP_SERVERS": broker.ssl_bootstrap,
        "KAFKA_SECURITY_PROTOCOL": "SSL",
        "KAFKA_SSL_CAFILE": str(cafile),
        "KAFKA_SSL_CERTFILE": str(tls.untrusted_client_cert if untrusted else tls.client_cert),
        "KAFKA_SSL_KEYFILE": str(tls.untrusted_client_key if untrusted else tls.client_key),
    }


def listener_settings(broker: SecuredBroker, listener: Listener, spoil: Spoil = None) -> KafkaSettings:
    """:func:`listener_env` as settings, loaded the way every service loads them."""
    return load_config(KafkaSettings, env=listener_env(broker, listener, spoil))
