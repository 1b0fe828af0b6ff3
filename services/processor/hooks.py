"""The named steps of the commit protocol and the partition lifecycle, and the seam a test hooks into.

The processor calls :meth:`ProcessorHooks.reached` at each step of :data:`STEPS` (the commit protocol of
:mod:`.transaction`, the restore of :mod:`.partition`, the rebalance callbacks of :mod:`.service`). The
production hooks do nothing. The reliability suite substitutes its own (crash points that ``os._exit``
at a step, deliberately broken commit variants): they live with the tests
(``tests/support/processor_hooks.py``), never here. A processor started as a subprocess loads them from
the entry point named by :data:`HOOKS_ENV` (``module:function``), see :func:`load_entry_point`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Final

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

HOOKS_ENV: Final = "RA_PROCESSOR_HOOKS"
"""Environment variable naming a ``module:function`` that builds the processor's hooks (tests only)."""


class ProcessorHooks:
    """Called at every step of :data:`STEPS`; this one does nothing."""

    def reached(self, step: str) -> None:
        """The processor has reached ``step``."""


NO_HOOKS: Final = ProcessorHooks()


def load_entry_point(spec: str) -> Callable[..., Any]:
    """The callable ``module:function`` names; ``ValueError`` with the reason if there is none."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"{HOOKS_ENV} must be module:function, got {spec!r}")
    try:
        target = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"{HOOKS_ENV}={spec!r} names nothing importable: {error}") from error
    if not callable(target):
        raise ValueError(f"{HOOKS_ENV}={spec!r} is not callable")
    return target  # type: ignore[no-any-return]
