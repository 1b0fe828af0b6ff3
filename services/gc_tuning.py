"""Garbage-collector settings for the long-running services.

The reducer's state is made of ``gc=False`` structs that never form reference cycles, and a service
allocates many short-lived acyclic objects per record (consumer records, decoded facts, rows). CPython's
default thresholds (700, 10, 10) start a young collection every 700 net allocations and scan whatever
is still tracked each time; at tens of thousands of records per second that is thousands of
collections per second for almost nothing to collect. Larger thresholds keep the cyclic collector for
the cycles that do occur (asyncio futures and exceptions with tracebacks) at a fraction of the cost:
about 8 % less CPU on the processor's batch path (docs/performance.md).
"""

from __future__ import annotations

import gc
from typing import Final

GC_THRESHOLDS: Final = (20_000, 20, 20)


def tune_gc() -> None:
    """Call once after start-up: freeze what is alive (modules, config) and raise the thresholds."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
