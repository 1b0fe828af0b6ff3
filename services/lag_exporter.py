"""``lag --serve PORT``: a stand-alone exporter of consumer lag and dead-letter depths.

The services export lag themselves (:mod:`services.lag_monitor`), but only while they run: when every
pod of a group is gone, so is its lag series, and the lag alerts go quiet exactly when they matter. This
exporter runs apart from the consumers (its own Deployment, or the ``lag-exporter`` compose service) and
reads the same numbers from the broker, so the lag, in records and in seconds, of a group with no live
member stays measurable, and so do the depths of both dead-letter topics.

It serves :class:`services.metrics.LagMetrics` on ``/metrics``, ``/healthz`` (alive) and ``/readyz``
(200 once a read of the broker succeeded within the last three intervals). SIGTERM or SIGINT stops it
(exit 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Mapping, Sequence

import structlog
from prometheus_client import CollectorRegistry

from schemas.topics import dead_letter_topic
from services.config import KafkaSettings, ProcessorConfig, SenderConfig, load_config
from services.lag_monitor import DEFAULT_INTERVAL_S, start_lag_monitor
from services.metrics import LagMetrics, Readiness, start_metrics_server

__all__ = ["DEFAULT_INTERVAL_S", "STALE_AFTER_INTERVALS", "default_dlq_topics", "serve"]

STALE_AFTER_INTERVALS = 3
"""``/readyz`` answers 503 when the last successful read is older than this many intervals."""

log = structlog.get_logger("lag_exporter")


def default_dlq_topics(env: Mapping[str, str]) -> list[str]:
    """The dead-letter topics of the pipeline: the reducer's (``<PROCESSOR_FACTS_TOPIC>.dlq``) and
    ``SENDER_DLQ_TOPIC``."""
    facts_dlq = dead_letter_topic(load_config(ProcessorConfig, env=env).facts_topic)
    sender_dlq = load_config(SenderConfig, env=env).dlq_topic
    return list(dict.fromkeys([facts_dlq, sender_dlq]))


async def serve(
    kafka: KafkaSettings,
    groups: Mapping[str, Sequence[str]],
    dlq_topics: Sequence[str],
    *,
    port: int,
    interval_s: float = DEFAULT_INTERVAL_S,
    host: str = "0.0.0.0",  # all interfaces: scraped from outside the pod
) -> int:
    """Export until SIGTERM/SIGINT; returns the exit code (0)."""
    registry = CollectorRegistry()
    metrics = LagMetrics(registry)
    (last_success,) = (family.name for family in metrics.last_success.describe())

    def readiness() -> Readiness:
        window = STALE_AFTER_INTERVALS * interval_s
        if time.time() - (registry.get_sample_value(last_success) or 0.0) <= window:
            return Readiness(True)
        return Readiness(False, f"no successful read of the broker in the last {window:g} s")

    server = start_metrics_server(port, registry, ready=readiness, host=host)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    monitor = start_lag_monitor(kafka, groups, metrics, interval_s, dlq_topics=dlq_topics)
    log.info("lag_exporter_started", port=server.port, groups=dict(groups), dlq_topics=list(dlq_topics))
    stopped = loop.create_task(stop.wait())
    try:
        await asyncio.wait([stopped, monitor], return_when=asyncio.FIRST_COMPLETED)
        if monitor.done():
            monitor.result()  # an unexpected error of the monitor ends the exporter (and is raised here)
    finally:
        stopped.cancel()
        monitor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await monitor
        server.close()
        log.info("lag_exporter_stopped")
    return 0
