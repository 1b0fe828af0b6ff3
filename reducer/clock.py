"""The partition's clock: how fact times move the watermark that idle expiry reads.

Fact time is whatever a producer wrote in ``observed_at_ms``, so one fact years ahead must not move the
watermark (expiry would then evict every open family). The rule, folded over the facts a batch reduced,
in offset order (:func:`advance`):

* a fact at most ``limits.max_clock_skew_ms`` ahead of the watermark moves it forward (never back) and
  ends any run of facts that were further ahead;
* a fact further ahead does not move it, and extends the run of consecutive such facts;
* when that run reaches ``limits.clock_jump_facts`` facts, the watermark jumps to the earliest time of the
  run: a partition whose producers really moved on (a fresh partition, whose watermark is 0, or one idle
  for longer than the skew) catches up, while a minority of producers far ahead never moves it.

The run is part of the state (``PartitionState.ahead_run`` / ``ahead_min_ms``, stored with the watermark
in the changelog), so a restart continues it exactly and replay agrees with the processor.
"""

from __future__ import annotations

from collections.abc import Iterable

from reducer.limits import Limits
from schemas.state import PartitionState


def advance(state: PartitionState, observed_ms: Iterable[int], limits: Limits) -> int:
    """Apply the rule to ``observed_ms`` in order; return how many facts were too far ahead to move it."""
    watermark = state.watermark_ms
    run = state.ahead_run
    run_min = state.ahead_min_ms
    skew = limits.max_clock_skew_ms
    jump = limits.clock_jump_facts
    ahead = 0
    for observed in observed_ms:
        if observed <= watermark + skew:
            if observed > watermark:
                watermark = observed
            run = 0
            continue
        ahead += 1
        run_min = observed if run == 0 or observed < run_min else run_min
        run += 1
        if run >= jump:
            watermark = run_min
            run = 0
    state.watermark_ms = watermark
    state.ahead_run = run
    state.ahead_min_ms = run_min if run else 0
    return ahead
