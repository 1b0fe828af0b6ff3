"""Sender metrics: the names dashboards rely on, and the /metrics, /healthz, /readyz server."""

from __future__ import annotations

import httpx
from prometheus_client import CollectorRegistry, generate_latest

from services.metrics import ProcessorMetrics, PublisherMetrics, Readiness, SenderMetrics, start_metrics_server


def test_sender_metric_names_are_prefixed_and_stable() -> None:
    registry = CollectorRegistry()
    metrics = SenderMetrics(registry)
    metrics.requests.labels("2xx").inc()
    metrics.retries.labels("timeout").inc()
    metrics.batch_rows.observe(3)
    metrics.batch_bytes.observe(300)
    metrics.request_latency.observe(0.01)
    metrics.rows_delivered.inc(3)
    metrics.rows_dead_lettered.labels("rejected").inc()
    metrics.commits.inc()
    metrics.lag.records.labels("g", "events", "0").set(7)

    text = generate_latest(registry).decode()

    for line in [
        'review_analytics_sender_requests_total{status_class="2xx"} 1.0',
        'review_analytics_sender_retries_total{reason="timeout"} 1.0',
        "review_analytics_sender_batch_rows_count 1.0",
        "review_analytics_sender_batch_bytes_sum 300.0",
        "review_analytics_sender_request_duration_seconds_count 1.0",
        "review_analytics_sender_rows_delivered_total 3.0",
        'review_analytics_sender_rows_dead_lettered_total{reason="rejected"} 1.0',
        "review_analytics_sender_commits_total 1.0",
        'review_analytics_consumer_lag_records{group="g",partition="0",topic="events"} 7.0',
    ]:
        assert line in text


def test_each_registry_holds_an_independent_set_of_metrics() -> None:
    first, second = CollectorRegistry(), CollectorRegistry()
    SenderMetrics(first).commits.inc()
    SenderMetrics(second)
    ProcessorMetrics(CollectorRegistry())

    assert "review_analytics_sender_commits_total 1.0" in generate_latest(first).decode()
    assert "review_analytics_sender_commits_total 0.0" in generate_latest(second).decode()


def test_metrics_server_serves_metrics_liveness_and_readiness_from_the_callback() -> None:
    registry = CollectorRegistry()
    SenderMetrics(registry).rows_delivered.inc(2)
    ready = False
    server = start_metrics_server(0, registry, ready=lambda: ready, host="127.0.0.1")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}") as client:
            metrics = client.get("/metrics")
            assert metrics.status_code == 200
            assert "review_analytics_sender_rows_delivered_total 2.0" in metrics.text
            assert client.get("/healthz").status_code == 200
            assert client.get("/readyz").status_code == 503
            ready = True
            assert client.get("/readyz").status_code == 200
            assert client.get("/other").status_code == 404
    finally:
        server.close()


def test_a_failing_readiness_callback_means_not_ready() -> None:
    def broken() -> bool:
        raise RuntimeError("cannot tell")

    server = start_metrics_server(0, CollectorRegistry(), ready=broken, host="127.0.0.1")
    try:
        assert httpx.get(f"http://127.0.0.1:{server.port}/readyz").status_code == 503
    finally:
        server.close()


def test_a_readiness_verdict_with_a_reason_answers_503_with_that_reason() -> None:
    verdict = Readiness(False, "partitions stalled: 0, 3")
    server = start_metrics_server(0, CollectorRegistry(), ready=lambda: verdict, host="127.0.0.1")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}") as client:
            answer = client.get("/readyz")
            assert (answer.status_code, answer.text) == (503, "not ready: partitions stalled: 0, 3\n")
            verdict = Readiness(True)
            assert client.get("/readyz").status_code == 200
    finally:
        server.close()


def test_the_overflow_counter_is_the_publishers_and_the_processor_no_longer_exports_one() -> None:
    registry = CollectorRegistry()
    PublisherMetrics(registry).buffer_overflows.inc(2)
    assert "review_analytics_publisher_buffer_overflows_total 2.0" in generate_latest(registry).decode()
    assert "buffer_overflows" not in generate_latest(_processor_registry()).decode()


def _processor_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    ProcessorMetrics(registry)
    return registry
