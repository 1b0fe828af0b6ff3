"""Opt-in test groups: tests carrying a marker run only when their flag is given.

Without the flag they are *deselected*, not skipped, so CI reports no skipped test.
"""

from __future__ import annotations

import pytest


def deselect_unless_opted_in(config: pytest.Config, items: list[pytest.Item], marker: str, flag: str) -> None:
    """Remove the items marked ``marker`` from ``items`` unless ``flag`` (e.g. ``--soak``) was given."""
    if config.getoption(flag):
        return
    chosen = [item for item in items if marker in item.keywords]
    if chosen:
        config.hook.pytest_deselected(items=chosen)
        items[:] = [item for item in items if marker not in item.keywords]
