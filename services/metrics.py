"""Every Prometheus metric of the project, and the HTTP server that exposes them.

Each process creates one :class:`prometheus_client.CollectorRegistry` in its composition root and one
metrics object for its service (:class:`SenderMetrics` or :class:`ProcessorMetrics`, each holding the
:class:`LagMetrics` of its lag monitor; the stand-alone ``lag --serve`` has :class:`LagMetrics` alone)
registered in it. ``tests/monitoring`` collects every name from these classes to check the alert rules
and the dashboard against them.
Nothing uses the global default registry, so tests build as many independent sets as they like.

All names start with ``review_analytics_``; counters get ``_total`` appended by prometheus-client.
Labels are low-cardinality by construction: status classes, reasons, event types, partitions.

:func:`start_metrics_server` serves, on one port:

* ``GET /metrics``: the registry, in the Prometheus text format;
* ``GET /healthz``: 200 while the process is alive (liveness);
* ``GET /readyz``: 200 when the service's readiness callback returns true, else 503 (readiness); a
  callback that returns a :class:`Readiness` also gives the 503's body its reason.
"""

from __future__ import annotations

import platform
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final, NamedTuple

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from services.cli import version

__all__ = [
    "PREFIX",
    "LagMetrics",
    "MetricsServer",
    "ProcessorMetrics",
    "PublisherMetrics",
    "Readiness",
    "SenderMetrics",
    "build_info",
    "start_metrics_server",
]

PREFIX: Final = "review_analytics"

_ROW_BUCKETS: Final = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500)
_BYTE_BUCKETS: Final = (1024, 4096, 16384, 65536, 262144, 1048576, 4194304)
_LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


# --------------------------------------------------------------------------------------------------------
# Shared by both services
# --------------------------------------------------------------------------------------------------------


def build_info(registry: CollectorRegistry) -> Gauge:
    """``review_analytics_build_info{version, python_version} 1``: which build each replica runs."""
    gauge = Gauge(
        f"{PREFIX}_build_info",
        "Always 1; the labels name the running build: package version and Python version.",
        ["version", "python_version"],
        registry=registry,
    )
    gauge.labels(version(), platform.python_version()).set(1)
    return gauge


class LagMetrics:
    """What a lag monitor (:mod:`services.lag_monitor`) exports: each service runs one, and so does the
    stand-alone exporter ``lag --serve``, whose whole set this is.

    Every instance exports the same broker-side numbers: aggregate with ``max``, never ``sum``.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["group", "topic", "partition"]
        self.records = Gauge(
            f"{PREFIX}_consumer_lag_records",
            "Records not yet committed by the consumer group: last stable offset minus committed offset.",
            labels,
            registry=registry,
        )
        self.seconds = Gauge(
            f"{PREFIX}_consumer_lag_seconds",
            "Age in seconds of the oldest record the group has not finished (the first record at or after its "
            "committed offset), from the record's timestamp; 0 when nothing is left.",
            labels,
            registry=registry,
        )
        self.committed_offset = Gauge(
            f"{PREFIX}_consumer_committed_offset",
            "The group's committed offset (the next record it will read); absent before its first commit.",
            labels,
            registry=registry,
        )
        self.dlq_depth = Gauge(
            f"{PREFIX}_dlq_depth_records",
            "Offsets held by a dead-letter topic (end minus log-start offset, summed over its partitions; on a "
            "topic written in transactions the commit markers count too).",
            ["topic"],
            registry=registry,
        )
        self.last_success = Gauge(
            f"{PREFIX}_lag_monitor_last_success_timestamp_seconds",
            "Unix time of the lag monitor's last successful read of the broker (0: none yet).",
            registry=registry,
        )


# --------------------------------------------------------------------------------------------------------
# Sender (services.sender)
# --------------------------------------------------------------------------------------------------------


class SenderMetrics:
    """Metrics of the sender: HTTP requests, retries, rows delivered or dead-lettered, commits, lag."""

    def __init__(self, registry: CollectorRegistry) -> None:
        p = f"{PREFIX}_sender"
        self.requests = Counter(
            f"{p}_requests",
            "HTTP requests to the analytics endpoint, by outcome: 2xx, 3xx, 4xx, 5xx, timeout, connection_error.",
            ["status_class"],
            registry=registry,
        )
        self.retries = Counter(
            f"{p}_retries",
            "Requests that will be retried after a transient failure, by reason "
            "(server_error, throttled, timeout, connection_error, endpoint_misconfigured, ...).",
            ["reason"],
            registry=registry,
        )
        self.batch_rows = Histogram(
            f"{p}_batch_rows", "Rows per HTTP request.", buckets=_ROW_BUCKETS, registry=registry
        )
        self.batch_bytes = Histogram(
            f"{p}_batch_bytes", "Body bytes per HTTP request.", buckets=_BYTE_BUCKETS, registry=registry
        )
        self.request_latency = Histogram(
            f"{p}_request_duration_seconds",
            "Time from sending a request to its answer (or failure), in seconds.",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.rows_delivered = Counter(f"{p}_rows_delivered", "Rows the endpoint accepted (2xx).", registry=registry)
        self.rows_dead_lettered = Counter(
            f"{p}_rows_dead_lettered",
            "Rows written to the dead-letter topic, by reason (rejected, payload_too_large, malformed_record).",
            ["reason"],
            registry=registry,
        )
        self.commits = Counter(
            f"{p}_commits", "Consumer offset commits (after rows were accepted or dead-lettered).", registry=registry
        )
        self.oldest_unfinished_age = Gauge(
            f"{p}_oldest_unfinished_age_seconds",
            "Per partition: age in seconds, from its timestamp, of the oldest row fetched and not yet acknowledged "
            "(accepted by the endpoint or dead-lettered); 0 when none.",
            ["partition"],
            registry=registry,
        )
        self.lag = LagMetrics(registry)
        self.build_info = build_info(registry)


# --------------------------------------------------------------------------------------------------------
# Processor / reducer service (services.processor)
#
# Defined here so that this file stays the one place that names metrics. The processor service owns
# how and when they are updated; add new processor metrics in this class.
# --------------------------------------------------------------------------------------------------------


class ProcessorMetrics:
    """Metrics of the reducer service: facts in, rows out, dead letters, transactions, state, rebalances."""

    def __init__(self, registry: CollectorRegistry) -> None:
        p = f"{PREFIX}_processor"
        self.facts_consumed = Counter(
            f"{p}_facts_consumed", "Facts of committed transactions (reduced or dead-lettered).", registry=registry
        )
        self.events_produced = Counter(
            f"{p}_events_produced",
            "Analytics rows written to the events topic by committed transactions, by event type.",
            ["event_type"],
            registry=registry,
        )
        self.facts_dead_lettered = Counter(
            f"{p}_facts_dead_lettered",
            "Facts written to the facts dead-letter topic by committed transactions, by reason (undecodable, "
            "unsupported_version, invalid, oversized, ...).",
            ["reason"],
            registry=registry,
        )
        self.transactions = Counter(
            f"{p}_transactions",
            "Kafka transactions finished, by outcome (committed; aborted: failed or fenced, its facts are redone).",
            ["outcome"],
            registry=registry,
        )
        self.transaction_duration = Histogram(
            f"{p}_transaction_duration_seconds",
            "Time from beginning a transaction to its commit or abort, in seconds.",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.rebalances = Counter(
            f"{p}_rebalances",
            "Consumer group rebalance callbacks, by kind (assigned, revoked).",
            ["kind"],
            registry=registry,
        )
        self.restore_duration = Histogram(
            f"{p}_restore_duration_seconds",
            "Time to restore one partition's state from its changelog, in seconds.",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.state_entries = Gauge(
            f"{p}_state_entries",
            "Entries held in memory per input partition, by kind (e.g. families, connections).",
            ["partition", "kind"],
            registry=registry,
        )
        self.facts_dropped = Counter(
            f"{p}_facts_dropped",
            "Facts, or parts of the state, the reducer's rules dropped, by reason (the reducer's drop reasons: "
            "unknown ids, caps, expiry, budget and connection evictions, ...). Counted when the transaction "
            "that drops them commits.",
            ["reason"],
            registry=registry,
        )
        self.limit_hits = Counter(
            f"{p}_limit_hits",
            "Times a bound of the containment boundary was hit, by limit (a PROCESSOR_* setting or the "
            "broker's record size).",
            ["limit"],
            registry=registry,
        )
        self.state_bytes = Gauge(
            f"{p}_state_bytes",
            "Encoded size (changelog bytes) of one input partition's state.",
            ["partition"],
            registry=registry,
        )
        self.backlog_bytes = Gauge(
            f"{p}_backlog_bytes",
            "Value bytes held per input partition, fetched but not yet committed (transaction in flight plus backlog).",
            ["partition"],
            registry=registry,
        )
        self.fetch_pauses = Counter(
            f"{p}_fetch_pauses",
            "Times a partition's fetching was paused, by reason (backlog_records: PROCESSOR_MAX_BATCH_RECORDS "
            "waiting; backlog_bytes: PROCESSOR_MAX_BACKLOG_BYTES held).",
            ["reason"],
            registry=registry,
        )
        self.partition_stalled = Gauge(
            f"{p}_partition_stalled",
            "1 while an owned partition has lag and has not committed for PROCESSOR_STALL_AFTER_S, else 0.",
            ["partition"],
            registry=registry,
        )
        self.seconds_since_commit = Gauge(
            f"{p}_seconds_since_commit",
            "Seconds since an owned partition last committed (since it was taken, before its first commit).",
            ["partition"],
            registry=registry,
        )
        self.oldest_unfinished_age = Gauge(
            f"{p}_oldest_unfinished_age_seconds",
            "Per owned partition: age in seconds, from its timestamp, of the oldest fact fetched and not yet "
            "committed (the transaction in flight, else the head of the backlog); 0 when none.",
            ["partition"],
            registry=registry,
        )
        self.lag = LagMetrics(registry)
        self.build_info = build_info(registry)


# --------------------------------------------------------------------------------------------------------
# Publisher (services.producer.FactPublisher, embedded in an app-server)
# --------------------------------------------------------------------------------------------------------


class PublisherMetrics:
    """Metrics of a :class:`~services.producer.FactPublisher`, for the app-server that embeds it.

    The app-server registers them in its own registry and wires the publisher's callbacks:
    ``FactPublisher(..., on_overflow=metrics.buffer_overflows.inc, on_refused=metrics.refused)``. The
    reducer never sees these facts, so it cannot count them.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.buffer_overflows = Counter(
            f"{PREFIX}_publisher_buffer_overflows",
            "Facts FactPublisher refused because its in-memory buffer was full (track_* returned False): "
            "facts lost at the source.",
            registry=registry,
        )
        self.facts_refused = Counter(
            f"{PREFIX}_publisher_facts_refused",
            "Facts FactPublisher refused at track_* time because the reducer would refuse them, by reason: "
            "too_large, unencodable, or the decode reason (invalid, too_deep, ...) of the dead letter.",
            ["reason"],
            registry=registry,
        )

    def refused(self, reason: str) -> None:
        """The ``on_refused`` callback of :class:`~services.producer.FactPublisher`."""
        self.facts_refused.labels(reason).inc()


# --------------------------------------------------------------------------------------------------------
# HTTP exposition
# --------------------------------------------------------------------------------------------------------


class Readiness(NamedTuple):
    """A readiness verdict with its reason (the body of a 503 from ``/readyz``)."""

    ready: bool
    detail: str = ""


class MetricsServer:
    """A running ``/metrics`` + ``/healthz`` + ``/readyz`` server on a daemon thread."""

    def __init__(self, server: ThreadingHTTPServer) -> None:
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="metrics-http", daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0)."""
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        """The address bound: ``0.0.0.0`` (every interface) or e.g. ``127.0.0.1`` (``*_METRICS_HOST``)."""
        return str(self._server.server_address[0])

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_metrics_server(
    port: int,
    registry: CollectorRegistry,
    *,
    ready: Callable[[], bool | Readiness] = lambda: True,
    host: str = "0.0.0.0",  # all interfaces: scraped from outside the pod; *_METRICS_HOST=127.0.0.1 keeps it local
) -> MetricsServer:
    """Serve ``registry`` on ``host:port`` (port 0: any free port); ``ready()`` answers ``/readyz``.

    ``ready`` is called on the server's thread: it must be cheap and thread-safe (reading a flag is).
    A :class:`Readiness` answer's ``detail`` becomes the body of a 503 (``not ready: <detail>``).
    """

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._answer(HTTPStatus.OK, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._answer(HTTPStatus.OK, b"ok\n")
            elif path == "/readyz":
                try:
                    verdict = ready()
                except Exception:  # a failing readiness check means "not ready", never a crash
                    verdict = False
                if not isinstance(verdict, Readiness):
                    verdict = Readiness(bool(verdict))
                if verdict.ready:
                    self._answer(HTTPStatus.OK, b"ready\n")
                else:
                    reason = f": {verdict.detail}" if verdict.detail else ""
                    self._answer(HTTPStatus.SERVICE_UNAVAILABLE, f"not ready{reason}\n".encode())
            else:
                self._answer(HTTPStatus.NOT_FOUND, b"try /metrics, /healthz or /readyz\n")

        def _answer(self, status: HTTPStatus, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Scrapes are not worth a log line each."""

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return MetricsServer(server)
