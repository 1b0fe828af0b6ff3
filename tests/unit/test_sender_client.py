"""``services.sender.client``: backoff, Retry-After, status classification and the request it sends.

HTTP here goes through ``httpx.MockTransport`` (the real client, a fake network); the sender's behaviour
against a real server is in ``tests/integration``.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from schemas.http import EVENTS_PATH
from services.config import Secret
from services.errors import (
    AnalyticsError,
    ConfigError,
    DeliveryError,
    EndpointMisconfigured,
    PayloadTooLarge,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from services.sender.client import (
    EXCERPT_LIMIT,
    EndpointClient,
    RetryPolicy,
    error_for_response,
    excerpt,
    idempotency_key,
    parse_retry_after,
)

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
BODY = b'{"events":[{"event_type":"codex_review_event","event_params":{}}]}'


# --------------------------------------------------------------------------------------------------------
# RetryPolicy.next_delay
# --------------------------------------------------------------------------------------------------------


def test_backoff_is_full_jitter_under_an_exponential_ceiling() -> None:
    policy = RetryPolicy(base_s=0.5, cap_s=100.0)
    rng = random.Random(1)

    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (6, 16.0)]:
        delays = [policy.next_delay(attempt, None, rng) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # spread over the whole range, not clustered at the bottom


def test_backoff_never_exceeds_the_cap_even_after_thousands_of_attempts() -> None:
    policy = RetryPolicy(base_s=0.2, cap_s=30.0)
    rng = random.Random(2)

    delays = [policy.next_delay(attempt, None, rng) for attempt in (10, 100, 1100, 10**9)]

    assert all(0.0 <= d <= 30.0 for d in delays)


def test_backoff_is_deterministic_for_a_seeded_rng() -> None:
    policy = RetryPolicy()
    first = [policy.next_delay(n, None, random.Random(42)) for n in range(1, 6)]
    again = [policy.next_delay(n, None, random.Random(42)) for n in range(1, 6)]
    assert first == again


def test_retry_after_wins_over_backoff_and_is_capped() -> None:
    policy = RetryPolicy(base_s=0.2, cap_s=1.0, retry_after_cap_s=60.0)
    rng = random.Random(3)

    assert policy.next_delay(1, 5.0, rng) == 5.0  # longer than the backoff cap: the server knows best
    assert policy.next_delay(9, 0.0, rng) == 0.0
    assert policy.next_delay(1, 3600.0, rng) == 60.0


def test_attempts_count_from_one() -> None:
    with pytest.raises(ValueError, match="attempt counts from 1"):
        RetryPolicy().next_delay(0, None, random.Random())


# --------------------------------------------------------------------------------------------------------
# Retry-After
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 3 ", 3.0),
        ("1.5", 1.5),
        ("0", 0.0),
        ("-5", 0.0),
        (format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0),
        (format_datetime(NOW - timedelta(seconds=90), usegmt=True), 0.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_retry_after_is_read_as_seconds_or_http_date(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW) == seconds


# --------------------------------------------------------------------------------------------------------
# Status classification
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_2xx_is_accepted(status: int) -> None:
    assert error_for_response(status, b"", None, NOW) is None


@pytest.mark.parametrize(
    ("status", "reason"),
    [(500, "server_error"), (502, "server_error"), (503, "server_error"), (504, "server_error"),
     (408, "request_timeout"), (429, "throttled")],
)  # fmt: skip
def test_5xx_408_and_429_are_transient_and_retriable(status: int, reason: str) -> None:
    error = error_for_response(status, b"busy", "4", NOW)

    assert isinstance(error, TransientDeliveryError)
    assert error.retriable
    assert (error.status, error.retry_after, error.reason) == (status, 4.0, reason)


@pytest.mark.parametrize("status", [301, 302, 307, 401, 403, 404, 407])
def test_misconfiguration_statuses_are_retried_not_dead_lettered(status: int) -> None:
    error = error_for_response(status, b"", None, NOW)

    assert isinstance(error, EndpointMisconfigured)
    assert error.retriable
    assert "SENDER_AUTH_TOKEN" in str(error)


@pytest.mark.parametrize("status", [400, 409, 410, 422, 451])
def test_other_4xx_are_permanent_with_status_and_excerpt(status: int) -> None:
    error = error_for_response(status, b'{"error":"bad row"}', None, NOW)

    assert type(error) is PermanentDeliveryError
    assert not error.retriable
    assert (error.status, error.excerpt, error.reason) == (status, '{"error":"bad row"}', "rejected")


def test_413_is_payload_too_large_a_permanent_error_of_its_own() -> None:
    error = error_for_response(413, b"too big", None, NOW)

    assert isinstance(error, PayloadTooLarge)
    assert isinstance(error, PermanentDeliveryError)
    assert not error.retriable
    assert error.reason == "payload_too_large"


def test_every_error_is_an_analytics_error_with_a_retriable_flag() -> None:
    assert issubclass(DeliveryError, AnalyticsError)
    assert not ConfigError.retriable
    assert TransientDeliveryError.retriable and EndpointMisconfigured.retriable
    assert not PermanentDeliveryError.retriable and not PayloadTooLarge.retriable


def test_excerpt_keeps_at_most_1_kib_and_never_half_a_character() -> None:
    body = ("é" * 2000).encode()  # two bytes per character

    text = excerpt(body)

    assert len(text.encode()) <= EXCERPT_LIMIT
    assert set(text) == {"é"}
    assert len(excerpt(b"\xff" * 5000).encode()) <= EXCERPT_LIMIT
    assert excerpt(b"short") == "short"


# --------------------------------------------------------------------------------------------------------
# EndpointClient over httpx.MockTransport
# --------------------------------------------------------------------------------------------------------


def _client(
    handler: Callable[[httpx.Request], httpx.Response],
    *,
    token: str | None = "tok-123",
    account_id: str | None = "acct-9",
) -> tuple[EndpointClient, httpx.AsyncClient]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    client = EndpointClient(
        http,
        base_url="https://analytics.example.com/",
        auth_token=None if token is None else Secret(token),
        account_id=account_id,
        timeout_s=2.0,
        now=lambda: NOW,
    )
    return client, http


async def test_post_batch_sends_the_body_unchanged_with_auth_account_and_idempotency_headers() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202)

    client, http = _client(handler)
    async with http:
        status = await client.post_batch(BODY, "key-1")

    [request] = seen
    assert status == 202
    assert request.method == "POST"
    assert str(request.url) == "https://analytics.example.com" + EVENTS_PATH
    assert request.content == BODY
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == "Bearer tok-123"
    assert request.headers["ChatGPT-Account-ID"] == "acct-9"
    assert request.headers["Idempotency-Key"] == "key-1"


async def test_post_batch_without_token_or_account_sends_neither_header() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    client, http = _client(handler, token=None, account_id=None)
    async with http:
        await client.post_batch(BODY, "k")

    assert "Authorization" not in seen[0].headers
    assert "ChatGPT-Account-ID" not in seen[0].headers


async def test_post_batch_raises_the_classified_error_with_retry_after() -> None:
    client, http = _client(lambda _: httpx.Response(503, headers={"Retry-After": "12"}, text="maintenance"))
    async with http:
        with pytest.raises(TransientDeliveryError) as caught:
            await client.post_batch(BODY, "k")

    assert (caught.value.status, caught.value.retry_after) == (503, 12.0)


async def test_post_batch_raises_permanent_error_with_response_excerpt() -> None:
    client, http = _client(lambda _: httpx.Response(422, text="event_params.thread_id: required"))
    async with http:
        with pytest.raises(PermanentDeliveryError) as caught:
            await client.post_batch(BODY, "k")

    assert caught.value.status == 422
    assert caught.value.excerpt == "event_params.thread_id: required"


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (httpx.ReadTimeout("slow"), "timeout"),
        (httpx.ConnectTimeout("slow"), "timeout"),
        (httpx.ConnectError("refused"), "connection_error"),
        (httpx.ReadError("reset"), "connection_error"),
        (httpx.RemoteProtocolError("closed"), "connection_error"),
    ],
)
async def test_transport_failures_are_transient(failure: httpx.TransportError, reason: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise failure

    client, http = _client(handler)
    async with http:
        with pytest.raises(TransientDeliveryError) as caught:
            await client.post_batch(BODY, "k")

    assert caught.value.status is None
    assert caught.value.reason == reason
    assert caught.value.retriable


async def test_an_unusable_url_scheme_is_a_config_error() -> None:
    async with httpx.AsyncClient() as http:
        client = EndpointClient(http, base_url="ftp://analytics.example.com")
        with pytest.raises(ConfigError, match="SENDER_ENDPOINT_URL"):
            await client.post_batch(BODY, "k")


async def test_the_token_appears_in_no_error_message() -> None:
    for status in (400, 401, 413, 503):
        client, http = _client(lambda _, s=status: httpx.Response(s, text="nope"), token="tok-SECRET")  # type: ignore[misc]
        async with http:
            with pytest.raises(DeliveryError) as caught:
                await client.post_batch(BODY, "k")
        assert "tok-SECRET" not in str(caught.value)
        assert "tok-SECRET" not in repr(caught.value)


# --------------------------------------------------------------------------------------------------------
# Idempotency key
# --------------------------------------------------------------------------------------------------------


def test_idempotency_key_is_the_sha256_of_the_row_ids_joined_by_newlines() -> None:
    ids = ["facts-3-1207-0", "facts-3-1207-1", "facts-3-1300-0"]

    assert idempotency_key(ids) == hashlib.sha256("\n".join(ids).encode()).hexdigest()
    assert idempotency_key(iter(ids)) == idempotency_key(ids)


def test_idempotency_key_changes_with_membership_and_order() -> None:
    assert idempotency_key(["a", "b"]) != idempotency_key(["b", "a"])
    assert idempotency_key(["a", "b"]) != idempotency_key(["a"])
    assert idempotency_key(["a,b"]) != idempotency_key(["a", "b"])
