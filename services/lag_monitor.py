"""A background task that exports consumer lag, computed from the broker, as a Prometheus gauge.

Any service starts one in its composition root::

    monitor = start_lag_monitor(config.kafka, {config.group_id: [config.facts_topic]}, metrics.consumer_lag)
    ...
    monitor.cancel()            # on shutdown; awaiting it afterwards is optional

Every ``interval_s`` it reads, for each group and each partition of its topics, the last stable offset
and the group's committed offset (:class:`services.lag.LagReader`) and sets
``consumer_lag_gauge{group, topic, partition}`` to their difference. Because the numbers come from the
broker and not from the consumer's own position, every replica of a group exports the same, complete
picture (including partitions owned by another replica, or by nobody): aggregate with ``max`` across
instances, not ``sum``.

A failed round (broker unreachable, coordinator moving) is logged as ``lag_monitor_failed`` and retried at
the next tick; the gauge keeps its last values meanwhile. Partitions that disappear from the answer
(e.g. a topic deleted) are removed from the gauge.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from typing import Final

import structlog
from aiokafka.errors import KafkaError
from prometheus_client import Gauge

from services.config import KafkaSettings
from services.lag import GroupLag, LagReader

__all__ = ["DEFAULT_INTERVAL_S", "export_lag", "run_lag_monitor", "start_lag_monitor"]

DEFAULT_INTERVAL_S: Final = 15.0

log = structlog.get_logger("lag_monitor")

_LabelSet = tuple[str, str, str]


def export_lag(gauge: Gauge, groups: Sequence[GroupLag], previous: set[_LabelSet] | None = None) -> set[_LabelSet]:
    """Set ``gauge`` from ``groups``; remove label sets in ``previous`` that are gone. Returns the sets set."""
    current: set[_LabelSet] = set()
    for group in groups:
        for p in group.partitions:
            labels = (p.group, p.topic, str(p.partition))
            gauge.labels(*labels).set(p.lag)
            current.add(labels)
    for stale in (previous or set()) - current:
        with contextlib.suppress(KeyError):
            gauge.remove(*stale)
    return current


async def run_lag_monitor(
    kafka: KafkaSettings,
    groups: Mapping[str, Sequence[str]],
    gauge: Gauge,
    interval_s: float = DEFAULT_INTERVAL_S,
    *,
    client_id: str = "review-analytics-lag-monitor",
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
                exported = export_lag(gauge, result, exported)
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
    try:
        await reader.close()
    except (KafkaError, OSError, TimeoutError) as error:
        log.debug("lag_monitor_close_failed", error=repr(error))


def start_lag_monitor(
    kafka: KafkaSettings,
    groups: Mapping[str, Sequence[str]],
    gauge: Gauge,
    interval_s: float = DEFAULT_INTERVAL_S,
) -> asyncio.Task[None]:
    """Start :func:`run_lag_monitor` on the running loop; cancel the returned task to stop it.

    Args:
        kafka: Connection settings (every Kafka client is built from :meth:`KafkaSettings.client_kwargs`).
        groups: ``{group id: [topic, ...]}``, e.g. ``{config.group_id: [config.facts_topic]}``.
        gauge: The service's ``consumer_lag`` gauge (:func:`services.metrics.consumer_lag_gauge`).
        interval_s: Seconds between two rounds; the first round starts at once.
    """
    if interval_s <= 0:
        raise ValueError(f"interval_s must be positive, got {interval_s}")
    frozen = {group: list(topics) for group, topics in groups.items()}
    return asyncio.get_running_loop().create_task(run_lag_monitor(kafka, frozen, gauge, interval_s), name="lag-monitor")
