"""``replay``: run the reducer over a file of facts, with no broker; rows out as JSON lines.

The offline twin of the Kafka processor (Kafka Streams' TopologyTestDriver idea): one
:class:`~schemas.state.PartitionState`, every fact in file order (``Initialize`` facts, whose
``thread_id`` is null, apply to it like any other), the same :func:`reducer.reduce`, and rows written
with the same encoder the processor uses (:func:`schemas.codec.encode_row`), so the output bytes are
the bytes the processor would publish.

Lines that do not decode are reported on stderr with their line number, the decode error's ``reason``
(``undecodable``, ``unsupported_version``, ``invalid``, ``oversized``) and msgspec's message, and skipped.
A fact that decodes but that the reducer cannot process is reported as ``unprocessable``. Blank lines are
ignored. Exit status is 0, or 1 with ``--strict`` when any line was reported; 2 for usage errors.

Usage::

    replay services/demo/sample_facts.jsonl --out rows.jsonl
    python -m services.demo.generator --threads 1000 | replay - --progress > rows.jsonl
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import IO, Final

from reducer import initial_state, reduce
from schemas.codec import FactDecodeError, decode_fact, encode_row
from schemas.events import Row

__all__ = ["ReplayStats", "main", "replay"]

WRITE_CHUNK_BYTES: Final = 1 << 16
"""Rows are buffered and written in chunks of about this many bytes."""
PROGRESS_CHECK_LINES: Final = 4096
"""How often (in lines) the progress clock is looked at."""


@dataclass
class ReplayStats:
    """What a replay did; :meth:`summary` renders it for stderr."""

    lines: int = 0
    facts: int = 0
    rows: int = 0
    rows_by_type: collections.Counter[str] = field(default_factory=collections.Counter)
    errors_by_reason: collections.Counter[str] = field(default_factory=collections.Counter)
    drops: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def errors(self) -> int:
        return sum(self.errors_by_reason.values())

    def progress(self) -> str:
        rate = self.lines / self.seconds if self.seconds > 0 else 0.0
        return f"replay: {self.lines} lines, {self.rows} rows, {self.errors} errors, {rate:,.0f} lines/s"

    def summary(self) -> str:
        lines = [
            f"replay: {self.lines} lines, {self.facts} facts, {self.rows} rows, {self.errors} errors "
            f"in {self.seconds:.2f} s",
            *_section("rows by event type", self.rows_by_type),
            *_section("errors by reason", self.errors_by_reason),
            *_section("drops by reason", self.drops),
        ]
        return "\n".join(lines)


def _section(title: str, counts: dict[str, int]) -> list[str]:
    if not counts:
        return [f"{title}: none"]
    width = max(len(name) for name in counts)
    return [f"{title}:", *(f"  {name:<{width}}  {counts[name]}" for name in sorted(counts))]


def replay(
    lines: Iterable[bytes],
    out: IO[bytes],
    *,
    err: IO[str],
    progress: bool = False,
    progress_interval_s: float = 1.0,
) -> ReplayStats:
    """Reduce every line of ``lines`` (JSON fact envelopes) and write the rows to ``out``.

    Decode and processing errors are reported on ``err`` and skipped; ``progress`` adds a progress
    line on ``err`` about every ``progress_interval_s`` seconds.
    """
    stats = ReplayStats()
    state = initial_state()
    tags: dict[type[Row], str] = {}
    rows_by_type = stats.rows_by_type
    errors_by_reason = stats.errors_by_reason
    pending: list[bytes] = []
    pending_bytes = 0
    started = time.perf_counter()
    next_progress = started + progress_interval_s
    number = 0

    for number, line in enumerate(lines, start=1):
        raw = line.rstrip(b"\r\n")
        if not raw or raw.isspace():
            continue
        try:
            envelope = decode_fact(raw)
        except FactDecodeError as exc:
            errors_by_reason[exc.reason] += 1
            err.write(f"line {number}: {exc.reason}: {exc}\n")
            continue
        try:
            state, rows = reduce(state, envelope)
        except Exception as exc:  # a reducer bug must not end a long replay; report like a bad line
            errors_by_reason["unprocessable"] += 1
            err.write(f"line {number}: unprocessable: {type(exc).__name__}: {exc}\n")
            continue
        stats.facts += 1
        for row in rows:
            tag = tags.get(type(row))
            if tag is None:
                tag = tags[type(row)] = str(type(row).__struct_config__.tag)
            rows_by_type[tag] += 1
            encoded = encode_row(row)
            pending.append(encoded)
            pending_bytes += len(encoded) + 1
        if pending_bytes >= WRITE_CHUNK_BYTES:
            _flush(out, pending)
            pending_bytes = 0
        if progress and number % PROGRESS_CHECK_LINES == 0:
            now = time.perf_counter()
            if now >= next_progress:
                stats.lines, stats.seconds = number, now - started
                stats.rows = sum(rows_by_type.values())
                err.write(stats.progress() + "\n")
                err.flush()
                next_progress = now + progress_interval_s
    _flush(out, pending)
    out.flush()
    stats.lines = number
    stats.rows = sum(rows_by_type.values())
    stats.drops = dict(state.drops)
    stats.seconds = time.perf_counter() - started
    return stats


def _flush(out: IO[bytes], pending: list[bytes]) -> None:
    if pending:
        pending.append(b"")  # trailing newline after the last row
        out.write(b"\n".join(pending))
        pending.clear()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="replay",
        description=(
            "Run the analytics reducer over a file of facts (JSON lines, one fact envelope per line) with no "
            "Kafka, and write the rows it emits as JSON lines, byte for byte what the processor would publish."
        ),
        epilog=(
            "Malformed lines are reported on stderr as 'line N: <reason>: <message>' and skipped. A summary "
            "(facts, rows by event type, errors, reducer drops by reason) is printed on stderr at the end. "
            "Exit status: 0; 1 with --strict if any line was reported; 2 on usage errors. "
            "Example: replay services/demo/sample_facts.jsonl --out rows.jsonl"
        ),
    )
    parser.add_argument("input", nargs="?", default="-", help="facts file, or - for stdin (default: -)")
    parser.add_argument("-o", "--out", default="-", metavar="FILE", help="rows file, or - for stdout (default: -)")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any line could not be decoded or processed")
    parser.add_argument(
        "--progress",
        action="store_true",
        help="print progress on stderr about once a second (the default when stderr is a terminal)",
    )
    parser.add_argument("--quiet", action="store_true", help="no summary on stderr (errors are still reported)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    err = sys.stderr
    progress = args.progress or err.isatty()
    try:
        source = sys.stdin.buffer if args.input == "-" else open(args.input, "rb")  # noqa: SIM115
    except OSError as exc:
        err.write(f"replay: cannot read {args.input}: {exc.strerror}\n")
        return 2
    try:
        sink = sys.stdout.buffer if args.out == "-" else open(args.out, "wb")  # noqa: SIM115
    except OSError as exc:
        err.write(f"replay: cannot write {args.out}: {exc.strerror}\n")
        source.close()
        return 2
    try:
        stats = replay(source, sink, err=err, progress=progress)
    except BrokenPipeError:
        # The reader of stdout went away (``replay ... | head``): stop quietly, like other CLI tools.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1 if args.strict else 0
    finally:
        if source is not sys.stdin.buffer:
            source.close()
        if sink is not sys.stdout.buffer:
            sink.close()
    if not args.quiet:
        err.write(stats.summary() + "\n")
    return 1 if args.strict and stats.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
