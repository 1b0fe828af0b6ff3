"""Why a Kafka client could not work, as an exit code and one line: the single classification every command uses.

aiokafka reports a refused login or certificate in several shapes, and its bootstrap loses the cause
entirely (``KafkaConnectionError('Unable to bootstrap from ...')``, after logging the real error). So:

* :func:`check_kafka_access` opens one connection per bootstrap address with the service's own settings
  (TLS handshake, ``ApiVersions``, SASL) before any client starts, and raises the first *real* reason:
  :class:`KafkaAuthFailed` (wrong password, untrusted broker certificate, client certificate refused) or
  :class:`KafkaUnreachable` (nothing answered). A wrong password therefore ends the process at once with
  exit code 4 instead of a client that retries its bootstrap forever while its process looks alive.
* :func:`classify_failure` maps any exception (these two, aiokafka's, ``ssl``'s, ``OSError``, ``ConfigError``)
  to a :class:`Failure`: the exit code of :mod:`services.exitcodes` and one line that names the setting to
  check. It is the one table; a command's ``main`` prints ``failure.message`` and returns ``failure.exit_code``.

=======================================================  ====  ================================================
what happened                                            code  message starts with
=======================================================  ====  ================================================
SASL login refused (wrong user name or password)           4   ``Kafka authentication failed``
broker certificate not trusted / wrong host name           4   ``TLS: the broker's certificate is not trusted``
the broker refused our client certificate (or none)        4   ``TLS: the broker refused the client certificate``
ACL denied (topic, group, cluster, transactional id)       4   ``Kafka denied access``
no broker answered in time / connection refused            3   ``Kafka is unreachable``
a setting is invalid (``ConfigError``)                     2   its own message: ``invalid KAFKA_...``
anything else                                              1   ``unexpected failure``
=======================================================  ====  ================================================
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from typing import Any, Final

from aiokafka.errors import (
    AuthenticationFailedError,
    BrokerResponseError,
    IllegalSaslStateError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NoBrokersAvailable,
    NodeNotReadyError,
    RequestTimedOutError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)

from services.config import KafkaSettings
from services.errors import AnalyticsError, ConfigError
from services.exitcodes import EXIT_AUTH, EXIT_FAILED, EXIT_UNREACHABLE, EXIT_USAGE
from services.redact import mask_url_credentials

__all__ = [
    "Failure",
    "KafkaAccessError",
    "KafkaAuthFailed",
    "KafkaUnreachable",
    "check_kafka_access",
    "classify_failure",
    "log_failure",
]

_SASL_ERRORS: Final = (
    SaslAuthenticationFailed,
    AuthenticationFailedError,
    IllegalSaslStateError,
    UnsupportedSaslMechanismError,
)
# The TLS alerts a server sends when it refuses the client's certificate (or the lack of one).
_CLIENT_CERT_ALERTS: Final = ("BAD_CERTIFICATE", "CERTIFICATE_UNKNOWN", "CERTIFICATE_REQUIRED", "UNKNOWN_CA")


class KafkaAccessError(AnalyticsError):
    """The brokers could not be used at all; ``str(error)`` is the one line to show."""

    exit_code: int = EXIT_FAILED


class KafkaAuthFailed(KafkaAccessError):
    """Authentication or TLS failed: retrying with the same settings cannot succeed (exit code 4)."""

    reason = "kafka_auth"
    exit_code = EXIT_AUTH


class KafkaUnreachable(KafkaAccessError):
    """No bootstrap address answered (exit code 3)."""

    reason = "kafka_unreachable"
    exit_code = EXIT_UNREACHABLE


@dataclass(frozen=True, slots=True)
class Failure:
    """What a command prints (one line, credentials masked) and the code it exits with."""

    exit_code: int
    message: str


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what caused it, outermost first (aiokafka and ``start()`` wrappers keep the real reason there)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 8:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _first(chain: list[BaseException], kinds: type[BaseException] | tuple[type[BaseException], ...]) -> Any:
    return next((cause for cause in chain if isinstance(cause, kinds)), None)


_UNREACHABLE: Final = (
    KafkaConnectionError,
    KafkaTimeoutError,
    NoBrokersAvailable,
    NodeNotReadyError,
    RequestTimedOutError,
    ConnectionError,
    TimeoutError,
    asyncio.TimeoutError,
)


def _unreachable(chain: list[BaseException]) -> BaseException | None:
    """The cause that says nothing answered: a connection or timeout error, a retriable Kafka error that
    outlived its retries, or an ``OSError`` (DNS failure, no route to host) that is not a TLS error."""
    for cause in chain:
        if isinstance(cause, _UNREACHABLE) or (isinstance(cause, KafkaError) and cause.retriable):
            return cause
        if isinstance(cause, OSError) and not isinstance(cause, ssl.SSLError):
            return cause
    return None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if type(exc).__name__ in text else f"{type(exc).__name__}: {text}"


def classify_failure(exc: BaseException, *, bootstrap: str | None = None) -> Failure:
    """The exit code and the one-line message for ``exc`` (see the module table). Never raises.

    The causes of ``exc`` count too: a client's ``start()`` that failed on a refused login raises a
    wrapper whose ``__cause__`` is the real reason."""
    where = f" at {bootstrap}" if bootstrap else ""
    if isinstance(exc, KafkaAccessError):
        return Failure(exc.exit_code, mask_url_credentials(str(exc)))
    if isinstance(exc, ConfigError):
        return Failure(EXIT_USAGE, mask_url_credentials(str(exc)))
    chain = _chain(exc)
    sasl = _first(chain, _SASL_ERRORS)
    if sasl is not None:
        message = (
            f"Kafka authentication failed{where}: {_one_line(sasl)}; check KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD "
            "and KAFKA_SASL_MECHANISM"
        )
        return Failure(EXIT_AUTH, mask_url_credentials(message))
    tls = _first(chain, ssl.SSLError)
    if isinstance(tls, ssl.SSLCertVerificationError) and getattr(tls, "verify_message", None) is None:
        tls.verify_message = _one_line(tls)  # set by the handshake; absent when raised by hand
    if isinstance(tls, ssl.SSLCertVerificationError):
        message = (
            f"TLS: the broker's certificate is not trusted{where}: {tls.verify_message or _one_line(tls)}; check "
            "KAFKA_SSL_CAFILE and that the broker's certificate names the host in KAFKA_BOOTSTRAP_SERVERS"
        )
        return Failure(EXIT_AUTH, mask_url_credentials(message))
    if tls is not None and any(alert in str(tls).upper() for alert in _CLIENT_CERT_ALERTS):
        message = (
            f"TLS: the broker refused the client certificate{where} ({_one_line(tls)}); check "
            "KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE (a certificate signed by a CA the broker trusts)"
        )
        return Failure(EXIT_AUTH, mask_url_credentials(message))
    denied = next(
        (c for c in chain if isinstance(c, BrokerResponseError) and "AuthorizationFailed" in type(c).__name__), None
    )
    if denied is not None:
        message = f"Kafka denied access{where}: {_one_line(denied)}; grant this service's ACLs (docs/operations.md)"
        return Failure(EXIT_AUTH, mask_url_credentials(message))
    if tls is not None:
        message = f"TLS handshake with Kafka failed{where}: {_one_line(tls)}; check KAFKA_SECURITY_PROTOCOL, the port"
        return Failure(EXIT_AUTH, mask_url_credentials(message))
    lost = _unreachable(chain)
    if lost is not None:
        message = f"Kafka is unreachable{where}: {_one_line(lost)}; check KAFKA_BOOTSTRAP_SERVERS and the network"
        return Failure(EXIT_UNREACHABLE, mask_url_credentials(message))
    if isinstance(exc, KafkaError):
        return Failure(EXIT_FAILED, mask_url_credentials(f"Kafka error{where}: {_one_line(exc)}"))
    return Failure(EXIT_FAILED, mask_url_credentials(f"unexpected failure: {_one_line(exc)}"))


def log_failure(logger: Any, event: str, exc: BaseException, *, bootstrap: str | None = None) -> int:
    """Log ``exc`` as one ``event`` line (with its traceback only when it is unexpected); return the exit code."""
    failure = classify_failure(exc, bootstrap=bootstrap)
    if failure.exit_code == EXIT_FAILED:
        logger.error(event, error=failure.message, exit_code=failure.exit_code, exc_info=exc)
    else:
        logger.error(event, error=failure.message, exit_code=failure.exit_code)
    return failure.exit_code


async def check_kafka_access(settings: KafkaSettings, *, timeout_s: float = 15.0) -> None:
    """Connect to each bootstrap address with ``settings`` until one accepts the TLS handshake and the login.

    Returns on the first success. Raises :class:`KafkaAuthFailed` as soon as an address refuses the
    credentials or a certificate (that will not change by asking another broker), :class:`KafkaUnreachable`
    when no address answered, and :class:`~services.errors.ConfigError` for unreadable TLS files.
    """
    from aiokafka.conn import create_conn  # the one connection routine every aiokafka client uses

    kwargs = settings.client_kwargs(client_id="access-check")
    problems: list[str] = []
    for address in settings.bootstrap_servers.split(","):
        host, _, port = address.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"invalid KAFKA_BOOTSTRAP_SERVERS entry {address.strip()!r}: expected host:port")
        try:
            connection = await create_conn(
                host.strip("[]"),
                int(port),
                client_id="access-check",
                request_timeout_ms=int(timeout_s * 1000),
                ssl_context=kwargs.get("ssl_context"),
                security_protocol=settings.security_protocol,
                sasl_mechanism=settings.sasl_mechanism,
                sasl_plain_username=kwargs.get("sasl_plain_username"),
                sasl_plain_password=kwargs.get("sasl_plain_password"),
            )
        except Exception as exc:  # classified right here: every shape aiokafka and ssl raise
            failure = classify_failure(exc, bootstrap=address.strip())
            if failure.exit_code == EXIT_AUTH:
                raise KafkaAuthFailed(failure.message) from exc
            problems.append(failure.message)
            continue
        connection.close()
        return
    raise KafkaUnreachable(problems[0] if len(problems) == 1 else "; ".join(problems))
