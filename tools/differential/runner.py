"""Run our reducer and the Rust oracle over one stream of fact envelopes and compare their rows.

Our side is :func:`reducer.reduce` over the envelopes in order with one state, as ``replay`` runs it.
The oracle's side is the real ``AnalyticsReducer`` (tools/rust-oracle), one reducer per producer: ids
are unique only inside one app-server process, and each producer is one process. Its facts are sent
in their stream order, producers separated by blank lines (which reset the oracle).
"""

from __future__ import annotations

import collections
import json
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reducer import initial_state, reduce
from schemas.codec import FactDecodeError, decode_fact, encode_row
from tools.differential.compare import Difference, fact_differences
from tools.differential.convert import ConversionError, to_neutral
from tools.differential.documented import Accepted, reason_for


@dataclass
class OracleResult:
    events: list[Any] | None = None
    error: str | None = None


@dataclass
class Report:
    facts: int = 0
    facts_compared: int = 0
    our_decode_errors: collections.Counter[str] = field(default_factory=collections.Counter)
    conversion_errors: collections.Counter[str] = field(default_factory=collections.Counter)
    rows_compared: int = 0
    rows_identical: int = 0
    rows_accepted: int = 0
    rows_by_type: collections.Counter[str] = field(default_factory=collections.Counter)
    accepted: collections.Counter[tuple[str, str, str]] = field(default_factory=collections.Counter)
    undocumented: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    examples: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def rows_different(self) -> int:
        return self.rows_compared - self.rows_identical - self.rows_accepted

    @property
    def ok(self) -> bool:
        return not self.undocumented and not self.conversion_errors and not self.our_decode_errors

    def merge(self, other: Report) -> None:
        for name in ("facts", "facts_compared", "rows_compared", "rows_identical", "rows_accepted"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("our_decode_errors", "conversion_errors", "rows_by_type", "accepted", "undocumented"):
            getattr(self, name).update(getattr(other, name))
        for key, index in other.examples.items():
            self.examples.setdefault(key, index)

    def summary(self) -> str:
        identity = (
            100.0 * (self.rows_identical + self.rows_accepted) / self.rows_compared if self.rows_compared else 100.0
        )
        lines = [
            f"facts: {self.facts}, compared: {self.facts_compared}, our decode errors: "
            f"{sum(self.our_decode_errors.values())}, oracle conversion errors: {sum(self.conversion_errors.values())}",
            f"rows compared: {self.rows_compared}, identical: {self.rows_identical}, identical apart from documented "
            f"differences: {self.rows_accepted}, different: {self.rows_different} ({identity:.3f} % identity)",
        ]
        if self.accepted:
            lines.append("documented differences (reason | event_type | field: count):")
            lines += [f"  {r} | {t} | {f}: {n}" for (r, t, f), n in sorted(self.accepted.items())]
        if self.undocumented:
            lines.append("UNDOCUMENTED differences (event_type | field: count, first fact index):")
            lines += [
                f"  {t} | {f}: {n} (fact {self.examples[(t, f)]})" for (t, f), n in sorted(self.undocumented.items())
            ]
        if self.conversion_errors:
            lines.append("oracle conversion errors (count):")
            lines += [f"  {n}  {e}" for e, n in self.conversion_errors.most_common(20)]
        if self.our_decode_errors:
            lines.append("our decode errors (count):")
            lines += [f"  {n}  {e}" for e, n in self.our_decode_errors.most_common(20)]
        return "\n".join(lines)


def run_ours(envelopes: Sequence[bytes]) -> list[list[Any] | str]:
    """Rows of each envelope as parsed JSON (key order kept), or the decode error's reason."""
    state = initial_state()
    out: list[list[Any] | str] = []
    for raw in envelopes:
        try:
            envelope = decode_fact(raw)
        except FactDecodeError as exc:
            out.append(f"{exc.reason}: {exc}")
            continue
        state, rows = reduce(state, envelope)
        out.append([json.loads(encode_row(row)) for row in rows])
    return out


def run_oracle(binary: Path, envelopes: Sequence[bytes]) -> list[OracleResult]:
    """The oracle's result for each envelope; one fresh oracle reducer per producer."""
    results = [OracleResult() for _ in envelopes]
    by_producer: dict[str, list[int]] = collections.defaultdict(list)
    neutral: dict[int, str] = {}
    for index, raw in enumerate(envelopes):
        try:
            envelope = json.loads(raw)
            neutral[index] = json.dumps(to_neutral(envelope), separators=(",", ":"))
        except (ValueError, ConversionError) as exc:
            results[index].error = f"not convertible: {exc}"
            continue
        by_producer[str(envelope.get("producer"))].append(index)
    order = [index for indices in by_producer.values() for index in indices]
    text = "\n\n".join("\n".join(neutral[i] for i in indices) for indices in by_producer.values()) + "\n"
    completed = subprocess.run([str(binary)], input=text.encode(), capture_output=True, check=True)
    lines = completed.stdout.decode().splitlines()
    if len(lines) != len(order):
        raise RuntimeError(f"oracle answered {len(lines)} lines for {len(order)} facts")
    for index, line in zip(order, lines, strict=True):
        answer = json.loads(line)
        if "error" in answer:
            results[index].error = str(answer["error"])
        else:
            results[index].events = answer["events"]
    return results


def _error_class(message: str) -> str:
    """Group conversion errors by their message without positions and values."""
    head = message.split(" at line ")[0]
    return head[:160]


def compare(envelopes: Sequence[bytes], binary: Path, table: list[Accepted]) -> Report:
    """Run both reducers over ``envelopes`` and compare."""
    return compare_results(envelopes, run_oracle(binary, envelopes), table)


def compare_results(envelopes: Sequence[bytes], theirs: Sequence[OracleResult], table: list[Accepted]) -> Report:
    """Run our reducer over ``envelopes`` and compare with the oracle's results ``theirs`` (e.g. a corpus)."""
    report = Report(facts=len(envelopes))
    ours = run_ours(envelopes)
    for index, (our_rows, oracle) in enumerate(zip(ours, theirs, strict=True)):
        if isinstance(our_rows, str):
            report.our_decode_errors[our_rows.split(":")[0]] += 1
            continue
        if oracle.events is None:
            report.conversion_errors[_error_class(oracle.error or "")] += 1
            continue
        report.facts_compared += 1
        for row in oracle.events:
            report.rows_by_type[str(row.get("event_type"))] += 1
        compared, identical, found = fact_differences(our_rows, oracle.events)
        report.rows_compared += compared
        report.rows_identical += identical
        for differences in found:
            reasons = [reason_for(table, difference) for difference in differences]
            if all(reason is not None for reason in reasons):
                report.rows_accepted += 1
            for difference, reason in zip(differences, reasons, strict=True):
                _count(report, index, difference, reason)
    return report


def _count(report: Report, index: int, difference: Difference, reason: str | None) -> None:
    if reason is None:
        key = (difference.event_type, difference.field)
        report.undocumented[key] += 1
        report.examples.setdefault(key, index)
    else:
        report.accepted[(reason, difference.event_type, difference.field)] += 1


def read_envelopes(lines: Iterable[bytes]) -> list[bytes]:
    return [line.rstrip(b"\r\n") for line in lines if line.strip()]
