"""``FactPublisher`` refuses at ``track_*`` time the facts the processor would dead-letter: same rule
(``decode_fact`` on the encoded envelope), counted by reason, reported, logged, never buffered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
import structlog
from prometheus_client import CollectorRegistry, generate_latest

from schemas import bounds
from schemas.codec import FactDecodeError, decode_fact
from services.config import KafkaSettings
from services.metrics import PublisherMetrics
from services.producer.publisher import FactPublisher

TURN = {"id": "turn-1", "status": "failed", "error": {"message": "boom", "codexErrorInfo": "badRequest"}}


@pytest.fixture
async def refusals() -> AsyncIterator[tuple[FactPublisher, list[str]]]:
    """A publisher that is never started (nothing leaves it), and the reasons its callback saw."""
    reported: list[str] = []
    publisher = FactPublisher(
        kafka=KafkaSettings(bootstrap_servers="127.0.0.1:9"),
        producer_id="app-server-1",
        max_request_size=64 * 1024,
        on_refused=reported.append,
        clock_ms=lambda: 1_000,
    )
    yield publisher, reported
    await publisher._producer.stop()


def _turn_completed(**turn: Any) -> dict[str, Any]:
    return {"method": "turn/completed", "params": {"threadId": "thread-1", "turn": {**TURN, **turn}}}


def _deep(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


HOSTILE: dict[str, tuple[str, dict[str, Any]]] = {
    "an integer over int64 in a typed field": ("invalid", _turn_completed(durationMs=2**63)),
    "an integer under int64 in a free-form field": (
        "invalid",
        _turn_completed(error={"codexErrorInfo": {"status": -(2**63) - 1}}),
    ),
    "a turn id one character too long": ("invalid", _turn_completed(id="t" * (bounds.MAX_ID_CHARS + 1))),
    "a free-form value one level too deep": (
        "too_deep",
        _turn_completed(error={"codexErrorInfo": _deep(bounds.MAX_FREE_FORM_DEPTH + 1)}),
    ),
    "a huge array in a free-form value": ("invalid", _turn_completed(error={"codexErrorInfo": [0] * 9_000})),
    "a wrong type": ("invalid", _turn_completed(startedAt="yesterday")),
}


@pytest.mark.parametrize("case", HOSTILE)
async def test_a_fact_the_processor_would_refuse_is_refused_at_track_time_by_the_same_reason(
    refusals: tuple[FactPublisher, list[str]], case: str
) -> None:
    publisher, reported = refusals
    reason, notification = HOSTILE[case]

    assert publisher.track_notification(notification) is False

    assert publisher.refused_by_reason == {reason: 1}
    assert publisher.refused == 1
    assert reported == [reason]
    assert not publisher._buffer
    # the same rule as the processor's: the envelope it would have sent is refused by decode_fact
    envelope = {"v": 1, "producer": "app-server-1", "thread_id": "thread-1", "observed_at_ms": 1_000}
    with pytest.raises(FactDecodeError) as caught:
        decode_fact(msgspec.json.encode({**envelope, "fact": {"kind": "notification", "notification": notification}}))
    assert caught.value.reason == reason


async def test_a_valid_fact_is_buffered_and_not_counted(refusals: tuple[FactPublisher, list[str]]) -> None:
    publisher, reported = refusals

    assert publisher.track_notification(_turn_completed(durationMs=bounds.INT64_MAX)) is True

    assert publisher.refused == 0 and not publisher.refused_by_reason and not reported
    assert len(publisher._buffer) == 1


async def test_a_fact_that_cannot_be_encoded_is_refused_as_unencodable(
    refusals: tuple[FactPublisher, list[str]],
) -> None:
    publisher, reported = refusals

    assert publisher.track_custom("hook_run", {"tracking": {"turn_id": "\ud800"}}, "thread-1") is False
    assert publisher.track_custom("hook_run", {"tracking": object()}, "thread-1") is False

    assert publisher.refused_by_reason == {"unencodable": 2}
    assert reported == ["unencodable", "unencodable"]
    assert not publisher._buffer


async def test_a_fact_too_large_for_one_request_is_refused_as_too_large(
    refusals: tuple[FactPublisher, list[str]],
) -> None:
    publisher, reported = refusals
    diff = {"threadId": "thread-1", "turnId": "turn-1", "diff": "+" * (64 * 1024)}

    assert publisher.track_notification({"method": "turn/diff/updated", "params": diff}) is False

    assert publisher.refused_by_reason == {"too_large": 1}
    assert reported == ["too_large"]


async def test_refusals_are_logged_once_per_reason_then_every_thousandth(
    refusals: tuple[FactPublisher, list[str]],
) -> None:
    publisher, _reported = refusals
    hostile = _turn_completed(durationMs=2**64)

    with structlog.testing.capture_logs() as logs:
        for _ in range(2_000):
            publisher.track_notification(hostile)

    refused = [entry for entry in logs if entry["event"] == "publisher_fact_refused"]
    assert [entry["count"] for entry in refused] == [1, 1_000, 2_000]
    assert refused[0]["reason"] == "invalid"
    assert "$.fact.notification.params.turn.durationMs" in refused[0]["error"]
    assert publisher.refused_by_reason == {"invalid": 2_000}


async def test_publish_encoded_publishes_bytes_as_they_are(refusals: tuple[FactPublisher, list[str]]) -> None:
    publisher, _reported = refusals

    assert publisher.publish_encoded(b"thread-1", b"{not json") is True  # poison injected on purpose

    assert publisher.refused == 0
    assert len(publisher._buffer) == 1


async def test_a_producer_id_longer_than_the_processor_reads_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="producer_id of 257 characters"):
        FactPublisher(kafka=KafkaSettings(bootstrap_servers="127.0.0.1:9"), producer_id="p" * 257)


async def test_refusals_feed_the_publisher_metrics_by_reason() -> None:
    registry = CollectorRegistry()
    metrics = PublisherMetrics(registry)
    publisher = FactPublisher(
        kafka=KafkaSettings(bootstrap_servers="127.0.0.1:9"), producer_id="app-server-1", on_refused=metrics.refused
    )

    publisher.track_notification(_turn_completed(durationMs=2**63))
    publisher.track_notification(_turn_completed(error={"codexErrorInfo": _deep(bounds.MAX_FREE_FORM_DEPTH + 1)}))
    publisher.track_notification(_turn_completed(durationMs=-(2**63) - 1))
    await publisher._producer.stop()

    exposition = generate_latest(registry).decode()
    assert 'review_analytics_publisher_facts_refused_total{reason="invalid"} 2.0' in exposition
    assert 'review_analytics_publisher_facts_refused_total{reason="too_deep"} 1.0' in exposition


@pytest.mark.parametrize(
    ("call", "args"),
    [
        ("track_request", (7, 1, {"method": "turn/start", "id": 1})),  # no params
        ("track_response", (7, 1, {"method": "thread/start", "response": {}})),  # no thread
        ("track_notification", ({"method": "turn/started", "params": None},)),
        ("track_server_response", (1, {"method": "item/commandExecution/requestApproval"})),  # no id
        ("track_subagent_thread_started", ({"parent_thread_id": "p"},)),  # no thread_id
        ("track_server_request", (7, ["not", "a", "mapping"])),
    ],
)
async def test_a_track_call_missing_what_it_reads_is_refused_as_malformed_and_never_raises(
    refusals: tuple[FactPublisher, list[str]], call: str, args: tuple[Any, ...]
) -> None:
    publisher, reasons = refusals

    assert getattr(publisher, call)(*args) is False

    assert reasons == ["malformed"]
    assert publisher.refused_by_reason["malformed"] == 1
