"""``--promtool``: run the tests marked ``promtool`` (the real promtool on deploy/alerts.yml).

Without the flag they are deselected, not skipped: building promtool takes longer than the CI budget
allows (docs/operations.md, "Alert rule tests"). With it, a missing promtool is built first
(``python -m tools.gotool install promtool``) and a failed build fails the tests. ``RA_PROMTOOL`` names another
promtool binary to use instead (no build).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.optin import deselect_unless_opted_in
from tools import gotool


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--promtool",
        action="store_true",
        default=False,
        help="run promtool check/test rules on deploy/alerts.yml (builds promtool into .cache the first time)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    deselect_unless_opted_in(config, items, "promtool", "--promtool")


@pytest.fixture(scope="session")
def promtool() -> Path:
    """``$RA_PROMTOOL``, else the pinned promtool of :mod:`tools.gotool`, built on first use."""
    override = os.environ.get("RA_PROMTOOL")
    return Path(override) if override else gotool.install("promtool").path
