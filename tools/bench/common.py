"""Shared pieces: results, statistics, CPU/RSS readings of processes, profile summaries, ports."""

from __future__ import annotations

import io
import math
import os
import pstats
import resource
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_TICKS: float = float(os.sysconf("SC_CLK_TCK"))
_PAGE: int = os.sysconf("SC_PAGE_SIZE")
_REPO: str = str(Path(__file__).resolve().parents[2]).replace("\\", "/") + "/"


# --------------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the results table: a metric measured ``len(runs)`` times, maybe against a baseline.

    ``higher_is_better`` decides which end of the runs is the "best" and which the "worst".
    ``ratio`` is median(runs) / median(baseline). Targets are judged on the worst run (issue 16: the
    minimum of the runs for a rate, the maximum for a latency or a cost): ``worst``, and ``worst_ratio``
    = worst run / median(baseline). ``passed`` is None when the row has no target.
    """

    case: str
    name: str
    unit: str
    runs: list[float]
    baseline: list[float] = field(default_factory=list)
    baseline_name: str = ""
    target: str = ""
    passed: bool | None = None
    higher_is_better: bool = True
    note: str = ""

    @property
    def best(self) -> float:
        if not self.runs:
            return float("nan")
        return max(self.runs) if self.higher_is_better else min(self.runs)

    @property
    def worst(self) -> float:
        if not self.runs:
            return float("nan")
        return min(self.runs) if self.higher_is_better else max(self.runs)

    @property
    def worst_ratio(self) -> float | None:
        base = self.baseline_median
        if base is None or base == 0 or not self.runs:
            return None
        return self.worst / base

    @property
    def min(self) -> float:
        return min(self.runs) if self.runs else float("nan")

    @property
    def median(self) -> float:
        return statistics.median(self.runs) if self.runs else float("nan")

    @property
    def baseline_median(self) -> float | None:
        return statistics.median(self.baseline) if self.baseline else None

    @property
    def ratio(self) -> float | None:
        base = self.baseline_median
        if base is None or base == 0:
            return None
        return self.median / base

    def to_json(self) -> dict[str, Any]:
        return {
            "case": self.case,
            "name": self.name,
            "unit": self.unit,
            "runs": self.runs,
            "min": self.min,
            "median": self.median,
            "baseline_name": self.baseline_name or None,
            "baseline_runs": self.baseline or None,
            "baseline_median": self.baseline_median,
            "ratio": self.ratio,
            "worst": self.worst if self.runs else None,
            "worst_ratio": self.worst_ratio,
            "target": self.target or None,
            "passed": self.passed,
            "higher_is_better": self.higher_is_better,
            "note": self.note or None,
        }


@dataclass
class CaseReport:
    """Everything one case (B1..B8) produced: rows, extra series for the plot, profiles of misses.

    ``skipped`` (a reason) marks a case that could not run here and is not a failure (B8 without
    quixstreams); ``error`` marks a case that failed."""

    case: str
    title: str
    rows: list[Row] = field(default_factory=list)
    series: dict[str, Any] = field(default_factory=dict)
    profiles: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    skipped: str | None = None

    @property
    def missed(self) -> list[Row]:
        return [row for row in self.rows if row.passed is False]

    def to_json(self) -> dict[str, Any]:
        return {
            "case": self.case,
            "title": self.title,
            "rows": [row.to_json() for row in self.rows],
            "series": self.series,
            "profiles": self.profiles,
            "notes": self.notes,
            "error": self.error,
            "skipped": self.skipped,
        }


def say(message: str) -> None:
    """Progress on stderr (the table goes to stdout)."""
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------------
# Percentiles
# --------------------------------------------------------------------------------------------------------


def cpu_ms_per_1000(runs: list[dict[str, float]]) -> list[float]:
    """CPU milliseconds per 1,000 records of each run (``cpu_s`` over ``records``): the cost figure of B2 and B8."""
    return [1e6 * run["cpu_s"] / run["records"] for run in runs]


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (``fraction`` in [0, 1])."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, math.ceil(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def thin(values: list[Any], at_most: int) -> list[Any]:
    """At most ``at_most`` evenly spaced items of ``values``, always keeping the last (the maximum if sorted)."""
    if len(values) <= at_most:
        return list(values)
    step = len(values) / at_most
    kept = [values[int(i * step)] for i in range(at_most - 1)]
    return [*kept, values[-1]]


# --------------------------------------------------------------------------------------------------------
# Processes: CPU seconds and RSS from /proc (Linux)
# --------------------------------------------------------------------------------------------------------


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of ``pid`` (default: this process); 0.0 if it cannot be read."""
    try:
        with open(f"/proc/{pid or 'self'}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    # After the command name: state is field 3 (index 0 here), utime 14, stime 15 (1-based in proc(5)).
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss_bytes(pid: int | None = None) -> int:
    try:
        with open(f"/proc/{pid or 'self'}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except OSError:
        return 0


class SystemLoad:
    """CPU used on the whole machine during the run, and how much of it was not the bench's.

    The bench's own CPU: this process, its waited-for children, and any live pids passed to :meth:`stop`
    (the private broker). Everything else busy on the machine is *foreign* load that makes figures noisy.
    """

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.busy = self._busy_seconds()
        self.own = self._own_seconds()
        self.loadavg = os.getloadavg()

    @staticmethod
    def _busy_seconds() -> float:
        try:
            with open("/proc/stat") as stat:
                fields = [int(x) for x in stat.readline().split()[1:]]
        except OSError:
            return 0.0
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return (sum(fields[:8]) - idle) / _TICKS

    @staticmethod
    def _own_seconds() -> float:
        self_usage = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return self_usage.ru_utime + self_usage.ru_stime + children.ru_utime + children.ru_stime

    def stop(self, live_pids: list[int] | None = None, live_before: float = 0.0) -> dict[str, float]:
        wall = max(1e-6, time.monotonic() - self.started)
        busy = self._busy_seconds() - self.busy
        own = self._own_seconds() - self.own + sum(cpu_seconds(pid) for pid in live_pids or []) - live_before
        return {
            "wall_s": round(wall, 1),
            "machine_busy_cores": round(busy / wall, 2),
            "bench_cores": round(own / wall, 2),
            "foreign_cores": round(max(0.0, busy - own) / wall, 2),
            "loadavg_start": round(self.loadavg[0], 2),
            "loadavg_end": round(os.getloadavg()[0], 2),
        }


def machine_summary() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
    except OSError:
        pass
    import platform

    import aiokafka
    import msgspec

    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "kernel": platform.release(),
        "aiokafka": aiokafka.__version__,
        "msgspec": msgspec.__version__,
    }


# --------------------------------------------------------------------------------------------------------
# Profiles
# --------------------------------------------------------------------------------------------------------


def _area(filename: str) -> str:
    """Which part of the stack a profiled function belongs to (for the "where the time goes" summary)."""
    path = filename.replace("\\", "/")
    for marker, name in (
        ("/reducer/", "reducer (pure reduce)"),
        ("/schemas/", "schemas (codec)"),
        ("/services/processor/", "services.processor"),
        ("/services/sender/", "services.sender"),
        ("/tools/bench/", "bench harness"),
        ("/services/", "services (other)"),
        ("/aiokafka/", "aiokafka"),
        ("/kafka/", "aiokafka"),
        ("/structlog/", "logging (structlog)"),
        ("/logging/", "logging (stdlib)"),
        ("/prometheus_client/", "prometheus_client"),
        ("/httpx/", "httpx"),
        ("/httpcore/", "httpx"),
        ("/h11/", "httpx"),
        ("/asyncio/", "asyncio event loop"),
        ("/selectors.py", "asyncio event loop"),
    ):
        if marker in path:
            return name
    if path == "~" or path.startswith("<"):
        return "builtins (C: msgspec, dict, socket...)"
    return "other python"


def profile_summary(stats: pstats.Stats, *, top: int = 18, title: str = "") -> str:
    """Text: total time, time by area (tottime), then the top functions by tottime with cumtime."""
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in raw.values()) or 1e-9
    by_area: dict[str, float] = defaultdict(float)
    for (filename, _line, _name), entry in raw.items():
        by_area[_area(filename)] += entry[2]
    lines = []
    if title:
        lines.append(title)
    lines.append(f"profiled time {total:.2f} s (cProfile slows Python code, so shares matter, not seconds)")
    lines.append("time by area (own time):")
    for area, seconds in sorted(by_area.items(), key=lambda item: -item[1]):
        if seconds / total >= 0.005:
            lines.append(f"  {100 * seconds / total:5.1f} %  {area}")
    lines.append(f"top {top} functions by own time:")
    lines.append(f"  {'own %':>6} {'cum %':>6} {'calls':>9}  function")
    ranked = sorted(raw.items(), key=lambda item: -item[1][2])[:top]
    for (filename, line, name), entry in ranked:
        calls, tottime, cumtime = entry[1], entry[2], entry[3]
        where = _short(filename)
        label = f"{where}:{line}({name})" if line else f"{name}"
        lines.append(f"  {100 * tottime / total:6.1f} {100 * cumtime / total:6.1f} {calls:9d}  {label}")
    return "\n".join(lines)


def profile_file_summary(path: str | Path, **kwargs: Any) -> str:
    return profile_summary(pstats.Stats(str(path), stream=io.StringIO()), **kwargs)


def _short(filename: str) -> str:
    path = filename.replace("\\", "/")
    for marker in ("/site-packages/", _REPO, "/lib/python3"):
        if marker in path:
            tail = path.split(marker, 1)[1]
            return tail if marker != "/lib/python3" else "stdlib/" + tail.split("/", 1)[-1]
    cwd = os.getcwd().replace("\\", "/") + "/"
    return path[len(cwd) :] if path.startswith(cwd) else path
