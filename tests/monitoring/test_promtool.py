"""The real promtool on deploy/alerts.yml (opt-in: ``pytest --promtool``; see tests/support/promtool.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tools.monitoring import RULES

pytestmark = pytest.mark.promtool

UNIT_TESTS = Path(__file__).with_name("alerts_test.yml")


def run(promtool: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(promtool), *args], capture_output=True, text=True, timeout=300)


def test_promtool_check_rules_accepts_the_rules_file(promtool: Path) -> None:
    done = run(promtool, "check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_unit_tests_see_every_alert_fire_and_resolve(promtool: Path) -> None:
    done = run(promtool, "test", "rules", str(UNIT_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_unit_tests_fail_when_an_alert_never_fires(promtool: Path, tmp_path: Path) -> None:
    """A control: the same tests against rules whose stall alert can never fire must fail."""
    broken = tmp_path / "deploy" / RULES.name
    broken.parent.mkdir()
    stalled = "(review_analytics_processor_partition_stalled) =="
    assert f"{stalled} 1" in RULES.read_text()
    broken.write_text(RULES.read_text().replace(f"{stalled} 1", f"{stalled} 2"))
    tests = tmp_path / "tests" / "monitoring" / UNIT_TESTS.name
    tests.parent.mkdir(parents=True)
    tests.write_text(UNIT_TESTS.read_text())
    done = run(promtool, "test", "rules", str(tests))
    assert done.returncode != 0
    assert "ReducerPartitionStalled" in done.stdout + done.stderr
