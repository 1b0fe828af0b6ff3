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

How the processor uses them after reducing a batch (``dirty`` = families the batch touched)::

    trimmed = enforce_caps(state, dirty)      # subset of dirty; already rewritten below
    evicted = expire(state, idle_ttl_ms)      # tombstones
    records = changelog_records(state, dirty | set(evicted), dirty_connections)

A cap can only be exceeded by a fact landing in that family, so enforcing caps on the dirty families
before the changelog write keeps memory and changelog identical.

Connections (one per app-server connection, broadcast to every partition) are not bounded here: a
thread fact may refer to a connection at any later time. See ``docs/differences.md``.
"""

from __future__ import annotations

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


def enforce_caps(state: PartitionState, family_keys: Iterable[str], caps: FamilyCaps = DEFAULT_CAPS) -> list[str]:
    """Trim the named families' maps to ``caps``; return the keys of the families that lost entries.

    Unknown keys are skipped. Each evicted entry counts once in ``state.drops["cap_evicted:<map>"]``.
    """
    trimmed: list[str] = []
    for key in family_keys:
        family = state.families.get(key)
        if family is not None and _trim_family(state, family, caps):
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
