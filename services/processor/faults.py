"""Crash points for the reliability suite: ``os._exit`` at a named step of the commit protocol.

Inactive unless ``RA_CRASH_AT=<step>:<n>`` is set in the environment (the n-th time the step is
reached, the process exits at once with status 86, like ``kill -9``: no cleanup, no flush). Steps are
the ones named in :mod:`services.processor.transaction` and :mod:`services.processor.service`.
"""

from __future__ import annotations

import os
import sys
from typing import Final

CRASH_EXIT_CODE: Final = 86

STEPS: Final = (
    "after_rows_sent",
    "after_changelog_sent",
    "after_offsets_added",
    "before_commit",
    "after_commit",
    "during_restore",
    "in_revoke",
    "after_fence_before_offset_read",
)


class CrashPoints:
    """Counts arrivals at each step and exits at the configured one."""

    def __init__(self, spec: str | None) -> None:
        self._step: str | None = None
        self._remaining = 0
        if spec:
            step, _, count = spec.partition(":")
            if step not in STEPS:
                raise ValueError(f"unknown crash step {step!r}; known: {', '.join(STEPS)}")
            self._step = step
            self._remaining = int(count or "1")

    @classmethod
    def from_env(cls) -> CrashPoints:
        return cls(os.environ.get("RA_CRASH_AT"))

    def reached(self, step: str) -> None:
        if step != self._step:
            return
        self._remaining -= 1
        if self._remaining <= 0:
            sys.stderr.write(f"crash point {step} reached: exiting with {CRASH_EXIT_CODE}\n")
            sys.stderr.flush()
            os._exit(CRASH_EXIT_CODE)
