"""Typed configuration, one object per service, read from the environment and then from flags.

Each service has one frozen, keyword-only :class:`msgspec.Struct` (:class:`SenderConfig`, and later
``ProcessorConfig``). Every field is declared with :func:`setting`, which records its description and
its linked environment variable next to its type and default, so the same declaration drives:

* loading: :func:`load_config` reads the environment variables, then the command-line flags (a flag
  wins over its variable, which wins over the default), and converts the strings with msgspec;
* ``--help``: :func:`add_config_arguments` adds one ``--flag`` per field, whose help names the
  variable and the default;
* the documentation: ``docs/sender.md`` has the same table.

Nested structs (``kafka: KafkaSettings``) become flags with a prefix (``--kafka-bootstrap-servers``).
An environment variable set to the empty string counts as unset; booleans are ``true``/``false``/``1``/``0``
in variables and ``--flag``/``--no-flag`` on the command line. Secrets (:class:`Secret`) never
appear in ``repr``, ``str``, logs or ``--help``; read them with :meth:`Secret.reveal` at the one place
that needs the value. Prefer environment variables to flags for secrets: flags show up in ``ps``.

Every Kafka client any service creates gets its connection settings from
:meth:`KafkaSettings.client_kwargs`.
"""

from __future__ import annotations

import argparse
import hmac
import os
import socket
import ssl
import urllib.parse
from collections.abc import Collection, Mapping, Sequence
from typing import Annotated, Any, Final, Literal, TypeVar

import msgspec
import msgspec.inspect as mi
from aiokafka.conn import collect_hosts

from reducer.limits import DEFAULT_LIMITS, Limits
from services.errors import ConfigError
from services.redact import mask_url_credentials
from services.tls import TlsFiles, client_context

__all__ = [
    "KafkaSettings",
    "ProcessorConfig",
    "Secret",
    "SenderConfig",
    "add_config_arguments",
    "config_summary",
    "describe_settings",
    "instance_client_id",
    "load_config",
    "setting",
]

C = TypeVar("C", bound=msgspec.Struct)

MIB: Final = 1024 * 1024


class Secret:
    """A string that never shows itself: ``repr`` and ``str`` are ``***``; :meth:`reveal` gives the value.

    >>> token = Secret("s3cr3t")
    >>> token, str(token), f"{token}"
    (***, '***', '***')
    >>> token.reveal()
    's3cr3t'
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret value. Call it only where the value leaves the process (a header, a SASL login)."""
        return self._value

    def __repr__(self) -> str:
        return "***"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self) -> str | tuple[Any, ...]:
        raise TypeError("a Secret cannot be pickled: pass the configuration, not its serialised form")


def setting(env: str, description: str, **constraints: Any) -> msgspec.Meta:
    """Annotate a config field with its environment variable and description (plus msgspec constraints).

    Use as ``name: Annotated[int, setting("SENDER_X", "What it does.", ge=1)] = 5``.
    """
    return msgspec.Meta(description=description, extra={"env": env}, **constraints)


# --------------------------------------------------------------------------------------------------------
# Shared: Kafka connection
# --------------------------------------------------------------------------------------------------------

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class KafkaSettings(msgspec.Struct, kw_only=True, frozen=True):
    """How every service connects to Kafka (the same variables for all services)."""

    bootstrap_servers: Annotated[
        str, setting("KAFKA_BOOTSTRAP_SERVERS", "Comma-separated host:port list of brokers.", min_length=1)
    ] = "127.0.0.1:19092"
    security_protocol: Annotated[
        SecurityProtocol, setting("KAFKA_SECURITY_PROTOCOL", "How to talk to the brokers.")
    ] = "PLAINTEXT"
    sasl_mechanism: Annotated[
        SaslMechanism, setting("KAFKA_SASL_MECHANISM", "SASL mechanism (SASL_* protocols only).")
    ] = "PLAIN"
    sasl_username: Annotated[
        str | None, setting("KAFKA_SASL_USERNAME", "SASL user name (required by SASL_* protocols).")
    ] = None
    sasl_password: Annotated[
        Secret | None, setting("KAFKA_SASL_PASSWORD", "SASL password (required by SASL_* protocols).")
    ] = None
    ssl_cafile: Annotated[
        str | None,
        setting(
            "KAFKA_SSL_CAFILE",
            "PEM file of CAs that sign the brokers' certificates (SSL protocols only; unset: the system's CAs).",
        ),
    ] = None
    ssl_certfile: Annotated[
        str | None,
        setting(
            "KAFKA_SSL_CERTFILE",
            "PEM client certificate (chain) presented to the brokers: mutual TLS (SSL protocols only).",
        ),
    ] = None
    ssl_keyfile: Annotated[
        str | None,
        setting(
            "KAFKA_SSL_KEYFILE",
            "PEM private key of KAFKA_SSL_CERTFILE (unencrypted; unset: the key is in the certificate file).",
        ),
    ] = None
    allow_sasl_plaintext: Annotated[
        bool,
        setting(
            "KAFKA_ALLOW_SASL_PLAINTEXT",
            "Accept KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT, which sends the SASL exchange (with PLAIN: the "
            "password itself) and all data unencrypted. Off: SASL_PLAINTEXT is a configuration error.",
        ),
    ] = False

    def __post_init__(self) -> None:
        _check_bootstrap_servers(self.bootstrap_servers)
        uses_sasl = self.security_protocol.startswith("SASL_")
        if self.security_protocol == "SASL_PLAINTEXT" and not self.allow_sasl_plaintext:
            raise ValueError(
                "KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT sends credentials and data unencrypted: use SASL_SSL, "
                "or set KAFKA_ALLOW_SASL_PLAINTEXT=true to accept that"
            )
        if uses_sasl and (not self.sasl_username or self.sasl_password is None):
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={self.security_protocol} needs KAFKA_SASL_USERNAME and "
                "KAFKA_SASL_PASSWORD: set both, or use PLAINTEXT/SSL"
            )
        for name, value in (
            ("KAFKA_SSL_CAFILE", self.ssl_cafile),
            ("KAFKA_SSL_CERTFILE", self.ssl_certfile),
            ("KAFKA_SSL_KEYFILE", self.ssl_keyfile),
        ):
            if value is not None and not self.uses_tls:
                raise ValueError(
                    f"{name} is set but KAFKA_SECURITY_PROTOCOL={self.security_protocol} does not use TLS: "
                    "set the protocol to SSL or SASL_SSL, or unset it"
                )
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            raise ValueError("KAFKA_SSL_KEYFILE is set without KAFKA_SSL_CERTFILE: set the certificate too")

    @property
    def uses_tls(self) -> bool:
        """True for SSL and SASL_SSL."""
        return self.security_protocol in ("SSL", "SASL_SSL")

    def client_kwargs(self, *, client_id: str | None = None) -> dict[str, Any]:
        """Keyword arguments for any aiokafka client (consumer, producer, admin): address, TLS and SASL.

        Raises:
            ConfigError: if the CA file, the client certificate or its key cannot be read.
        """
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        if client_id is not None:
            kwargs["client_id"] = client_id
        if self.uses_tls:
            kwargs["ssl_context"] = client_context(
                TlsFiles(
                    self.ssl_cafile,
                    self.ssl_certfile,
                    self.ssl_keyfile,
                    "KAFKA_SSL_CAFILE",
                    "KAFKA_SSL_CERTFILE",
                    "KAFKA_SSL_KEYFILE",
                )
            )
        if self.security_protocol.startswith("SASL_"):
            assert self.sasl_password is not None  # checked in __post_init__
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self.sasl_password.reveal()
        return kwargs


def _check_bootstrap_servers(servers: str) -> None:
    """Parse the list as aiokafka will (``host[:port]``, IPv6 in brackets); a bad entry is a ValueError."""
    for entry in servers.split(","):
        try:
            [(_host, port, _family)] = collect_hosts(entry.strip())
        except ValueError:
            raise ValueError(f"KAFKA_BOOTSTRAP_SERVERS: {entry.strip()!r} is not host:port") from None
        if not 0 < port < 65536:
            raise ValueError(f"KAFKA_BOOTSTRAP_SERVERS: {entry.strip()!r}: the port must be 1-65535")


def instance_client_id(role: str) -> str:
    """A client id unique to this process: ``<role>-<host name>-<pid>`` (the host name is the pod name on
    Kubernetes), so ``lag --members`` and the broker's logs tell replicas apart."""
    return f"{role}-{socket.gethostname()}-{os.getpid()}"


def _instance_id_setting(env: str, service: str) -> msgspec.Meta:
    return setting(
        env,
        f"Static group membership (KIP-345): a name unique to this {service} replica and stable across its "
        "restarts (e.g. the StatefulSet pod name). A replica that restarts within the session timeout gets its "
        "partitions back without rebalancing the others; unset: dynamic membership.",
    )


# --------------------------------------------------------------------------------------------------------
# Sender (services.sender)
# --------------------------------------------------------------------------------------------------------


class SenderConfig(msgspec.Struct, kw_only=True, frozen=True):
    """Settings of ``python -m services.sender``: drain ``events`` to the analytics HTTP endpoint."""

    kafka: KafkaSettings = msgspec.field(default_factory=KafkaSettings)
    events_topic: Annotated[
        str, setting("SENDER_EVENTS_TOPIC", "Topic the reducer publishes rows to.", min_length=1)
    ] = "events"
    dlq_topic: Annotated[
        str, setting("SENDER_DLQ_TOPIC", "Topic for rows the endpoint permanently refuses.", min_length=1)
    ] = "events.dlq"
    group_id: Annotated[
        str,
        setting("SENDER_GROUP_ID", "Consumer group; its committed offsets are the delivery progress.", min_length=1),
    ] = "review-analytics-sender"
    group_instance_id: Annotated[str | None, _instance_id_setting("SENDER_GROUP_INSTANCE_ID", "sender")] = None
    endpoint_url: Annotated[
        str,
        setting(
            "SENDER_ENDPOINT_URL",
            "Base URL of the analytics endpoint; rows are POSTed to <base>/codex/analytics-events/events.",
            pattern=r"^https?://",
        ),
    ] = "http://127.0.0.1:18080"
    auth_token: Annotated[
        Secret | None, setting("SENDER_AUTH_TOKEN", "Sent as 'Authorization: Bearer <token>'; unset: no header.")
    ] = None
    allow_token_over_http: Annotated[
        bool,
        setting(
            "SENDER_ALLOW_TOKEN_OVER_HTTP",
            "Send SENDER_AUTH_TOKEN (or credentials in the URL) over plain http:// (loopback tests only). "
            "Off: that combination is a configuration error.",
        ),
    ] = False
    account_id: Annotated[
        str | None, setting("SENDER_ACCOUNT_ID", "Sent as the ChatGPT-Account-ID header; unset: no header.")
    ] = None
    request_timeout_s: Annotated[
        float, setting("SENDER_REQUEST_TIMEOUT_S", "Timeout of one HTTP request, in seconds.", gt=0)
    ] = 10.0
    max_batch_rows: Annotated[int, setting("SENDER_MAX_BATCH_ROWS", "At most this many rows per request.", ge=1)] = 500
    max_batch_bytes: Annotated[
        int,
        setting(
            "SENDER_MAX_BATCH_BYTES",
            "At most this many body bytes per request (a larger single row is still sent, alone).",
            ge=64,
        ),
    ] = MIB
    max_poll_records: Annotated[
        int,
        setting(
            "SENDER_MAX_POLL_RECORDS", "At most this many records fetched per poll (all partitions together).", ge=1
        ),
    ] = 2000
    backoff_base_s: Annotated[
        float,
        setting(
            "SENDER_BACKOFF_BASE_S", "First retry waits up to this long (full jitter), doubling per attempt.", gt=0
        ),
    ] = 0.2
    backoff_cap_s: Annotated[
        float,
        setting(
            "SENDER_BACKOFF_CAP_S",
            "Longest wait between two retries, in seconds. Transient errors "
            "are retried forever: rows are never dropped.",
            gt=0,
        ),
    ] = 30.0
    retry_after_cap_s: Annotated[
        float, setting("SENDER_RETRY_AFTER_CAP_S", "Longest wait honoured from a Retry-After header, in seconds.", ge=0)
    ] = 300.0
    verify_tls: Annotated[bool, setting("SENDER_VERIFY_TLS", "Verify the endpoint's TLS certificate.")] = True
    endpoint_cafile: Annotated[
        str | None,
        setting(
            "SENDER_ENDPOINT_CAFILE", "PEM file of CAs that sign the endpoint's certificate (unset: certifi's CAs)."
        ),
    ] = None
    endpoint_certfile: Annotated[
        str | None,
        setting("SENDER_ENDPOINT_CERTFILE", "PEM client certificate (chain) presented to the endpoint: mutual TLS."),
    ] = None
    endpoint_keyfile: Annotated[
        str | None,
        setting(
            "SENDER_ENDPOINT_KEYFILE",
            "PEM private key of SENDER_ENDPOINT_CERTFILE (unencrypted; unset: the key is in the certificate file).",
        ),
    ] = None
    metrics_port: Annotated[
        int, setting("SENDER_METRICS_PORT", "Port of /metrics, /healthz and /readyz; 0 disables them.", ge=0, le=65535)
    ] = 9102
    metrics_host: Annotated[
        str,
        setting(
            "SENDER_METRICS_HOST",
            "Address the metrics server binds: 0.0.0.0 (every interface, for Prometheus in Kubernetes) or "
            "127.0.0.1 (this host only).",
            min_length=1,
        ),
    ] = "0.0.0.0"
    log_level: Annotated[LogLevel, setting("SENDER_LOG_LEVEL", "Lowest level logged.")] = "INFO"

    def __post_init__(self) -> None:
        if self.backoff_base_s > self.backoff_cap_s:
            raise ValueError(
                f"SENDER_BACKOFF_BASE_S={self.backoff_base_s} is above SENDER_BACKOFF_CAP_S={self.backoff_cap_s}: "
                "lower the base or raise the cap"
            )
        if self.events_topic == self.dlq_topic:
            raise ValueError(
                f"SENDER_DLQ_TOPIC must differ from SENDER_EVENTS_TOPIC (both are {self.events_topic!r}): "
                "dead-lettered rows would be sent again"
            )
        url = urllib.parse.urlsplit(self.endpoint_url)
        if url.scheme == "http" and not self.allow_token_over_http:
            if self.auth_token is not None:
                raise ValueError(
                    "SENDER_AUTH_TOKEN would be sent unencrypted to an http:// SENDER_ENDPOINT_URL: use https://, "
                    "or set SENDER_ALLOW_TOKEN_OVER_HTTP=true (loopback tests only)"
                )
            if url.password is not None or url.username:
                raise ValueError(
                    "SENDER_ENDPOINT_URL carries credentials over http://: use https://, "
                    "or set SENDER_ALLOW_TOKEN_OVER_HTTP=true (loopback tests only)"
                )
        if url.scheme == "http" and (self.endpoint_certfile or self.endpoint_cafile):
            raise ValueError(
                "SENDER_ENDPOINT_CAFILE/SENDER_ENDPOINT_CERTFILE are set but SENDER_ENDPOINT_URL is http://: "
                "use https://, or unset them"
            )
        if self.endpoint_keyfile is not None and self.endpoint_certfile is None:
            raise ValueError("SENDER_ENDPOINT_KEYFILE is set without SENDER_ENDPOINT_CERTFILE: set the certificate too")

    def endpoint_ssl_context(self, *, default_cafile: str | None = None) -> ssl.SSLContext:
        """The TLS context of the endpoint's HTTP client: CA, client certificate, verification on/off.

        Raises:
            ConfigError: a file cannot be read, or the key does not belong to the certificate.
        """
        files = TlsFiles(
            self.endpoint_cafile,
            self.endpoint_certfile,
            self.endpoint_keyfile,
            "SENDER_ENDPOINT_CAFILE",
            "SENDER_ENDPOINT_CERTFILE",
            "SENDER_ENDPOINT_KEYFILE",
        )
        return client_context(files, default_cafile=default_cafile, verify=self.verify_tls)


# --------------------------------------------------------------------------------------------------------
# Processor (services.processor)
# --------------------------------------------------------------------------------------------------------


class ProcessorConfig(msgspec.Struct, kw_only=True, frozen=True):
    """Settings of ``python -m services.processor``: reduce ``facts`` into ``events``, exactly once."""

    kafka: KafkaSettings = msgspec.field(default_factory=KafkaSettings)
    facts_topic: Annotated[
        str, setting("PROCESSOR_FACTS_TOPIC", "Topic app-servers publish facts to.", min_length=1)
    ] = "facts"
    events_topic: Annotated[
        str, setting("PROCESSOR_EVENTS_TOPIC", "Topic the rows are published to (read by the sender).", min_length=1)
    ] = "events"
    group_id: Annotated[
        str,
        setting(
            "PROCESSOR_GROUP_ID",
            "Consumer group; also names the changelog topic (changelog__<group>--<facts>--reducer-state).",
            min_length=1,
        ),
    ] = "review-analytics-reducer"
    group_instance_id: Annotated[str | None, _instance_id_setting("PROCESSOR_GROUP_INSTANCE_ID", "processor")] = None
    transactional_id_prefix: Annotated[
        str,
        setting(
            "PROCESSOR_TRANSACTIONAL_ID_PREFIX",
            "Prefix of the per-partition transactional ids (<prefix>-<facts topic>-<partition>); must be the same "
            "on every instance of the group and stable across restarts: it is what fences a zombie.",
            min_length=1,
        ),
    ] = "review-analytics-reducer"
    max_batch_records: Annotated[
        int,
        setting(
            "PROCESSOR_MAX_BATCH_RECORDS",
            "At most this many facts per poll (across partitions), and per transaction: a partition whose "
            "transaction is in flight collects what is polled for it as its next one, and pauses fetching "
            "once it holds this many.",
            ge=1,
        ),
    ] = 4000
    poll_timeout_ms: Annotated[
        int,
        setting("PROCESSOR_POLL_TIMEOUT_MS", "Longest wait for facts before a poll returns what it has.", ge=1),
    ] = 100
    transaction_timeout_ms: Annotated[
        int,
        setting(
            "PROCESSOR_TRANSACTION_TIMEOUT_MS",
            "Broker aborts a transaction left open this long; keep it below the session timeout.",
            ge=1000,
        ),
    ] = 10_000
    session_timeout_ms: Annotated[
        int, setting("PROCESSOR_SESSION_TIMEOUT_MS", "Consumer-group session timeout.", ge=6000)
    ] = 15_000
    idle_ttl_ms: Annotated[
        int,
        setting(
            "PROCESSOR_IDLE_TTL_MS",
            "A thread family with no fact for this long (in fact time, not wall time) is evicted from state.",
            ge=0,
        ),
    ] = 24 * 3600 * 1000
    lag_interval_s: Annotated[
        float,
        setting("PROCESSOR_LAG_INTERVAL_S", "Seconds between two exports of the group's consumer lag.", gt=0),
    ] = 15.0
    max_backlog_bytes: Annotated[
        int,
        setting(
            "PROCESSOR_MAX_BACKLOG_BYTES",
            "Value bytes a partition may hold fetched but not yet committed (its transaction in flight plus "
            "its backlog); over it, the partition's fetching pauses until its commits bring it back under.",
            ge=1024,
        ),
    ] = 64 * MIB
    stall_after_s: Annotated[
        float,
        setting(
            "PROCESSOR_STALL_AFTER_S",
            "A partition with lag (facts fetched or on the topic, not committed) that has not committed for this "
            "many seconds counts as stalled: metric, log line, and /readyz answers 503.",
            gt=0,
        ),
    ] = 60.0
    max_clock_skew_ms: Annotated[
        int,
        setting(
            "PROCESSOR_MAX_CLOCK_SKEW_MS",
            "A fact observed more than this far ahead of its partition's watermark (fact time) does not move the "
            "watermark, so it expires nothing.",
            ge=0,
        ),
    ] = DEFAULT_LIMITS.max_clock_skew_ms
    clock_jump_facts: Annotated[
        int,
        setting(
            "PROCESSOR_CLOCK_JUMP_FACTS",
            "... unless this many consecutive facts of the partition are all that far ahead: then the watermark "
            "jumps to the earliest of them.",
            ge=1,
        ),
    ] = DEFAULT_LIMITS.clock_jump_facts
    state_budget_bytes: Annotated[
        int,
        setting(
            "PROCESSOR_STATE_BUDGET_BYTES",
            "Encoded size of one partition's families; over it, the longest-idle families are evicted (a counted "
            "drop) until the state is under 90 % of it.",
            ge=64 * 1024,
        ),
    ] = DEFAULT_LIMITS.state_budget_bytes
    max_connections: Annotated[
        int,
        setting(
            "PROCESSOR_MAX_CONNECTIONS",
            "Connections remembered per partition; the oldest is evicted (a counted drop).",
            ge=1,
        ),
    ] = DEFAULT_LIMITS.max_connections
    metrics_port: Annotated[
        int,
        setting("PROCESSOR_METRICS_PORT", "Port of /metrics, /healthz and /readyz; 0 disables them.", ge=0, le=65535),
    ] = 9101
    metrics_host: Annotated[
        str,
        setting(
            "PROCESSOR_METRICS_HOST",
            "Address the metrics server binds: 0.0.0.0 (every interface, for Prometheus in Kubernetes) or "
            "127.0.0.1 (this host only).",
            min_length=1,
        ),
    ] = "0.0.0.0"
    log_level: Annotated[LogLevel, setting("PROCESSOR_LOG_LEVEL", "Lowest level logged.")] = "INFO"

    def __post_init__(self) -> None:
        if self.transaction_timeout_ms >= self.session_timeout_ms:
            raise ValueError(
                f"PROCESSOR_TRANSACTION_TIMEOUT_MS={self.transaction_timeout_ms} must be below "
                f"PROCESSOR_SESSION_TIMEOUT_MS={self.session_timeout_ms}: a transaction must not outlive the "
                "membership that owns its partition"
            )
        if self.facts_topic == self.events_topic:
            raise ValueError("PROCESSOR_FACTS_TOPIC and PROCESSOR_EVENTS_TOPIC must differ")

    def limits(self, *, max_record_bytes: int) -> Limits:
        """The containment boundary's bounds: these settings, and ``max_record_bytes`` as read from the broker
        at start (``services.processor.broker_limits``)."""
        return Limits(
            max_record_bytes=max_record_bytes,
            max_clock_skew_ms=self.max_clock_skew_ms,
            clock_jump_facts=self.clock_jump_facts,
            state_budget_bytes=self.state_budget_bytes,
            max_connections=self.max_connections,
        )


# --------------------------------------------------------------------------------------------------------
# Loading: environment, then flags
# --------------------------------------------------------------------------------------------------------


class _Field(msgspec.Struct, frozen=True):
    """One leaf setting, found by walking a config struct."""

    path: tuple[str, ...]  # ("kafka", "bootstrap_servers")
    env: str
    description: str
    type: mi.Type
    default: Any

    @property
    def secret(self) -> bool:
        """True for ``Secret`` fields, whose values must not be echoed in errors."""
        types = self.type.types if isinstance(self.type, mi.UnionType) else (self.type,)
        return any(isinstance(t, mi.CustomType) and t.cls is Secret for t in types)

    @property
    def flag(self) -> str:
        return "--" + "-".join(self.path).replace("_", "-")

    @property
    def dest(self) -> str:
        return ".".join(self.path)


def _fields(config_type: type[msgspec.Struct], prefix: tuple[str, ...] = ()) -> list[_Field]:
    info = mi.type_info(config_type)
    assert isinstance(info, mi.StructType)
    found: list[_Field] = []
    for field in info.fields:
        path = (*prefix, field.name)
        if isinstance(field.type, mi.StructType):
            found.extend(_fields(field.type.cls, path))
            continue
        if not (isinstance(field.type, mi.Metadata) and field.type.extra and "env" in field.type.extra):
            raise TypeError(f"config field {'.'.join(path)} must be declared with setting(env, description)")
        default = field.default if field.default is not msgspec.NODEFAULT else None
        description = str((field.type.extra_json_schema or {}).get("description", ""))
        found.append(_Field(path, field.type.extra["env"], description, field.type.type, default))
    return found


def _shown_default(field: _Field) -> str:
    if field.default is None:
        return "unset"
    if isinstance(field.type, mi.BoolType):
        return "true" if field.default else "false"
    return str(field.default)


def add_config_arguments(
    parser: argparse.ArgumentParser,
    config_type: type[msgspec.Struct],
    *,
    title: str = "settings",
    only: Collection[str] | None = None,
) -> None:
    """Add one flag per setting of ``config_type``; each flag's help names its variable and default.

    Top-level fields go into an argument group called ``title``, nested structs into ``<name> settings``.
    Flags default to "not given", so :func:`load_config` can tell a flag from its environment variable.
    ``only``: add flags only for these settings (dotted names, ``"facts_topic"``; a struct name such as
    ``"kafka"`` covers all its fields): a tool that reads a few of a service's settings shows only those.
    """
    groups: dict[tuple[str, ...], argparse._ArgumentGroup] = {}
    for field in _fields(config_type):
        if only is not None and not any(field.dest == name or field.dest.startswith(name + ".") for name in only):
            continue
        section = field.path[:-1]
        if section not in groups:
            groups[section] = parser.add_argument_group(f"{section[0]} settings" if section else title)
        help_text = f"{field.description} [env {field.env}; default {_shown_default(field)}]"
        help_text = help_text.replace("%", "%%")
        options: dict[str, Any] = {"dest": field.dest, "default": argparse.SUPPRESS, "help": help_text}
        if isinstance(field.type, mi.BoolType):
            options["action"] = argparse.BooleanOptionalAction
        else:
            options["metavar"] = field.path[-1].upper()
            if isinstance(field.type, mi.LiteralType):
                options["choices"] = [str(v) for v in field.type.values]
                options["metavar"] = "{" + ",".join(options["choices"]) + "}"
        groups[section].add_argument(field.flag, **options)


def _dec_hook(type_: type, value: Any) -> Any:
    if type_ is Secret and isinstance(value, str):
        return Secret(value)
    if type_ is Secret and isinstance(value, Secret):
        return value
    raise NotImplementedError(f"cannot convert {type(value).__name__} to {type_.__name__}")


def load_config(
    config_type: type[C],
    *,
    env: Mapping[str, str],
    args: argparse.Namespace | None = None,
) -> C:
    """Build ``config_type`` from ``env`` (e.g. ``os.environ``), overridden by flags parsed into ``args``.

    Raises:
        ConfigError: naming the variable and flag of the first invalid setting.
    """
    fields = _fields(config_type)
    given: dict[str, Any] = {}
    for field in fields:
        value = env.get(field.env, "")
        if value != "":
            given[field.dest] = value
    if args is not None:
        known = {field.dest for field in fields}
        given.update((dest, value) for dest, value in vars(args).items() if dest in known)

    nested: dict[str, Any] = {}
    for dest, value in given.items():
        *parents, leaf = dest.split(".")
        target = nested
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value

    try:
        return msgspec.convert(nested, config_type, strict=False, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        raise ConfigError(_explain(str(exc), fields, given)) from exc


def _explain(message: str, fields: Sequence[_Field], given: Mapping[str, Any]) -> str:
    """Turn msgspec's ``... - at `$.kafka.bootstrap_servers``` into the variable and flag an operator sets."""
    text, sep, where = message.rpartition(" - at `$.")
    if not sep:
        return mask_url_credentials(f"invalid configuration: {message}")
    dest = where.rstrip("`")
    for field in fields:
        if field.dest == dest:
            shown = "" if field.secret else f" {mask_url_credentials(repr(given.get(dest)))}"
            valid = _valid_values(field.type)
            return mask_url_credentials(f"invalid {field.env} (flag {field.flag}){shown}: {text}{valid}")
    return mask_url_credentials(f"invalid configuration: {text}")


def _valid_values(field_type: mi.Type) -> str:
    """``"; valid values: ..."`` for a setting with a fixed set of values (a literal or a boolean), else ``""``."""
    types = field_type.types if isinstance(field_type, mi.UnionType) else (field_type,)
    for candidate in types:
        if isinstance(candidate, mi.LiteralType):
            return "; valid values: " + ", ".join(str(value) for value in candidate.values)
        if isinstance(candidate, mi.BoolType):
            return "; valid values: true, false, 1, 0"
    return ""


def describe_settings(config_type: type[msgspec.Struct]) -> list[tuple[str, str, str, str]]:
    """``(variable, flag, default, description)`` of every setting, in declaration order (for docs and tests)."""
    return [(field.env, field.flag, _shown_default(field), field.description) for field in _fields(config_type)]


def config_summary(config: msgspec.Struct) -> dict[str, Any]:
    """The configuration as plain data for a startup log line, with every secret shown as ``***`` and the
    password of every URL masked (``https://user:***@host``)."""

    def hide(value: Any) -> Any:
        if isinstance(value, Secret):
            return "***"
        raise NotImplementedError(type(value).__name__)

    def mask(value: Any) -> Any:
        if isinstance(value, str):
            return mask_url_credentials(value)
        if isinstance(value, dict):
            return {key: mask(item) for key, item in value.items()}
        return value

    summary = mask(msgspec.to_builtins(config, enc_hook=hide))
    assert isinstance(summary, dict)
    return summary
