"""Broker-side security for the local Kafka of ``tools.localkafka``: certificates, SCRAM users, listeners.

A secured local broker keeps its PLAINTEXT listener (tests create topics and read results through it) and
gets two more client listeners on loopback:

* ``SASL_SSL``: TLS (server certificate only) plus SASL SCRAM-SHA-512 user/password;
* ``SSL``: mutual TLS, ``ssl.client.auth=required``: the client must present a certificate signed by the CA.

Everything is made at test time, in a directory the caller owns:

* :func:`generate_tls_material` writes a CA, a broker certificate for ``127.0.0.1``/``localhost``, a client
  certificate, and a second, unrelated CA with its own client certificate (the "untrusted" ones tests use
  to prove a handshake is refused). All PEM, written with Python's ``cryptography`` (a dev dependency); the
  broker reads PEM directly (``ssl.keystore.type=PEM``), so no JKS file and no ``keytool`` is involved.
* :func:`scram_format_args` turns users into ``kafka-storage format --add-scram`` arguments, so the
  credentials exist in the KRaft metadata before the broker first starts.
* :func:`security_overrides` gives the ``server.properties`` entries for those listeners.

Hook into ``tools.localkafka``: ``start(extra_listeners=..., overrides=..., format_args=...)`` (any node of a
cluster can take the same three). :func:`start_secured_broker` does all of it for one node on free ports.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from tools.localkafka import BrokerHandle, free_ports, start_on_free_ports

__all__ = [
    "SASL_SSL_LISTENER",
    "SSL_LISTENER",
    "ScramUser",
    "SecuredBroker",
    "TlsMaterial",
    "generate_tls_material",
    "scram_format_args",
    "security_overrides",
    "start_secured_broker",
]

SASL_SSL_LISTENER: Final = "SASL_SSL"
SSL_LISTENER: Final = "SSL"
SCRAM_MECHANISM: Final = "SCRAM-SHA-512"
_VALIDITY: Final = datetime.timedelta(days=2)
_KEY_BITS: Final = 2048


@dataclasses.dataclass(frozen=True, slots=True)
class ScramUser:
    """A SCRAM-SHA-512 user created when the broker's storage is formatted."""

    name: str
    password: str


@dataclasses.dataclass(frozen=True, slots=True)
class TlsMaterial:
    """PEM files, all in one directory (see the module docstring)."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        """The CA that signs the broker and the trusted client: clients' ``KAFKA_SSL_CAFILE``."""
        return self.directory / "ca.pem"

    @property
    def broker_keystore(self) -> Path:
        """The broker's private key (PKCS#8) followed by its certificate: a Kafka PEM keystore."""
        return self.directory / "broker-keystore.pem"

    @property
    def broker_cert(self) -> Path:
        return self.directory / "broker.pem"

    @property
    def broker_key(self) -> Path:
        return self.directory / "broker-key.pem"

    @property
    def client_cert(self) -> Path:
        return self.directory / "client.pem"

    @property
    def client_key(self) -> Path:
        return self.directory / "client-key.pem"

    @property
    def untrusted_ca_cert(self) -> Path:
        """A CA that signed nothing the broker uses: as a client's CA file, the broker's certificate fails."""
        return self.directory / "untrusted-ca.pem"

    @property
    def untrusted_client_cert(self) -> Path:
        """A client certificate signed by the untrusted CA: the mutual-TLS listener refuses it."""
        return self.directory / "untrusted-client.pem"

    @property
    def untrusted_client_key(self) -> Path:
        return self.directory / "untrusted-client-key.pem"


def generate_tls_material(directory: Path, *, hosts: Sequence[str] = ("127.0.0.1", "localhost")) -> TlsMaterial:
    """Write a fresh CA, broker and client certificates (and an untrusted pair) into ``directory``.

    The broker certificate names every entry of ``hosts`` (IP addresses as IP SANs, others as DNS SANs),
    so hostname verification stays on in the clients. Takes well under a second.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    material = TlsMaterial(directory)
    now = datetime.datetime.now(datetime.UTC)

    def new_key() -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=_KEY_BITS)

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    def build(
        subject: str, key: rsa.RSAPrivateKey, issuer: tuple[x509.Name, rsa.RSAPrivateKey] | None, **ext: Any
    ) -> x509.Certificate:
        issuer_name, issuer_key = issuer if issuer is not None else (name(subject), key)
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(issuer_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
        )
        if issuer is None:
            builder = builder.add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
        if "san" in ext:
            builder = builder.add_extension(x509.SubjectAlternativeName(ext["san"]), critical=False)
        if "usage" in ext:
            builder = builder.add_extension(x509.ExtendedKeyUsage(ext["usage"]), critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    def pem_key(key: rsa.RSAPrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def pem_cert(cert: x509.Certificate) -> bytes:
        return cert.public_bytes(serialization.Encoding.PEM)

    def write(path: Path, data: bytes, *, private: bool = False) -> None:
        path.write_bytes(data)
        if private:
            path.chmod(0o600)

    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))

    ca_key = new_key()
    ca = build("review-analytics test CA", ca_key, None)
    broker_key = new_key()
    broker = build(
        "review-analytics test broker",
        broker_key,
        (ca.subject, ca_key),
        san=sans,
        usage=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
    )
    client_key = new_key()
    client_usage = [ExtendedKeyUsageOID.CLIENT_AUTH]
    client = build("review-analytics pipeline", client_key, (ca.subject, ca_key), usage=client_usage)
    rogue_ca_key = new_key()
    rogue_ca = build("some other CA", rogue_ca_key, None)
    rogue_key = new_key()
    rogue = build("review-analytics pipeline", rogue_key, (rogue_ca.subject, rogue_ca_key), usage=client_usage)

    write(material.ca_cert, pem_cert(ca))
    write(material.broker_cert, pem_cert(broker))
    write(material.broker_key, pem_key(broker_key), private=True)
    write(material.broker_keystore, pem_key(broker_key) + pem_cert(broker), private=True)
    write(material.client_cert, pem_cert(client))
    write(material.client_key, pem_key(client_key), private=True)
    write(material.untrusted_ca_cert, pem_cert(rogue_ca))
    write(material.untrusted_client_cert, pem_cert(rogue))
    write(material.untrusted_client_key, pem_key(rogue_key), private=True)
    return material


def scram_format_args(users: Sequence[ScramUser]) -> list[str]:
    """``kafka-storage format`` arguments that create ``users`` as SCRAM-SHA-512 credentials."""
    args: list[str] = []
    for user in users:
        if any(c in user.name + user.password for c in ',[]="'):
            raise ValueError(f'SCRAM user {user.name!r}: name and password must not contain , [ ] = or "')
        args += ["--add-scram", f"{SCRAM_MECHANISM}=[name={user.name},password={user.password}]"]
    return args


def security_overrides(material: TlsMaterial) -> dict[str, str]:
    """``server.properties`` entries for the ``SASL_SSL`` (SCRAM-SHA-512) and ``SSL`` (mutual TLS) listeners.

    Both listeners present the broker certificate and trust the CA; only ``SSL`` requires a client
    certificate. Inter-broker and controller traffic stay on their own (PLAINTEXT) listeners.
    """
    sasl = SASL_SSL_LISTENER.lower()
    return {
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(material.broker_keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(material.ca_cert),
        "ssl.endpoint.identification.algorithm": "https",
        f"listener.name.{SSL_LISTENER.lower()}.ssl.client.auth": "required",
        f"listener.name.{sasl}.ssl.client.auth": "none",
        "sasl.enabled.mechanisms": SCRAM_MECHANISM,
        f"listener.name.{sasl}.sasl.enabled.mechanisms": SCRAM_MECHANISM,
        f"listener.name.{sasl}.{SCRAM_MECHANISM.lower()}.sasl.jaas.config": (
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        ),
    }


@dataclasses.dataclass(frozen=True, slots=True)
class SecuredBroker:
    """A local broker with PLAINTEXT, SASL_SSL and SSL listeners, and what clients need to use them."""

    handle: BrokerHandle
    material: TlsMaterial
    users: tuple[ScramUser, ...]
    sasl_ssl_port: int
    ssl_port: int

    @property
    def plaintext_bootstrap(self) -> str:
        return self.handle.bootstrap

    @property
    def sasl_ssl_bootstrap(self) -> str:
        return f"127.0.0.1:{self.sasl_ssl_port}"

    @property
    def ssl_bootstrap(self) -> str:
        return f"127.0.0.1:{self.ssl_port}"


def start_secured_broker(
    data_dir: Path, material: TlsMaterial, users: Sequence[ScramUser], **options: Any
) -> SecuredBroker:
    """Start a broker in ``data_dir`` on free ports with both secured listeners (``options`` go to
    ``tools.localkafka.start``: ``ready_timeout``, ``heap``, ``overrides`` merged over the security ones)."""
    sasl_ssl_port, ssl_port = free_ports(2)
    overrides: Mapping[str, str] = {**security_overrides(material), **options.pop("overrides", {})}
    handle = start_on_free_ports(
        data_dir,
        extra_listeners={SASL_SSL_LISTENER: sasl_ssl_port, SSL_LISTENER: ssl_port},
        overrides=overrides,
        format_args=scram_format_args(users),
        **options,
    )
    return SecuredBroker(handle, material, tuple(users), sasl_ssl_port, ssl_port)
