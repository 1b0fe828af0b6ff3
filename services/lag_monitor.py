"""A background task that exports consumer lag, computed from the broker, as Prometheus gauges.

Any service starts one in its composition root, and ``lag --serve`` runs one on its own::

    monitor = start_lag_monitor(config.kafka, {config.group_id: [config.facts_topic]}, metrics.lag,
                                dlq_topics=["facts.dlq"])
    ...
    monitor.cancel()            # on shutdown; awaiting it afterwards is optional

Every ``interval_s`` it reads, for each group and each partition of its topics, the last stable offset,
the group's committed offset and the timestamp of the first record not finished
(:class:`services.lag.LagReader`), and the depth of each dead-letter topic, and sets the gauges of
:class:`services.metrics.LagMetrics`: lag in records and in seconds, committed offset, DLQ depth, and the
time of the last successful read. Because the numbers come from the broker and not from the consumer's
own position, every replica of a group exports the same, complete picture (including partitions owned
by another replica, or by nobody): aggregate with ``max`` across instances, not ``sum``.

A failed round (broker unreachable, coordinator moving) is logged as ``lag_monitor_failed`` and retried at
the next tick; the gauges keep their last values meanwhile, and the last-success time shows how old they
are. Partitions that disappear from the answer (e.g. a topic deleted) are removed from the gauges.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Final

import structlog
from aiokafka.errors import KafkaError
from prometheus_client import Gauge

from services.config import KafkaSettings
from services.lag import GroupLag, LagReader
from services.metrics import LagMetrics

__all__ = ["DEFAULT_INTERVAL_S", "export_dlq_depths", "export_lag", "run_lag_monitor", "start_lag_monitor"]

DEFAULT_INTERVAL_S: Final = 15.0
CLOSE_TIMEOUT_S: Final = 10.0
"""How long stopping waits for the lag clients to close before it moves on (logged as a warning)."""

log = structlog.get_logger("lag_monitor")

_LabelSet = tuple[str, str, str]


def export_lag(
    metrics: LagMetrics, groups: Sequence[GroupLag], previous: set[_LabelSet] | None = None
) -> set[_LabelSet]:
    """Set the per-partition gauges from ``groups``; remove label sets in ``previous`` that are gone.

    Returns the label sets set. A partition whose age could not be read keeps its previous age; one that
    never committed has no committed offset."""
    current: set[_LabelSet] = set()
    for group in groups:
        for p in group.partitions:
            labels = (p.group, p.topic, str(p.partition))
            metrics.records.labels(*labels).set(p.lag)
            if p.age_s is not None:
                metrics.seconds.labels(*labels).set(p.age_s)
            if p.committed is not None:
                metrics.committed_offset.labels(*labels).set(p.committed)
            current.add(labels)
    for stale in (previous or set()) - current:
        for gauge in (metrics.records, metrics.seconds, metrics.committed_offset):
            _remove(gauge, stale)
    return current


def export_dlq_depths(metrics: LagMetrics, depths: Mapping[str, int]) -> None:
    """Set the DLQ depth of each topic read (a topic missing from ``depths`` keeps its last value)."""
    for topic, depth in depths.items():
        metrics.dlq_depth.labels(topic=topic).set(depth)


def _remove(gauge: Gauge, labels: tuple[str, ...]) -> None:
    with contextlib.suppress(KeyError):
        gauge.remove(*labels)


async def run_lag_monitor(
    kafka: KafkaSettings,
    groups: Mapping[str, Sequence[str]],
    metrics: LagMetrics,
    interval_s: float = DEFAULT_INTERVAL_S,
    *,
    dlq_topics: Sequence[str] = (),
    client_id: str = "review-analytics-lag-monitor",
    clock: Callable[[], float] = time.time,
) -> None:
    """Export lag every ``interval_s`` seconds until cancelled (the body of :func:`start_lag_monitor`)."""
    reader: LagReader | None = None
    exported: set[_LabelSet] = set()
    try:
        while True:
            try:
                if reader is None:
                    candidate = LagReader(kafka, client_id=client_id)
                    await candidate.start()
                    reader = candidate
                result = await reader.read(groups)
                depths = await reader.dlq_depths(dlq_topics) if dlq_topics else {}
                exported = export_lag(metrics, result, exported)
                export_dlq_depths(metrics, depths)
                metrics.last_success.set(clock())
                log.debug("lag_exported", groups={g.group: g.total for g in result})
            except (KafkaError, OSError, TimeoutError) as error:
                log.warning("lag_monitor_failed", error=repr(error), retry_in_s=interval_s)
                if reader is not None:
                    await _close_quietly(reader)
                    reader = None  # reconnect next round: the clients may be in a bad state
            await asyncio.sleep(interval_s)
    finally:
        if reader is not None:
            await _close_quietly(reader)


async def _close_quietly(reader: LagReader) -> None:
    """Close ``reader``; give up after :data:`CLOSE_TIMEOUT_S` so that a stuck client never holds up the
    service's shutdown (the task is left to the loop, which the stopping process closes anyway)."""
    closing = asyncio.ensure_future(reader.close())
    done, _ = await asyncio.wait({closing}, timeout=CLOSE_TIMEOUT_S)
    if not done:
        log.warning("lag_monitor_close_timed_out", timeout_s=CLOSE_TIMEOUT_S)
        return
    error = closing.exception()
    if isinstance(error, (KafkaError, OSError, TimeoutError)):
        log.debug("lag_monitor_close_failed", error=repr(error))
    elif error is not None:
        raise error


def start_lag_monitor(
    kafka: KafkaSettings,
    groups: Mapping[str, Sequence[str]],
    metrics: LagMetrics,
    interval_s: float = DEFAULT_INTERVAL_S,
    *,
    dlq_topics: Sequence[str] = (),
) -> asyncio.Task[None]:
    """Start :func:`run_lag_monitor` on the running loop; cancel the returned task to stop it.

    Args:
        kafka: Connection settings (every Kafka client is built from :meth:`KafkaSettings.client_kwargs`).
        groups: ``{group id: [topic, ...]}``, e.g. ``{config.group_id: [config.facts_topic]}``.
        metrics: The service's :class:`~services.metrics.LagMetrics` (``metrics.lag``).
        interval_s: Seconds between two rounds; the first round starts at once.
        dlq_topics: Dead-letter topics whose depth to export too.
    """
    if interval_s <= 0:
        raise ValueError(f"interval_s must be positive, got {interval_s}")
    frozen = {group: list(topics) for group, topics in groups.items()}
    return asyncio.get_running_loop().create_task(
        run_lag_monitor(kafka, frozen, metrics, interval_s, dlq_topics=list(dlq_topics)), name="lag-monitor"
    )
