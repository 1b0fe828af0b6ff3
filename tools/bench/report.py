"""Rendering a run: the text table, the JSON document and the PNG plot."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

from tools.bench.common import CaseReport, Row


def _num(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if unit == "%" or abs(value) < 10:
        return f"{value:.2f}"
    return f"{value:,.0f}"


def _percent(ratio: float | None) -> str:
    return f"{100 * ratio:.0f} %" if ratio is not None else ""


def _verdict(row: Row) -> str:
    if row.passed is None:
        return ""
    return "PASS" if row.passed else "MISS"


def table(reports: list[CaseReport], *, markdown: bool = False) -> str:
    """One line per row: the worst run (the minimum of a rate, the maximum of a latency or a cost) and the
    median, the baseline's median, the ratio of the medians, the ratio of the worst run (what a target is
    judged on), the target and its verdict."""
    header = [
        "case",
        "measure",
        "unit",
        "worst run",
        "median",
        "baseline (median)",
        "ratio",
        "worst run ratio",
        "target",
        "result",
    ]
    lines: list[list[str]] = []
    for report in reports:
        if report.skipped:
            lines.append([report.case, f"SKIPPED: {report.skipped}", "", "", "", "", "", "", "", "SKIP"])
            continue
        if report.error:
            lines.append([report.case, f"ERROR: {report.error}", "", "", "", "", "", "", "", "MISS"])
            continue
        for row in report.rows:
            baseline = f"{_num(row.baseline_median)} {row.baseline_name}".strip() if row.baseline else ""
            lines.append(
                [
                    row.case,
                    row.name,
                    row.unit,
                    _num(row.worst, row.unit),
                    _num(row.median, row.unit),
                    baseline,
                    _percent(row.ratio),
                    _percent(row.worst_ratio) if row.target else "",
                    row.target,
                    _verdict(row),
                ]
            )
    return _render([header, *lines], markdown=markdown, left={0, 1, 2, 5, 8, 9})


def details(reports: list[CaseReport]) -> str:
    """Notes, then the profile of every missed target (and any forced profile)."""
    parts: list[str] = []
    for report in reports:
        if report.skipped:
            parts.append(f"{report.case}: skipped: {report.skipped}")
        for note in report.notes:
            parts.append(f"{report.case}: {note}")
        for row in report.rows:
            if row.note and not row.note.startswith("info"):
                parts.append(f"{report.case}: {row.name}: {row.note}")
            elif row.note.startswith("info:"):
                parts.append(f"{report.case}: {row.name}: {row.note[5:].strip()}")
    missed = [f"{row.case} {row.name}" for report in reports for row in report.missed]
    if missed:
        profiled = any(report.profiles for report in reports)
        parts.append("\nmissed targets: " + "; ".join(missed) + (" (profiles below)" if profiled else ""))
    for report in reports:
        for name, text in report.profiles.items():
            parts.append(f"\n== profile: {name}\n{text}")
    return "\n".join(parts)


_LOWER_IS_BETTER_UNITS = frozenset({"ms", "CPU-ms", "bytes", "%"})


def _row_key(row: dict[str, Any]) -> tuple[str, str]:
    return (str(row.get("case")), str(row.get("name")))


def _higher_is_better(row: dict[str, Any]) -> bool:
    flag = row.get("higher_is_better")
    if isinstance(flag, bool):
        return flag
    return row.get("unit") not in _LOWER_IS_BETTER_UNITS  # runs written before the flag was recorded


def _worst_of(row: dict[str, Any]) -> float | None:
    runs = [float(value) for value in row.get("runs") or []]
    if not runs:
        return None
    return min(runs) if _higher_is_better(row) else max(runs)


def _result_of(row: dict[str, Any] | None) -> str:
    if row is None:
        return "-"
    passed = row.get("passed")
    return "" if passed is None else "PASS" if passed else "MISS"


def _change(old: float | None, new: float | None, higher_is_better: bool) -> tuple[str, str]:
    """The relative change from ``old`` to ``new`` and whether it is an improvement."""
    if old is None or new is None or old == 0 or math.isnan(old) or math.isnan(new):
        return "", ""
    change = new / old - 1
    if abs(change) < 0.01:
        return f"{100 * change:+.0f} %", "same"
    improved = (change > 0) == higher_is_better
    return f"{100 * change:+.0f} %", "better" if improved else "worse"


def compare(new: dict[str, Any], old: dict[str, Any], *, markdown: bool = False) -> str:
    """Every row of run ``new`` beside the same row (case and measure) of run ``old`` (both as written by
    :func:`to_json`): medians, their change, worst runs and verdicts. Rows only one run has are listed too,
    with ``-`` for the other; a case that failed or was skipped shows its reason."""
    old_rows = {_row_key(row): row for case in old.get("cases", []) for row in case.get("rows", [])}
    lines: list[list[str]] = []
    seen: set[tuple[str, str]] = set()
    for case in new.get("cases", []):
        reason = case.get("skipped") or case.get("error")
        if reason:
            lines.append(
                [str(case.get("case")), f"{'SKIPPED' if case.get('skipped') else 'ERROR'}: {reason}"] + [""] * 9
            )
        for row in case.get("rows", []):
            key = _row_key(row)
            seen.add(key)
            before = old_rows.get(key)
            lines.append(_compare_line(row, before))
    for key, row in old_rows.items():
        if key not in seen:
            lines.append(_compare_line(None, row))
    header = [
        "case",
        "measure",
        "unit",
        "old median",
        "new median",
        "change",
        "",
        "old worst",
        "new worst",
        "old result",
        "new result",
    ]
    return _render([header, *lines], markdown=markdown, left={0, 1, 2, 6, 9, 10}) + _digests(new, old)


def _digests(new: dict[str, Any], old: dict[str, Any]) -> str:
    """A line saying whether the rows digest (B1) changed; only runs of the same mode share a workload."""
    digests = [
        next((case["series"].get("rows_digest") for case in run.get("cases", []) if case.get("case") == "B1"), None)
        for run in (old, new)
    ]
    if None in digests:
        return ""
    if old.get("mode") != new.get("mode"):
        return f"\nrows digest: not comparable ({old.get('mode')} run against {new.get('mode')} run: other workloads)"
    verdict = "same (rows byte-identical)" if digests[0] == digests[1] else "CHANGED: rows differ"
    return f"\nrows digest: {verdict}: old {digests[0]}, new {digests[1]}"


def _compare_line(new: dict[str, Any] | None, old: dict[str, Any] | None) -> list[str]:
    some = new if new is not None else old
    assert some is not None
    unit = str(some.get("unit", ""))
    higher = _higher_is_better(some)
    old_median = None if old is None else old.get("median")
    new_median = None if new is None else new.get("median")
    change, direction = _change(old_median, new_median, higher)
    return [
        str(some.get("case")),
        str(some.get("name")),
        unit,
        _num(old_median, unit) if old is not None else "-",
        _num(new_median, unit) if new is not None else "-",
        change,
        direction,
        _num(_worst_of(old), unit) if old is not None else "-",
        _num(_worst_of(new), unit) if new is not None else "-",
        _result_of(old),
        _result_of(new),
    ]


def _render(lines: list[list[str]], *, markdown: bool, left: set[int]) -> str:
    """A header line and rows as aligned text (``left``: left-aligned columns) or as a Markdown table."""
    header, body = lines[0], lines[1:]
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        out += ["| " + " | ".join(cell.replace("|", "/") for cell in line) + " |" for line in body]
        return "\n".join(out)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    widths[1] = min(widths[1], 62)

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            cell[: widths[i]].ljust(widths[i]) if i in left else cell.rjust(widths[i]) for i, cell in enumerate(cells)
        ).rstrip()

    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *(fmt(line) for line in body)])


def to_json(reports: list[CaseReport], meta: dict[str, Any]) -> dict[str, Any]:
    return {
        **meta,
        "cases": [report.to_json() for report in reports],
        "targets": {
            "met": sum(1 for r in reports for row in r.rows if row.passed is True),
            "missed": [f"{row.case} {row.name}" for r in reports for row in r.rows if row.passed is False]
            + [f"{r.case} error" for r in reports if r.error],
        },
    }


def plot(reports: list[CaseReport], path: str | Path, meta: dict[str, Any]) -> None:
    """One PNG: throughput vs ceiling per case, latency distribution, RSS over the stream, scaling."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_case = {report.case: report for report in reports}
    figure, axes = plt.subplots(2, 2, figsize=(14, 10))
    figure.suptitle(
        f"bench ({meta.get('mode')}), {meta.get('machine', {}).get('cpus')} CPUs, "
        f"{meta.get('started', '')}: each bar the median of {meta.get('repeats')} runs, whiskers min..max",
        fontsize=11,
    )

    # 1. Throughput vs baseline (ratio bars), B1, B2, B4.
    ax = axes[0][0]
    labels, measured, ceilings, lows, highs = [], [], [], [], []
    for case in ("B1", "B2", "B4"):
        report = by_case.get(case)
        if report is None:
            continue
        for row in report.rows:
            if row.baseline and row.unit in ("facts/s", "rows/s"):
                labels.append(f"{case}\n" + textwrap.fill(row.name.split(":")[0].split(",")[0][:40], 16))
                measured.append(row.median)
                ceilings.append(row.baseline_median or 0)
                lows.append(row.median - row.min)
                highs.append(max(row.runs) - row.median)
    if labels:
        xs = range(len(labels))
        ax.bar([x - 0.2 for x in xs], ceilings, width=0.4, label="baseline / ceiling", color="#bbbbbb")
        ax.bar([x + 0.2 for x in xs], measured, width=0.4, yerr=[lows, highs], label="measured", color="#3b75af")
        for x, (m, c) in enumerate(zip(measured, ceilings, strict=True)):
            if c:
                ax.annotate(f"{100 * m / c:.0f} %", (x + 0.2, m), ha="center", va="bottom", fontsize=8)
        ax.set_xticks(list(xs), labels, fontsize=7)
        ax.set_yscale("log")
        ax.set_ylabel("per second (log)")
        ax.legend(fontsize=8)
    ax.set_title("throughput against the ceiling of the same work")

    # 2. Latency distribution (B3).
    ax = axes[0][1]
    report = by_case.get("B3")
    latencies = sorted(report.series.get("latencies_ms", [])) if report else []
    if latencies:
        n = len(latencies)
        ax.plot(latencies, [100 * (i + 1) / n for i in range(n)], color="#3b75af")
        ax.axvline(500, color="#c44e52", linestyle="--", label="p99 target 500 ms")
        for fraction, name in ((0.5, "p50"), (0.99, "p99")):
            value = latencies[min(n - 1, int(fraction * n))]
            ax.axvline(value, color="#888888", linestyle=":")
            ax.annotate(f"{name} {value:.0f} ms", (value, 100 * fraction), fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("fact produced -> row readable (ms, log)")
        ax.set_ylabel("% of rows")
        ax.legend(fontsize=8)
    ax.set_title("B3 latency at half of B2's rate (last run)")

    # 3. RSS over the long stream (B5).
    ax = axes[1][0]
    report = by_case.get("B5")
    samples = report.series.get("rss_samples", []) if report else []
    if samples:
        done = [s[0] for s in samples]
        ax.plot(done, [s[1] / 2**20 for s in samples], color="#3b75af", label="RSS (MiB)")
        ax.set_xlabel("facts reduced")
        ax.set_ylabel("RSS MiB")
        twin = ax.twinx()
        twin.plot(done, [s[2] for s in samples], color="#dd8452", label="families in state")
        twin.set_ylabel("families in state")
        ax.legend(loc="upper left", fontsize=8)
        twin.legend(loc="lower right", fontsize=8)
    ax.set_title("B5 memory over a long stream (threads finish and expire)")

    # 4. Scaling (B7) and restore (B6).
    ax = axes[1][1]
    report = by_case.get("B7")
    scaling = report.series.get("scaling", {}) if report else {}
    if scaling:
        names = list(scaling)
        medians = [sorted(v)[len(v) // 2] for v in scaling.values()]
        ax.bar(range(len(names)), medians, color="#55a868")
        ax.set_xticks(range(len(names)), [f"{n}\n(inst x part)" for n in names], fontsize=8)
        ax.set_ylabel("facts/s")
        for x, value in enumerate(medians):
            ax.annotate(f"{value:,.0f}", (x, value), ha="center", va="bottom", fontsize=8)
    report6 = by_case.get("B6")
    if report6 and report6.rows:
        text = "B6 restore: " + "; ".join(f"{row.name.split(', ')[-1]}: {row.median:,.0f}/s" for row in report6.rows)
        ax.text(0.01, 0.97, text, transform=ax.transAxes, fontsize=8, va="top")
    ax.set_title("B7 processor scaling (instances x partitions per instance)")

    figure.tight_layout(rect=(0, 0, 1, 0.96))
    figure.savefig(path, dpi=110)
    plt.close(figure)
