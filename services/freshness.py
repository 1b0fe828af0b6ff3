"""Freshness: how old, by its timestamp, is the oldest record a stage has not finished.

Two views of the same question, both from record timestamps (the producer's ``CreateTime``, or the
broker's ``LogAppendTime`` where a topic sets it):

* **From the broker** (:func:`head_timestamps`): the first record at or after a group's committed
  offset is the oldest one the group has not finished, whoever owns the partition and whether or not a
  member is alive. The lag monitor (:mod:`services.lag_monitor`), the ``lag`` command and the stand-alone
  exporter ``lag --serve`` read it and export ``review_analytics_consumer_lag_seconds``.
* **In the process** (:class:`OldestUnfinished`): each stage keeps, per partition, the timestamp of the
  oldest record it took and has not finished (the reducer: facts fetched and not committed; the sender:
  rows not acknowledged) and exports its age, computed at every scrape, so a stuck record's age keeps
  growing between two updates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Final

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from prometheus_client import Gauge

__all__ = ["HEAD_READ_TIMEOUT_S", "OldestUnfinished", "age_s", "head_timestamps"]

HEAD_READ_TIMEOUT_S: Final = 5.0
"""How long :func:`head_timestamps` waits for the first records of the partitions it reads."""


def age_s(timestamp_ms: int | None, now_s: float) -> float | None:
    """Seconds from ``timestamp_ms`` to ``now_s``; ``None`` for no (or a negative) timestamp. A record from
    a producer whose clock is ahead is 0 s old, never less."""
    if timestamp_ms is None or timestamp_ms < 0:
        return None
    return max(0.0, now_s - timestamp_ms / 1000)


async def head_timestamps(
    consumer: AIOKafkaConsumer,
    heads: Mapping[TopicPartition, tuple[int, int]],
    *,
    timeout_s: float = HEAD_READ_TIMEOUT_S,
) -> tuple[dict[TopicPartition, int], set[TopicPartition]]:
    """Timestamp (ms) of the first record in ``[start, end)`` of each partition, ``heads[tp] = (start, end)``.

    ``consumer`` is group-less. Its assignment is replaced only when the partitions to read differ from
    the last call's, and every partition is paused after the read, never unassigned: aiokafka 0.14's
    fetcher swallows its own cancellation while it winds down a replaced assignment, so a ``stop()`` that
    lands in that moment never returns (the lag monitor of a stopping service hung on it). Returns
    ``(found, unread)``: partitions whose range holds no readable record (only transaction markers or
    aborted records, or an empty range) are in neither, and those not read within ``timeout_s`` are in
    ``unread``.
    """
    pending = {tp for tp, (start, end) in heads.items() if end > start}
    found: dict[TopicPartition, int] = {}
    if not pending:
        return found, set()
    if consumer.assignment() != pending:
        consumer.assign(sorted(pending))
    try:
        for tp in pending:
            consumer.seek(tp, heads[tp][0])
        consumer.resume(*pending)
        deadline = time.monotonic() + timeout_s
        while pending and (left := deadline - time.monotonic()) > 0:
            batch = await consumer.getmany(*pending, timeout_ms=max(1, int(left * 1000)))
            for tp, records in batch.items():
                if tp in pending and records:
                    pending.discard(tp)
                    if records[0].offset < heads[tp][1]:
                        found[tp] = int(records[0].timestamp)
            for tp in list(pending):
                if await consumer.position(tp) >= heads[tp][1]:  # read past the end: only markers were left
                    pending.discard(tp)
    finally:
        consumer.pause(*consumer.assignment())  # no fetching between reads
    return found, pending


class OldestUnfinished:
    """Per partition, the timestamp of the oldest record a stage has taken and not finished, exported as
    its age on ``gauge`` (label ``partition``), computed when scraped.

    Updated from the event loop, read by the metrics server's thread: one dict assignment each way.
    """

    def __init__(self, gauge: Gauge, clock: Callable[[], float] = time.time) -> None:
        self._gauge = gauge
        self._clock = clock
        self._since: dict[int, int | None] = {}

    def set(self, partition: int, timestamp_ms: int | None) -> None:
        """The oldest unfinished record of ``partition`` now has ``timestamp_ms``; ``None``: none is left."""
        if partition not in self._since:
            self._gauge.labels(partition=str(partition)).set_function(lambda: self.age_s(partition))
        self._since[partition] = timestamp_ms

    def age_s(self, partition: int) -> float:
        """The age exported for ``partition``: 0 when nothing is unfinished (or its time is unknown)."""
        return age_s(self._since.get(partition), self._clock()) or 0.0

    def forget(self, partition: int) -> None:
        """``partition`` is no longer this process's: its series goes."""
        if partition in self._since:
            del self._since[partition]
            self._gauge.remove(str(partition))
