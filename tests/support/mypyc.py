"""``--mypyc``: run the tests marked ``mypyc`` (they build the reducer with mypyc in a temporary copy); and
the tests marked ``pure_python`` are deselected when this session runs the compiled build.

Without the flag they are deselected, not skipped: the build takes about a minute on a quiet 2-core
machine and several under load, beyond what the unit suite may cost (docs/performance.md, "Compiled
reducer (mypyc)"). The build never touches the working tree: the tests copy the packages first.

When a fresh in-place build is present (``python -m tools.compile build``, ``RA_COMPILED`` unset or ``1``) the
suite runs against the compiled reducer, except the tests marked ``pure_python``: they inject faults by
replacing a module attribute (``monkeypatch.setattr(reducer.boundary, "reduce", ...)``), which compiled
code never looks up (mypyc calls functions of the same build directly and keeps ``Final`` values in C).
The header of the run names the build; the default (pure Python, as in CI) runs every test.
"""

from __future__ import annotations

import pytest

from tests.support.optin import deselect_unless_opted_in


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--mypyc",
        action="store_true",
        default=False,
        help="build the reducer with mypyc in a temporary copy and compare it with pure Python (a minute or more)",
    )


def _build() -> str:
    from schemas.compiled import ENV, requested, variant

    return f"{variant()} ({ENV}={requested()})"


def pytest_report_header(config: pytest.Config) -> str:
    build = _build()
    extra = "; tests marked pure_python are deselected" if build.startswith("compiled") else ""
    return f"reducer build: {build}{extra}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    deselect_unless_opted_in(config, items, "mypyc", "--mypyc")
    if _build().startswith("compiled"):
        chosen = [item for item in items if "pure_python" in item.keywords]
        if chosen:
            config.hook.pytest_deselected(items=chosen)
            items[:] = [item for item in items if "pure_python" not in item.keywords]
