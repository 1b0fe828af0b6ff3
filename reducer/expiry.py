"""Bounding reducer state: idle families expire by fact time, and every family map has a cap.

The Rust reducer never evicts anything (spec 4.1, 8.9); a long-running service must. Two pure rules,
neither of which reads a clock:

1. **Idle expiry** (:func:`expire`). A family whose ``last_seen_ms`` (largest ``observed_at_ms`` of its
   own facts) is older than ``state.watermark_ms - idle_ttl_ms`` is evicted whole, and so is a family
   that holds nothing (:meth:`FamilyState.is_empty`). A family with a fact inside the TTL is never
   evicted. Time is fact time, so replaying the same facts evicts the same families.
2. **Per-family caps** (:func:`enforce_caps`). A family map that grows past its cap (a producer bug, or
   answers that never come) loses its oldest entries: dicts keep insertion order, so the first keys are
   the oldest inserted (an overwrite keeps the original position). Each evicted entry is counted in
   ``state.drops`` as ``cap_evicted:<map>``.

The containment boundary (:meth:`reducer.boundary.PartitionReducer.run`) applies them after each batch:
caps on the families the batch touched, then idle expiry through :class:`IdleIndex`, then the byte
budget, and writes the changed and evicted families to the changelog.

A cap can only be exceeded by a fact landing in that family, so enforcing caps on the dirty families
before the changelog write keeps memory and changelog identical.

:func:`expire` scans every family. The processor calls it after every batch, where a scan of 100,000
families costs ~20 ms; it uses :class:`IdleIndex` instead, which evicts exactly the same families (a
property test compares the two after every batch) while looking only at the batch's families and at the
families whose last fact is old enough to be near the cutoff.

Connections (one per app-server connection, broadcast to every partition) are not bounded here: a
thread fact may refer to a connection at any later time. See ``docs/differences.md``.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from itertools import islice
from typing import Final

import msgspec

from reducer.context import bump
from schemas.state import NO_ENTRIES, FamilyState, PartitionState

__all__ = [
    "DEFAULT_CAPS",
    "MAX_PENDING_PER_FAMILY",
    "MAX_REQUESTS_PER_FAMILY",
    "MAX_STARTED_ITEMS_PER_FAMILY",
    "MAX_SUMMARIES_PER_FAMILY",
    "MAX_THREADS_PER_FAMILY",
    "MAX_TURNS_PER_FAMILY",
    "FamilyCaps",
    "IdleIndex",
    "enforce_caps",
    "expire",
    "idle_cutoff_ms",
]

MAX_THREADS_PER_FAMILY: Final = 1_000
"""A root thread and its sub-agents; a real family has a handful."""
MAX_REQUESTS_PER_FAMILY: Final = 1_000
"""Pending ``turn/start`` / ``turn/steer`` requests awaiting their answer."""
MAX_TURNS_PER_FAMILY: Final = 1_000
"""Turns whose row has not been emitted yet (a finished turn's state is deleted on emission)."""
MAX_STARTED_ITEMS_PER_FAMILY: Final = 10_000
"""Tool items started and not yet completed."""
MAX_PENDING_PER_FAMILY: Final = 10_000
"""User reviews requested and not yet answered."""
MAX_SUMMARIES_PER_FAMILY: Final = 10_000
"""Review summaries waiting for their tool item to complete."""


class FamilyCaps(msgspec.Struct, frozen=True, kw_only=True):
    """Largest size of each :class:`FamilyState` map; entries past it are evicted oldest-first."""

    threads: int = MAX_THREADS_PER_FAMILY
    requests: int = MAX_REQUESTS_PER_FAMILY
    turns: int = MAX_TURNS_PER_FAMILY
    started_at_ms: int = MAX_STARTED_ITEMS_PER_FAMILY
    pending_reviews: int = MAX_PENDING_PER_FAMILY
    summaries: int = MAX_SUMMARIES_PER_FAMILY


DEFAULT_CAPS: Final = FamilyCaps()


def idle_cutoff_ms(state: PartitionState, idle_ttl_ms: int) -> int:
    """Families last seen strictly before this fact time are idle."""
    return state.watermark_ms - idle_ttl_ms


def expire(state: PartitionState, idle_ttl_ms: int) -> list[str]:
    """Evict idle and empty families; return their keys, in state order, for changelog tombstones.

    ``idle_ttl_ms`` must be non-negative. A family is kept iff it holds something and
    ``last_seen_ms >= state.watermark_ms - idle_ttl_ms``.
    """
    if idle_ttl_ms < 0:
        raise ValueError(f"idle_ttl_ms must be >= 0, got {idle_ttl_ms}")
    cutoff = idle_cutoff_ms(state, idle_ttl_ms)
    evicted = [key for key, family in state.families.items() if family.last_seen_ms < cutoff or family.is_empty()]
    for key in evicted:
        family = state.families.pop(key)
        if not family.is_empty():
            bump(state, "expired_idle_family")
    return evicted


class IdleIndex:
    """Which families :func:`expire` would evict, found without scanning the whole state.

    Holds one heap entry ``(last_seen_ms, key)`` per family, where the entry's time is never later than
    the family's ``last_seen_ms`` (a family's ``last_seen_ms`` only grows while it lives). Eviction pops
    entries below the cutoff: a family still idle is evicted, one seen since is pushed back with its
    current time (at most once per TTL of activity), one already gone drops its entry. Emptiness is
    checked only on the families a batch touched: a fact changes only its own family (and the
    connection table), so a family nobody touched is exactly as non-empty as at the last call.

    An index belongs to one state object: build it from the state (after a restore, say), then pass
    every family the reducer touched since the last call (including families a fact created and
    families whose fact the reducer refused). It holds no clock and no I/O; it is derived data, never
    written to the changelog.
    """

    __slots__ = ("_heap", "_indexed", "_unchecked")

    def __init__(self, state: PartitionState) -> None:
        self._unchecked: list[str] | None = list(state.families)
        """Families of the state the index was built from: the first call checks them for emptiness."""
        self._indexed: dict[str, int] = {key: family.last_seen_ms for key, family in state.families.items()}
        self._heap: list[tuple[int, str]] = [(seen, key) for key, seen in self._indexed.items()]
        heapq.heapify(self._heap)

    def __len__(self) -> int:
        return len(self._heap)

    def forget(self, keys: Iterable[str]) -> None:
        """Drop the entries of families evicted by something else (the byte budget); keeps the heap at most
        about twice the size of the state, so a stream of short-lived families cannot grow it."""
        indexed = self._indexed
        for key in keys:
            indexed.pop(key, None)
        if len(self._heap) > 2 * len(indexed) + 1024:
            self._heap = [(seen, key) for key, seen in indexed.items()]
            heapq.heapify(self._heap)

    def expire(self, state: PartitionState, idle_ttl_ms: int, touched: Iterable[str]) -> list[str]:
        """Evict what ``expire(state, idle_ttl_ms)`` would evict; return the keys (in no particular order)."""
        if idle_ttl_ms < 0:
            raise ValueError(f"idle_ttl_ms must be >= 0, got {idle_ttl_ms}")
        families = state.families
        indexed = self._indexed
        heap = self._heap
        cutoff = idle_cutoff_ms(state, idle_ttl_ms)
        evicted: list[str] = []
        if self._unchecked is not None:
            touched = [*self._unchecked, *touched]
            self._unchecked = None
        for key in touched:
            family = families.get(key)
            if family is None:
                continue
            if family.is_empty():
                del families[key]
                evicted.append(key)
                continue
            seen = indexed.get(key)
            if seen is None or family.last_seen_ms < seen:
                # New, or re-created with an older time than its entry: a fresh entry (the old one, if
                # any, no longer matches ``indexed`` and is dropped when it surfaces).
                indexed[key] = family.last_seen_ms
                heapq.heappush(heap, (family.last_seen_ms, key))
        while heap and heap[0][0] < cutoff:
            seen, key = heapq.heappop(heap)
            if indexed.get(key) != seen:
                continue  # superseded entry
            family = families.get(key)
            if family is None:
                del indexed[key]
            elif family.last_seen_ms < cutoff:
                del families[key]
                del indexed[key]
                evicted.append(key)
                bump(state, "expired_idle_family")
            else:
                indexed[key] = family.last_seen_ms
                heapq.heappush(heap, (family.last_seen_ms, key))
        return evicted


def enforce_caps(state: PartitionState, family_keys: Iterable[str], caps: FamilyCaps = DEFAULT_CAPS) -> list[str]:
    """Trim the named families' maps to ``caps``; return the keys of the families that lost entries.

    Unknown keys are skipped. Each evicted entry counts once in ``state.drops["cap_evicted:<map>"]``.
    """
    trimmed: list[str] = []
    families = state.families
    for key in family_keys:
        family = families.get(key)
        if family is None or (  # the common case, checked without building _trim_family's table
            len(family.threads) <= caps.threads
            and len(family.requests) <= caps.requests
            and len(family.turns) <= caps.turns
            and len(family.started_at_ms) <= caps.started_at_ms
            and len(family.pending_reviews) <= caps.pending_reviews
            and len(family.summaries) <= caps.summaries
        ):
            continue
        if _trim_family(state, family, caps):
            trimmed.append(key)
    return trimmed


def _trim_family(state: PartitionState, family: FamilyState, caps: FamilyCaps) -> bool:
    changed = False
    for name, entries, cap in (
        ("threads", family.threads, caps.threads),
        ("requests", family.requests, caps.requests),
        ("turns", family.turns, caps.turns),
        ("started_at_ms", family.started_at_ms, caps.started_at_ms),
        ("pending_reviews", family.pending_reviews, caps.pending_reviews),
        ("summaries", family.summaries, caps.summaries),
    ):
        excess = len(entries) - cap
        if excess <= 0:
            continue
        for oldest in list(islice(entries, excess)):
            del entries[oldest]
            bump(state, f"cap_evicted:{name}")
        if not entries:  # a cap of 0: hand the emptied dict back (schemas.state.NO_ENTRIES)
            setattr(family, name, NO_ENTRIES)
        changed = True
    return changed
