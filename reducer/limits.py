"""The bounds of the containment boundary (:mod:`reducer.boundary`): one frozen value, every field a setting.

Each field has a default that fits a single broker with Kafka's default ``max.message.bytes``; the
processor overrides ``max_record_bytes`` with what the broker reports at start, and exposes every other
field as a ``PROCESSOR_*`` setting (``services.config.ProcessorConfig``). Hitting a bound is never a
crash: it is a dead letter or a counted drop, named in ``docs/reliability.md``.
"""

from __future__ import annotations

from typing import Final

import msgspec

DEFAULT_MAX_RECORD_BYTES: Final = 1_048_588 - 4096
"""Kafka's default ``max.message.bytes`` (1 MiB + 12) less room for the key, headers and batch overhead."""


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    """Bounds applied to every fact; see the module docstring."""

    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    """Largest key + value + headers of one produced record (a row, a changelog record). A fact whose row or
    whose family's changelog record would be larger is dead-lettered (``row_too_large`` /
    ``state_too_large``) and leaves the state as if it had never arrived."""
    max_clock_skew_ms: int = 3_600_000
    """A fact observed more than this far ahead of the partition's watermark does not move it."""
    clock_jump_facts: int = 100
    """... unless this many consecutive facts of the partition are all that far ahead: then the watermark
    jumps to the earliest of them (a partition that was idle, or a fresh one, catches up)."""
    state_budget_bytes: int = 64 * 1024 * 1024
    """Encoded size (changelog bytes) of one partition's families. Over it, the longest-idle families are
    evicted (drop ``budget_evicted_family``) until the state is under 90 % of the budget."""
    max_connections: int = 100_000
    """Connections remembered per partition; the oldest is evicted (drop ``connection_evicted``)."""


DEFAULT_LIMITS: Final = Limits()
