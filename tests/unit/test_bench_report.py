"""The bench's verdicts and its ``--compare`` table (tools.bench.common, tools.bench.report, tools.bench.peer)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from tools.bench.__main__ import main
from tools.bench.common import CaseReport, Row
from tools.bench.peer import skipped
from tools.bench.report import compare, table, to_json


def _run(rows: list[Row], *, skipped_case: str | None = None) -> dict[str, Any]:
    reports = [CaseReport(rows[0].case, "case", rows=rows)]
    if skipped_case:
        reports.append(CaseReport(skipped_case, "peer", skipped="quixstreams is not installed"))
    return to_json(reports, {"mode": "quick", "started": "2026-12-02 20:00 UTC"})


def _line(text: str, measure: str) -> list[str]:
    [line] = [line for line in text.splitlines() if measure in line]
    return line.split()


def test_a_rate_target_is_judged_on_the_slowest_run_against_the_baselines_median() -> None:
    row = Row("B2", "processor", "facts/s", [80.0, 60.0, 90.0], [100.0, 110.0, 90.0], "passthrough")
    assert row.ratio == pytest.approx(0.8)
    assert row.worst == 60.0
    assert row.worst_ratio == pytest.approx(0.6)


def test_a_cost_target_is_judged_on_the_most_expensive_run() -> None:
    row = Row("B2", "CPU", "CPU-ms", [10.0, 14.0, 11.0], [6.0, 5.0, 7.0], "passthrough", higher_is_better=False)
    assert row.worst == 14.0
    assert row.worst_ratio == pytest.approx(14.0 / 6.0)


def test_the_table_shows_the_worst_run_ratio_next_to_the_median_ratio_and_skipped_cases() -> None:
    row = Row("B2", "processor", "facts/s", [80.0, 60.0, 90.0], [100.0, 110.0, 90.0], "passthrough", target=">= 70%")
    row.passed = False
    text = table([CaseReport("B2", "x", rows=[row]), CaseReport("B8", "peer", skipped="no quix")])
    assert "worst run ratio" in text.splitlines()[0]
    cells = _line(text, "processor")
    assert "80" in cells and "60" in cells and cells[-1] == "MISS"
    assert _line(text, "SKIPPED")[-1] == "SKIP"


def test_compare_puts_each_figure_beside_the_previous_runs_with_its_change() -> None:
    old = _run(
        [
            Row("B2", "processor", "facts/s", [100.0, 90.0, 110.0]),
            Row("B2", "CPU per 1,000 facts", "CPU-ms", [10.0, 10.0, 10.0], higher_is_better=False),
            Row("B2", "dropped measure", "facts/s", [5.0, 5.0, 5.0]),
        ]
    )
    new = _run(
        [
            Row("B2", "processor", "facts/s", [120.0, 130.0, 125.0]),
            Row("B2", "CPU per 1,000 facts", "CPU-ms", [12.0, 12.0, 12.0], higher_is_better=False),
            Row("B2", "new measure", "facts/s", [7.0, 7.0, 7.0]),
        ],
        skipped_case="B8",
    )
    text = compare(new, old)
    assert _line(text, "processor")[2:] == ["facts/s", "100", "125", "+25", "%", "better", "90", "120"]
    assert _line(text, "CPU per")[5:] == ["CPU-ms", "10", "12", "+20", "%", "worse", "10", "12"]
    assert _line(text, "new measure")[3:6] == ["facts/s", "-", "7.00"]
    assert _line(text, "dropped measure")[3:6] == ["facts/s", "5.00", "-"]
    assert "SKIPPED: quixstreams is not installed" in text


def test_compare_of_two_files_runs_nothing_and_prints_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(_run([Row("B1", "reducer", "facts/s", [200.0, 210.0, 220.0])])))
    new.write_text(json.dumps(_run([Row("B1", "reducer", "facts/s", [230.0, 231.0, 232.0])])))
    assert main(["--compare", str(old), "--against", str(new)]) == 0
    assert _line(capsys.readouterr().out, "reducer")[3:6] == ["210", "231", "+10"]


def test_compare_with_a_file_that_is_not_a_bench_run_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(SystemExit) as stopped:
        main(["--compare", str(bad), "--against", str(bad)])
    assert stopped.value.code == 2


def test_b8_is_skipped_with_its_reason_when_quixstreams_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec

    def without_quix(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name == "quixstreams" else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", without_quix)
    report = skipped()
    assert report is not None and report.case == "B8"
    assert report.skipped is not None and "pip install -e '.[bench]'" in report.skipped
    assert report.error is None and report.missed == []


def test_the_rows_digest_is_stable_for_a_workload_and_changes_with_its_rows() -> None:
    from tools.bench.digest import rows_digest
    from tools.bench.plan import SMOKE
    from tools.bench.workload import make_copies

    values = make_copies(SMOKE, 1)[0].values
    assert rows_digest(values) == rows_digest(list(values))
    assert rows_digest(values) != rows_digest(values[:-200])


def test_compare_says_whether_the_rows_digest_changed_between_runs_of_one_mode() -> None:
    def run(digest: str, mode: str = "quick") -> dict[str, Any]:
        report = CaseReport("B1", "reducer", rows=[Row("B1", "reducer", "facts/s", [1.0, 1.0, 1.0])])
        report.series["rows_digest"] = digest
        return to_json([report], {"mode": mode})

    assert "rows digest: same" in compare(run("ab"), run("ab"))
    assert "rows digest: CHANGED" in compare(run("ab"), run("cd"))
    assert "not comparable" in compare(run("ab", "full"), run("ab"))


def test_the_table_shows_a_latencys_slowest_run_as_its_worst() -> None:
    row = Row("B3", "p99", "ms", [254.0, 267.0, 2192.0], target="< 500 ms", higher_is_better=False)
    row.passed = row.worst < 500
    cells = _line(table([CaseReport("B3", "latency", rows=[row])]), "p99")
    assert cells[3:5] == ["2,192", "267"] and cells[-1] == "MISS"
