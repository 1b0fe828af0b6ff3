"""Rendering a run: the text table, the JSON document and the PNG plot."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

from services.bench.common import CaseReport, Row


def _num(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if unit == "%" or abs(value) < 10:
        return f"{value:.2f}"
    return f"{value:,.0f}"


def _verdict(row: Row) -> str:
    if row.passed is None:
        return ""
    return "PASS" if row.passed else "MISS"


def table(reports: list[CaseReport], *, markdown: bool = False) -> str:
    header = ["case", "measure", "unit", "min", "median", "baseline (median)", "ratio", "target", "result"]
    lines: list[list[str]] = []
    for report in reports:
        if report.error:
            lines.append([report.case, f"ERROR: {report.error}", "", "", "", "", "", "", "MISS"])
            continue
        for row in report.rows:
            low = row.min
            baseline = f"{_num(row.baseline_median)} {row.baseline_name}".strip() if row.baseline else ""
            ratio = f"{100 * row.ratio:.0f} %" if row.ratio is not None else ""
            lines.append(
                [
                    row.case,
                    row.name,
                    row.unit,
                    _num(low, row.unit),
                    _num(row.median, row.unit),
                    baseline,
                    ratio,
                    row.target,
                    _verdict(row),
                ]
            )
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        out += ["| " + " | ".join(cell.replace("|", "/") for cell in line) + " |" for line in lines]
        return "\n".join(out)
    widths = [
        max(len(header[i]), *(len(line[i]) for line in lines)) if lines else len(header[i]) for i in range(len(header))
    ]
    widths[1] = min(widths[1], 62)

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            cell[: widths[i]].ljust(widths[i]) if i in (0, 1, 2, 5, 7, 8) else cell.rjust(widths[i])
            for i, cell in enumerate(cells)
        )

    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *(fmt(line) for line in lines)])


def details(reports: list[CaseReport]) -> str:
    """Notes, then the profile of every missed target (and any forced profile)."""
    parts: list[str] = []
    for report in reports:
        for note in report.notes:
            parts.append(f"{report.case}: {note}")
        for row in report.rows:
            if row.note and not row.note.startswith("info"):
                parts.append(f"{report.case}: {row.name}: {row.note}")
            elif row.note.startswith("info:"):
                parts.append(f"{report.case}: {row.name}: {row.note[5:].strip()}")
    missed = [f"{row.case} {row.name}" for report in reports for row in report.missed]
    if missed:
        parts.append("\nmissed targets: " + "; ".join(missed) + " (profiles below)")
    for report in reports:
        for name, text in report.profiles.items():
            parts.append(f"\n== profile: {name}\n{text}")
    return "\n".join(parts)


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
