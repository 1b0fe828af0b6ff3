"""``--promtool``: run the tests marked ``promtool`` (the real promtool on deploy/alerts.yml).

Without the flag they are deselected, not skipped: building promtool takes longer than the CI budget
allows (docs/operations.md, "Alert rule tests"). With it, a missing promtool is built first
(:func:`tools.promtool.install`) and a failed build fails the tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.optin import deselect_unless_opted_in
from tools.promtool import install


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
    """The promtool binary, built on first use."""
    return install()
