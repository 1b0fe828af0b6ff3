"""Liveness of the owned partitions: which are stalled, and since when.

A partition is **stalled** while it has lag and has not committed for ``stall_after_s``. Time without
lag does not count: an idle partition is never stalled, and the clock starts again when lag appears.
Whether a partition has lag is the caller's to say (``Processor._lagging``: facts fetched and not
committed, or records on the broker past what it has read), as is the time (a monotonic clock), so
:class:`StallWatch` is plain bookkeeping; the processor checks it about once a second, exports it and
answers ``/readyz`` 503 while any owned partition is stalled.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass


@dataclass
class _Clock:
    offset: int
    """The committed input offset (the next fact to reduce)."""
    last_commit: float
    """When it last committed (or was first taken)."""
    calm_since: float
    """The last moment it committed or was seen without lag: a stall is measured from here."""
    stalled: bool = False


@dataclass(frozen=True)
class Changes:
    """Partitions that became stalled, and that stopped being stalled, in one :meth:`StallWatch.check`."""

    stalled: tuple[int, ...] = ()
    unstalled: tuple[int, ...] = ()


class StallWatch:
    """Stall bookkeeping of one processor's partitions; see the module docstring."""

    def __init__(self, stall_after_s: float) -> None:
        self.stall_after_s = stall_after_s
        self._clocks: dict[int, _Clock] = {}

    @property
    def partitions(self) -> tuple[int, ...]:
        return tuple(sorted(self._clocks))

    @property
    def stalled(self) -> tuple[int, ...]:
        return tuple(sorted(p for p, clock in self._clocks.items() if clock.stalled))

    def taken(self, partition: int, offset: int, now: float) -> None:
        """``partition`` is owned from ``offset`` on. Taking it back after a failed transaction (a reset)
        keeps its clock: a partition that fails every transaction must show as stalled."""
        clock = self._clocks.get(partition)
        if clock is None:
            self._clocks[partition] = _Clock(offset, now, now)
        else:
            clock.offset = offset

    def committed(self, partition: int, offset: int, now: float) -> None:
        clock = self._clocks.get(partition)
        if clock is not None:
            clock.offset = offset
            clock.last_commit = clock.calm_since = now

    def released(self, partition: int) -> bool:
        """Forget ``partition`` (revoked); ``True`` if it was stalled."""
        clock = self._clocks.pop(partition, None)
        return clock is not None and clock.stalled

    def seconds_since_commit(self, partition: int, now: float) -> float:
        return now - self._clocks[partition].last_commit

    def committed_offset(self, partition: int) -> int | None:
        """The last committed input offset of ``partition`` (``None``: not watched)."""
        clock = self._clocks.get(partition)
        return clock.offset if clock is not None else None

    def check(self, now: float, lagging: Collection[int]) -> Changes:
        """Update every partition's verdict at ``now``; ``lagging``: the partitions that have lag now."""
        stalled: list[int] = []
        unstalled: list[int] = []
        for partition, clock in self._clocks.items():
            lagging_now = partition in lagging
            if not lagging_now:
                clock.calm_since = now
            verdict = lagging_now and now - clock.calm_since >= self.stall_after_s
            if verdict != clock.stalled:
                clock.stalled = verdict
                (stalled if verdict else unstalled).append(partition)
        return Changes(tuple(stalled), tuple(unstalled))
