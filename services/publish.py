"""``publish FILE``: load a facts JSON-lines file (one envelope per line, ``-`` for stdin) into Kafka.

Each line goes through the producer library, exactly as an app-server's facts do: it is checked with the
processor's own :func:`schemas.codec.decode_fact` (a line the reducer would dead-letter is refused here, with
its line number and reason, and not published), keyed by :func:`services.producer.envelope_key` (the root
thread id; the producer's fallback key for a fact with no thread) and handed to
:class:`services.producer.FactPublisher` (idempotent producer, ``acks=all``), which sends an ``Initialize``
to **every** partition of the topic (kcat cannot). The line's bytes are published as they are: its
``observed_at_ms`` and ``producer`` are kept.

Progress goes to stderr every ``--progress-every`` lines (JSON lines, like every log); the summary goes to
stdout. Exit 0 when every line was published and acknowledged; 1 when a line was refused or a send failed
(the others are still published); 2 for a missing file or bad usage; 3/4 when Kafka cannot be reached or
refuses the credentials.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Final, TextIO

import structlog

from schemas.codec import FactDecodeError, decode_fact
from services.cli import UsageError, command_parser, run_command
from services.config import ProcessorConfig, add_config_arguments, instance_client_id, load_config
from services.exitcodes import EXIT_FAILED, EXIT_OK
from services.producer import BROADCAST, FactPublisher, envelope_key

__all__ = ["PublishReport", "build_parser", "main", "publish_lines"]

BUFFER_FACTS: Final = 10_000
"""Facts buffered in the publisher before the reader waits for the broker's acknowledgements."""
REPORTED_REFUSALS: Final = 100
"""Refused lines reported one by one; beyond, they are only counted."""

log = structlog.get_logger("publish")


@dataclass
class PublishReport:
    """What one run did."""

    lines: int = 0
    published: int = 0
    """Facts handed to Kafka and acknowledged (an ``Initialize`` counts once, whatever the partitions)."""
    broadcasts: int = 0
    refused: collections.Counter[str] = field(default_factory=collections.Counter)
    """Refused lines by reason (a decode-error reason, or ``too_large``)."""
    failed: int = 0
    """Facts Kafka did not acknowledge."""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.refused and not self.failed

    def summary(self) -> str:
        refused = ", ".join(f"{reason}: {count}" for reason, count in sorted(self.refused.items())) or "none"
        return (
            f"read {self.lines} lines; published {self.published} facts ({self.broadcasts} Initialize broadcast "
            f"to every partition); refused {sum(self.refused.values())} ({refused}); failed {self.failed}; "
            f"{self.seconds:.1f}s"
        )


def _lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    for number, line in enumerate(stream, start=1):
        stripped = line.strip()
        if stripped:
            yield number, stripped


async def publish_lines(publisher: FactPublisher, stream: IO[bytes], *, progress_every: int = 100_000) -> PublishReport:
    """Publish every line of ``stream`` through ``publisher`` (started); see the module docstring.

    ``published`` and ``failed`` are filled in by the caller once the publisher is closed (every send settled)."""
    report = PublishReport()
    started = time.monotonic()
    for number, line in _lines(stream):
        report.lines += 1
        try:
            envelope = decode_fact(line)
        except FactDecodeError as error:
            _refused(report, number, error.reason, str(error))
            continue
        if publisher.buffered >= BUFFER_FACTS:
            await publisher.flush()
        key = envelope_key(envelope)
        refused_before = publisher.refused
        if publisher.publish_encoded(key, line):
            report.broadcasts += key is BROADCAST
        elif publisher.refused > refused_before:
            _refused(report, number, "too_large", "larger than one Kafka request")
        else:  # cannot happen: the buffer was flushed above
            _refused(report, number, "buffer_full", "the publisher's buffer is full")
        if report.lines % progress_every == 0:
            log.info("publish_progress", lines=report.lines, refused=sum(report.refused.values()))
    await publisher.flush()
    report.seconds = time.monotonic() - started
    return report


def _refused(report: PublishReport, line: int, reason: str, error: str) -> None:
    report.refused[reason] += 1
    if sum(report.refused.values()) <= REPORTED_REFUSALS:
        log.warning("line_refused", line=line, reason=reason, error=error[:300])


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "publish",
        description=(
            "Load a facts JSON-lines file (one fact envelope per line, as `replay` and tools/demo read) into the\n"
            "facts topic through the producer library: keyed by root thread, Initialize sent to every partition,\n"
            "each line checked as the reducer would (a refused line is reported with its number and reason)."
        ),
        epilog=(
            "examples:\n"
            "  publish tools/demo/sample_facts.jsonl\n"
            "  python -m tools.demo.generator --threads 1000 | publish - --progress-every 10000"
        ),
    )
    parser.add_argument("file", metavar="FILE", help="The JSON-lines file, or - for standard input.")
    parser.add_argument(
        "--progress-every", type=int, default=100_000, metavar="LINES", help="Log progress every LINES lines."
    )
    parser.add_argument(
        "--producer-id",
        default=None,
        help="Client id of the Kafka producer [default publish-<host>-<pid>]; the lines' producer ids are kept.",
    )
    add_config_arguments(parser, ProcessorConfig, title="pipeline settings", only=("kafka", "facts_topic"))
    return parser


@contextlib.contextmanager
def _open(path: str) -> Iterator[IO[bytes]]:
    if path == "-":
        yield sys.stdin.buffer
        return
    try:
        stream = open(path, "rb")  # noqa: SIM115  # closed below
    except OSError as error:
        raise UsageError(f"cannot read {path!r}: {error.strerror}") from error
    with stream:
        yield stream


async def _main(args: argparse.Namespace, env: Mapping[str, str], out: TextIO) -> int:
    if args.progress_every < 1:
        raise UsageError("--progress-every must be >= 1")
    config = load_config(ProcessorConfig, env=env, args=args)
    with _open(args.file) as stream:
        publisher = FactPublisher(
            kafka=config.kafka,
            topic=config.facts_topic,
            producer_id=args.producer_id or instance_client_id("publish"),
            buffer_size=BUFFER_FACTS,
        )
        try:
            await publisher.start()
            report = await publish_lines(publisher, stream, progress_every=args.progress_every)
        finally:
            with contextlib.suppress(Exception):
                await publisher.close()  # also when start() failed: its producer holds connections
        report.failed = publisher.failed
        report.published = publisher.published - publisher.failed
    out.write(report.summary() + "\n")
    return EXIT_OK if report.ok else EXIT_FAILED


def main(argv: Sequence[str] | None = None, *, env: Mapping[str, str] | None = None, out: TextIO | None = None) -> int:
    """Run the command; returns its exit code (:mod:`services.exitcodes`). ``env`` and ``out`` are for tests."""
    return run_command("publish", build_parser, _main, argv, env=env, out=out)


if __name__ == "__main__":
    sys.exit(main())
