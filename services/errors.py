"""The exceptions the services raise, and what each one means for the caller.

Our exception hierarchy::

    AnalyticsError                      retriable=False
     ├── ConfigError                    a setting is missing or invalid: fix the environment / flags
     └── DeliveryError                  the analytics endpoint did not accept a batch
          ├── TransientDeliveryError    retriable=True: 5xx, 408, 429, timeouts, connection errors
          │    └── EndpointMisconfigured  3xx, 401, 403, 404, 407: our URL or credentials are wrong
          └── PermanentDeliveryError    retriable=False: the endpoint refused these rows (other 4xx)
               └── PayloadTooLarge      413: the body is too big; smaller batches may pass

Callers branch on the ``retriable`` flag (like aiokafka's ``KafkaError.retriable``), not on lists of
types: the sender retries a batch forever while ``err.retriable`` is true, and only a non-retriable
error can lead to dead-lettering a row. ``reason`` is a short, stable label for metrics and
dead-letter headers.

Why :class:`EndpointMisconfigured` is retriable although its statuses are 4xx: a wrong token, account
or URL is refused for every row alike. Treating it as permanent would bisect every batch down to single
rows and dead-letter the whole stream; retrying keeps the rows in Kafka (and the consumer lag growing,
which is what pages an operator) until someone fixes the setting and restarts the sender.

Facts that cannot be decoded are not in this tree: they are detected at the edge by the pure
``schemas`` layer, which must not import ``services``, so their family lives in :mod:`schemas.codec`
(``FactDecodeError``: ``UndecodableFact``, ``UnsupportedSchemaVersion``, ``InvalidFact``,
``OversizedFact``, each with a ``reason`` label). The processor turns them into dead letters.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AnalyticsError",
    "ConfigError",
    "DeliveryError",
    "EndpointMisconfigured",
    "PayloadTooLarge",
    "PermanentDeliveryError",
    "TransientDeliveryError",
]


class AnalyticsError(Exception):
    """Base of every error the services raise on purpose."""

    retriable: ClassVar[bool] = False
    """True if doing the same thing again later may succeed."""

    reason: str = "error"
    """Stable, low-cardinality label for metrics and dead-letter headers."""


class ConfigError(AnalyticsError):
    """A setting is missing, malformed or inconsistent.

    Operator action: fix the environment variable or command-line flag named in the message and restart
    the service; ``python -m services.<name> --help`` lists every setting with its variable and default.
    """

    reason = "config"


# --------------------------------------------------------------------------------------------------------
# Delivery to the analytics endpoint (raised by services.sender.client)
# --------------------------------------------------------------------------------------------------------


class DeliveryError(AnalyticsError):
    """The endpoint did not accept a batch.

    Attributes:
        status: The HTTP status, or ``None`` if no response arrived (timeout, connection error).
        retry_after: Seconds the endpoint asked us to wait (``Retry-After``), or ``None``.
    """

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class TransientDeliveryError(DeliveryError):
    """Sending the same batch again later may succeed: 5xx, 408, 429, timeouts and connection errors.

    The sender retries it with capped exponential backoff, forever: rows are never dropped because the
    endpoint is unavailable; they wait in Kafka.
    """

    retriable = True
    reason = "server_error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message, status=status, retry_after=retry_after)
        if reason is not None:
            self.reason = reason


class EndpointMisconfigured(TransientDeliveryError):
    """The endpoint refused the request for a reason unrelated to its rows (3xx, 401, 403, 404, 407).

    Operator action: check SENDER_ENDPOINT_URL, SENDER_AUTH_TOKEN and SENDER_ACCOUNT_ID, then restart the
    sender. Until then it keeps retrying and no row is dead-lettered.
    """

    reason = "endpoint_misconfigured"


class PermanentDeliveryError(DeliveryError):
    """The endpoint refused the rows themselves (4xx other than 408/429 and the misconfiguration codes).

    Sending the same rows again will fail again. The sender narrows the refusal down to single rows
    (bisecting the batch) and dead-letters only those.

    Attributes:
        status: The HTTP status.
        excerpt: The start of the response body (at most about 1 KiB), for the dead-letter headers.
    """

    reason = "rejected"

    def __init__(self, message: str, *, status: int, excerpt: str = "") -> None:
        super().__init__(message, status=status)
        self.status: int = status
        self.excerpt = excerpt


class PayloadTooLarge(PermanentDeliveryError):
    """413: the request body is larger than the endpoint accepts.

    The sender splits the batch in halves and retries; a single row that is still too large is
    dead-lettered. If this happens often, lower SENDER_MAX_BATCH_BYTES below the endpoint's limit.
    """

    reason = "payload_too_large"
