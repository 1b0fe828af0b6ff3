"""One HTTP request to the analytics endpoint, its outcome as a typed error, and when to try again.

* :class:`EndpointClient` POSTs a ready-made body and turns every outcome other than 2xx into a
  :class:`~services.errors.DeliveryError` subclass (:func:`error_for_response` is the pure rule).
  It does not retry: the sender's loop decides, from ``err.retriable``.
* :class:`RetryPolicy` is the pure "how long until the next attempt": capped exponential backoff with
  full jitter, or the endpoint's ``Retry-After`` (capped too) when it sent one.
* :func:`idempotency_key` names a batch by its rows, so a receiver can drop a batch it already accepted.

Status classification (``error_for_response``)::

    2xx                         accepted
    408, 429, 5xx               TransientDeliveryError   retry with backoff (honour Retry-After)
    3xx, 401, 403, 404, 407     EndpointMisconfigured    retry; an operator must fix URL or credentials
    413                         PayloadTooLarge          split the batch
    other 4xx (400, 422, ...)   PermanentDeliveryError   narrow down to the bad rows, dead-letter them
    timeout, connection error   TransientDeliveryError   retry with backoff
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import random
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final

import httpx
import msgspec

from schemas.http import EVENTS_PATH
from services.config import Secret, SenderConfig
from services.errors import (
    ConfigError,
    DeliveryError,
    EndpointMisconfigured,
    PayloadTooLarge,
    PermanentDeliveryError,
    TransientDeliveryError,
)

__all__ = [
    "EXCERPT_LIMIT",
    "EndpointClient",
    "RetryPolicy",
    "error_for_response",
    "excerpt",
    "idempotency_key",
    "parse_retry_after",
]

EXCERPT_LIMIT: Final = 1024
"""Most bytes of a response body kept for logs and dead-letter headers."""

_MISCONFIGURED: Final = frozenset({401, 403, 404, 407})
_MAX_EXPONENT: Final = 62  # 2**62 * base is far beyond any cap; keeps the float finite forever


def idempotency_key(row_ids: Iterable[str]) -> str:
    """Hex SHA-256 of the rows' ids joined by newlines: the same rows give the same key, whoever sends.

    >>> idempotency_key(["facts-0-1-0", "facts-0-1-1"]) == idempotency_key(["facts-0-1-0", "facts-0-1-1"])
    True
    """
    return hashlib.sha256("\n".join(row_ids).encode()).hexdigest()


def excerpt(body: bytes, limit: int = EXCERPT_LIMIT) -> str:
    """The start of ``body`` as text of at most ``limit`` UTF-8 bytes, never ending in half a character.

    Invalid bytes become U+FFFD; a character cut by the limit is left out rather than mangled.
    """
    text = codecs.getincrementaldecoder("utf-8")("replace").decode(body[:limit], final=False)
    encoded = text.encode()
    if len(encoded) > limit:  # replacement characters take 3 bytes each
        text = encoded[:limit].decode("utf-8", "ignore")
    return text


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delay-seconds or an HTTP date; ``None`` if absent/invalid.

    A date in the past means "now" (0). ``now`` must be timezone-aware.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - now).total_seconds())
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN, inf
        return None
    return max(0.0, seconds)


def error_for_response(status: int, body: bytes, retry_after: str | None, now: datetime) -> DeliveryError | None:
    """The error a response with ``status`` means, or ``None`` for 2xx (the rule in the module docstring)."""
    if 200 <= status < 300:
        return None
    text = excerpt(body)
    wait = parse_retry_after(retry_after, now)
    if status in (408, 429) or status >= 500:
        reason = "throttled" if status == 429 else "request_timeout" if status == 408 else "server_error"
        return TransientDeliveryError(
            f"endpoint answered {status}; the batch will be retried: {text[:200]}",
            status=status,
            retry_after=wait,
            reason=reason,
        )
    if status < 400 or status in _MISCONFIGURED:
        return EndpointMisconfigured(
            f"endpoint answered {status} to every batch: check SENDER_ENDPOINT_URL, SENDER_AUTH_TOKEN and "
            f"SENDER_ACCOUNT_ID, then restart the sender; rows wait in Kafka meanwhile: {text[:200]}",
            status=status,
            retry_after=wait,
        )
    if status == 413:
        return PayloadTooLarge(
            f"endpoint answered 413 (payload too large); the batch will be split: {text[:200]}",
            status=status,
            excerpt=text,
        )
    return PermanentDeliveryError(
        f"endpoint refused the batch with {status}; the refused rows will be dead-lettered: {text[:200]}",
        status=status,
        excerpt=text,
    )


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """How long to wait before attempt ``n + 1`` of a batch that failed transiently.

    Full jitter (AWS architecture blog, "Exponential Backoff And Jitter"): uniform in
    ``[0, min(cap, base * 2**(attempt - 1))]``, which spreads many senders' retries apart. A
    ``Retry-After`` from the endpoint wins, capped at ``retry_after_cap_s``. There is no maximum number
    of attempts: rows are kept, not dropped, while the endpoint is down.
    """

    base_s: float = 0.2
    cap_s: float = 30.0
    retry_after_cap_s: float = 300.0

    def next_delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to sleep after failed attempt number ``attempt`` (1 for the first failure).

        Pure apart from drawing one number from ``rng``; tests pass a seeded ``random.Random``.
        """
        if attempt < 1:
            raise ValueError(f"attempt counts from 1, got {attempt}")
        if retry_after is not None:
            return min(max(0.0, retry_after), self.retry_after_cap_s)
        ceiling = min(self.cap_s, self.base_s * 2.0 ** min(attempt - 1, _MAX_EXPONENT))
        return rng.uniform(0.0, ceiling)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class EndpointClient:
    """POSTs request bodies to ``<base_url>/codex/analytics-events/events``; raises typed errors.

    The ``httpx.AsyncClient`` is injected (HTTP/1.1 keep-alive, TLS verification and connection limits
    are the composition root's choice); unit tests pass one over ``httpx.MockTransport``.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        auth_token: Secret | None = None,
        account_id: str | None = None,
        timeout_s: float = 10.0,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._http = http
        self._url = base_url.rstrip("/") + EVENTS_PATH
        # Parsed once: httpx parses a string URL on every request (~15 us). A URL httpx cannot parse stays a
        # string, so the request fails exactly as it always did.
        self._request_url: httpx.URL | str = self._url
        with contextlib.suppress(httpx.InvalidURL):
            self._request_url = httpx.URL(self._url)
        self._auth_token = auth_token
        self._account_id = account_id
        self._timeout = httpx.Timeout(timeout_s)
        self._now = now

    @classmethod
    def for_config(cls, http: httpx.AsyncClient, config: SenderConfig) -> EndpointClient:
        """The client the sender's settings describe (URL, token, account id, timeout), over ``http``."""
        return cls(
            http,
            base_url=config.endpoint_url,
            auth_token=config.auth_token,
            account_id=config.account_id,
            timeout_s=config.request_timeout_s,
        )

    @property
    def url(self) -> str:
        """Where batches go."""
        return self._url

    async def post_batch(self, body: bytes, idempotency_key: str) -> int:
        """Send one batch; return the (2xx) status.

        Raises:
            TransientDeliveryError: timeout, connection error, 408, 429, 5xx (and
                :class:`~services.errors.EndpointMisconfigured` for 3xx/401/403/404/407).
            PermanentDeliveryError: another 4xx (:class:`~services.errors.PayloadTooLarge` for 413).
            ConfigError: the URL cannot be used at all (e.g. an unsupported scheme).
        """
        headers = {"Content-Type": "application/json", "Idempotency-Key": idempotency_key}
        if self._auth_token is not None:
            headers["Authorization"] = "Bearer " + self._auth_token.reveal()
        if self._account_id is not None:
            headers["ChatGPT-Account-ID"] = self._account_id
        try:
            response = await self._http.post(self._request_url, content=body, headers=headers, timeout=self._timeout)
        except httpx.TimeoutException as exc:
            raise TransientDeliveryError(
                f"no answer from {self._url} within the request timeout ({type(exc).__name__}); the batch will be "
                "retried (raise SENDER_REQUEST_TIMEOUT_S if the endpoint is just slow)",
                reason="timeout",
            ) from exc
        except httpx.UnsupportedProtocol as exc:
            raise ConfigError(f"SENDER_ENDPOINT_URL={self._url!r} cannot be used: {exc}") from exc
        except httpx.TransportError as exc:
            raise TransientDeliveryError(
                f"could not talk to {self._url} ({type(exc).__name__}: {exc}); the batch will be retried",
                reason="connection_error",
            ) from exc
        status = response.status_code
        if 200 <= status < 300:  # accepted: no Retry-After to read, no clock to consult
            return status
        error = error_for_response(status, response.content, response.headers.get("Retry-After"), self._now())
        if error is not None:
            raise error
        return status
