"""``replay``: run the reducer over a file of facts, with no broker; rows out as JSON lines.

The offline twin of the Kafka processor (Kafka Streams' TopologyTestDriver idea): one
:class:`~schemas.state.PartitionState`, every fact in file order (``Initialize`` facts, whose
``thread_id`` is null, apply to it like any other), the same :func:`reducer.reduce`, and rows written
with the same encoder the processor uses (:func:`schemas.codec.encode_row`), so the output bytes are
the bytes the processor would publish.

Every line goes through the processor's containment boundary (:mod:`reducer.boundary`), with the same
bounds, idle expiry and batch-end rules: a line the processor would dead-letter is reported on stderr with
its line number, the same ``reason`` (``undecodable``, ``invalid``, ``too_deep``, ``reducer_error``,
``state_too_large``, ...) and message, and skipped, whatever its bytes; replay goes on. Blank lines are
ignored. Exit status is 0, or 1 with ``--strict`` when any line was reported; 2 for usage errors (one JSON
error line, :mod:`services.cli`).

Usage::

    replay tools/demo/sample_facts.jsonl --out rows.jsonl
    python -m tools.demo.generator --threads 1000 | replay - --progress > rows.jsonl
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

import msgspec

from reducer.boundary import PartitionReducer
from reducer.limits import DEFAULT_LIMITS, Limits
from schemas.codec import FactDecodeError
from schemas.events import Row
from services.cli import UsageError, command_parser, run

__all__ = ["ReplayStats", "main", "replay"]

BATCH_LINES: Final = 1000
"""Lines reduced together: caps, idle expiry and the state budget apply at batch ends, as in the processor."""
DEFAULT_IDLE_TTL_MS: Final = 24 * 3600 * 1000
"""The processor's default ``PROCESSOR_IDLE_TTL_MS``."""
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
    idle_ttl_ms: int = DEFAULT_IDLE_TTL_MS,
    limits: Limits = DEFAULT_LIMITS,
    batch_lines: int = BATCH_LINES,
) -> ReplayStats:
    """Reduce every line of ``lines`` (JSON fact envelopes) and write the rows to ``out``.

    The lines go through the processor's containment boundary (:class:`reducer.boundary.PartitionReducer`)
    in batches of ``batch_lines``: a line it refuses (any bytes, a reducer error, a row or state too large)
    is reported on ``err`` with its line number and reason, and replay goes on. ``progress`` adds a progress
    line on ``err`` about every ``progress_interval_s`` seconds.
    """
    stats = ReplayStats()
    partition = PartitionReducer(idle_ttl_ms=idle_ttl_ms, limits=limits)
    tags: dict[type[Row], str] = {}
    rows_by_type = stats.rows_by_type
    errors_by_reason = stats.errors_by_reason
    started = time.perf_counter()
    next_progress = started + progress_interval_s
    number = 0
    batch: list[bytes] = []
    numbers: list[int] = []

    def run_batch() -> None:
        result = partition.run(batch)
        for refusal in result.refused:
            errors_by_reason[refusal.reason] += 1
            err.write(f"line {numbers[refusal.position]}: {refusal.reason}: {_describe(refusal.error)}\n")
        stats.facts += result.reduced
        pending: list[bytes] = []
        for row in result.rows:
            tag = tags.get(row.cls)
            if tag is None:
                tag = tags[row.cls] = str(row.cls.__struct_config__.tag)
            rows_by_type[tag] += 1
            pending.append(row.value)
        _flush(out, pending)
        batch.clear()
        numbers.clear()

    for number, line in enumerate(lines, start=1):
        raw = line.rstrip(b"\r\n")
        if not raw or raw.isspace():
            continue
        batch.append(raw)
        numbers.append(number)
        if len(batch) >= batch_lines:
            run_batch()
        if progress and number % PROGRESS_CHECK_LINES == 0:
            now = time.perf_counter()
            if now >= next_progress:
                stats.lines, stats.seconds = number, now - started
                stats.rows = sum(rows_by_type.values())
                err.write(stats.progress() + "\n")
                err.flush()
                next_progress = now + progress_interval_s
    if batch:
        run_batch()
    out.flush()
    stats.lines = number
    stats.rows = sum(rows_by_type.values())
    stats.drops = dict(partition.state.drops)
    stats.seconds = time.perf_counter() - started
    return stats


def _describe(error: BaseException) -> str:
    """A refusal's message: the decode error's own text, or the exception class and message."""
    if isinstance(error, FactDecodeError):
        return str(error)
    return f"{type(error).__name__}: {error}"


def _flush(out: IO[bytes], pending: list[bytes]) -> None:
    if pending:
        pending.append(b"")  # trailing newline after the last row
        out.write(b"\n".join(pending))
        pending.clear()


def _parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "replay",
        description=(
            "Run the analytics reducer over a file of facts (JSON lines, one fact envelope per line) with no "
            "Kafka, and write the rows it emits as JSON lines, byte for byte what the processor would publish."
        ),
        epilog=(
            "Malformed lines are reported on stderr as 'line N: <reason>: <message>' and skipped. A summary "
            "(facts, rows by event type, errors, reducer drops by reason) is printed on stderr at the end. "
            "With --strict, exit 1 if any line was reported.\n"
            "Example: replay tools/demo/sample_facts.jsonl --out rows.jsonl"
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
    parser.add_argument(
        "--idle-ttl-ms",
        type=_non_negative,
        default=DEFAULT_IDLE_TTL_MS,
        help="evict a thread family idle this long in fact time, like PROCESSOR_IDLE_TTL_MS (default: 24 h)",
    )
    parser.add_argument(
        "--max-record-bytes",
        type=_non_negative,
        default=DEFAULT_LIMITS.max_record_bytes,
        help="largest row or state record; the processor reads it from the broker "
        f"(default: {DEFAULT_LIMITS.max_record_bytes}, for Kafka's default max.message.bytes)",
    )
    return parser


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command (:mod:`services.cli`); returns its exit code."""
    return run("replay", lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    err = sys.stderr
    progress = args.progress or err.isatty()
    try:
        source = sys.stdin.buffer if args.input == "-" else open(args.input, "rb")  # noqa: SIM115
    except OSError as exc:
        raise UsageError(f"cannot read {args.input}: {exc.strerror}") from exc
    try:
        sink = sys.stdout.buffer if args.out == "-" else open(args.out, "wb")  # noqa: SIM115
    except OSError as exc:
        source.close()
        raise UsageError(f"cannot write {args.out}: {exc.strerror}") from exc
    try:
        limits = msgspec.structs.replace(DEFAULT_LIMITS, max_record_bytes=args.max_record_bytes)
        stats = replay(source, sink, err=err, progress=progress, idle_ttl_ms=args.idle_ttl_ms, limits=limits)
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
