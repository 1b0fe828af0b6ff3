"""``python -m services.dlq_replay``: publish dead-lettered facts back into ``facts`` after a fix.

The reducer writes a fact it cannot reduce to ``facts.dlq`` (:mod:`services.processor.deadletter`):
the original key and bytes, plus ``dlq.*`` headers (``dlq.reason``, ``dlq.exception``, ``dlq.message``,
``dlq.source.topic``, ``dlq.source.partition``, ``dlq.source.offset``). Once a new reducer that accepts
them is deployed, this tool:

1. reads the dead-letter topic with ``read_committed`` (no consumer group, nothing committed), per
   partition from ``--from-offset`` / ``--since`` up to ``--to-offset`` / ``--until`` or the end offset
   taken when the run starts (records dead-lettered during the run are left for the next run);
2. keeps the records whose ``dlq.reason`` is one of ``--reason`` (all when none is given);
3. re-publishes each record's original bytes with its original key to ``facts`` (idempotent producer,
   ``acks=all``), without the ``dlq.*`` headers. A keyed record goes where the key hashes, which is where
   the app-server's publisher sent it; a key-less record (a broadcast ``Initialize`` fact) goes back to
   the partition named by ``dlq.source.partition``;
4. prints the counts (scanned, matched, replayed, by reason and by partition).

Replaying is at least once: running it twice over the same range publishes the facts twice (the
reducer ignores most duplicates, but not all rows are idempotent). Note the offsets printed at the end
and start the next run after them. A fact that still fails goes to the dead-letter topic again, at a new
offset. ``--dry-run`` reads and counts without publishing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, TextIO

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from services.config import KafkaSettings, ProcessorConfig, add_config_arguments, load_config
from services.errors import ConfigError
from services.processor.topics import dead_letter_topic

__all__ = ["ReplayPlan", "ReplayReport", "build_parser", "main", "replay"]

EXIT_OK: Final = 0
EXIT_USAGE: Final = 2
EXIT_KAFKA_ERROR: Final = 3

DLQ_HEADER_PREFIX: Final = "dlq."
UNKNOWN_REASON: Final = "unknown"
_FETCH_TIMEOUT_MS: Final = 500
_STALL_LIMIT: Final = 40  # empty fetches in a row (~20 s) before giving up on a partition's end offset


@dataclass(frozen=True)
class ReplayPlan:
    """What to replay: source, destination, range and filter."""

    dlq_topic: str
    to_topic: str
    reasons: frozenset[str] = frozenset()
    """Only records with one of these ``dlq.reason`` values; empty: every record."""
    partitions: frozenset[int] = frozenset()
    """Only these partitions of the dead-letter topic; empty: all."""
    from_offset: int | None = None
    to_offset: int | None = None
    """Exclusive upper bound per partition."""
    since_ms: int | None = None
    until_ms: int | None = None
    """Exclusive upper bound on the dead-letter record's timestamp (when it was dead-lettered)."""
    dry_run: bool = False


@dataclass
class ReplayReport:
    """Counts of one run; ``next_offsets`` is where a later run should start, per partition."""

    scanned: int = 0
    matched: int = 0
    replayed: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    skipped_by_reason: Counter[str] = field(default_factory=Counter)
    by_partition: Counter[int] = field(default_factory=Counter)
    next_offsets: dict[int, int] = field(default_factory=dict)
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "scanned": self.scanned,
            "matched": self.matched,
            "replayed": self.replayed,
            "by_reason": dict(sorted(self.by_reason.items())),
            "skipped_by_reason": dict(sorted(self.skipped_by_reason.items())),
            "by_partition": {str(p): n for p, n in sorted(self.by_partition.items())},
            "next_offsets": {str(p): n for p, n in sorted(self.next_offsets.items())},
        }


def _header(headers: Sequence[tuple[str, bytes]], name: str) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("utf-8", "replace")
    return None


def _kept_headers(headers: Sequence[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    return [(key, value) for key, value in headers if not key.startswith(DLQ_HEADER_PREFIX)]


async def _start_offsets(consumer: AIOKafkaConsumer, tps: list[TopicPartition], plan: ReplayPlan) -> dict[Any, int]:
    starts: dict[TopicPartition, int] = dict(await consumer.beginning_offsets(tps))
    if plan.from_offset is not None:
        starts = {tp: max(start, plan.from_offset) for tp, start in starts.items()}
    if plan.since_ms is not None:
        found = await consumer.offsets_for_times({tp: plan.since_ms for tp in tps})
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            at = found.get(tp)
            starts[tp] = max(starts[tp], at.offset if at is not None else ends[tp])
    return starts


async def _partition_ids(kafka: KafkaSettings, topic: str, client_id: str) -> list[int]:
    admin = AIOKafkaAdminClient(**kafka.client_kwargs(client_id=client_id))
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if described.get("error_code", 0) != 0:
        return []
    return sorted(int(p["partition"]) for p in described["partitions"])


async def replay(
    kafka: KafkaSettings, plan: ReplayPlan, *, client_id: str = "review-analytics-dlq-replay"
) -> ReplayReport:
    """Replay ``plan`` (see the module docstring); returns the counts."""
    report = ReplayReport(dry_run=plan.dry_run)
    consumer = AIOKafkaConsumer(
        **kafka.client_kwargs(client_id=client_id),
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
    )
    producer: AIOKafkaProducer | None = None
    await consumer.start()
    try:
        available = await _partition_ids(kafka, plan.dlq_topic, client_id)
        if not available:
            raise ConfigError(f"dead-letter topic {plan.dlq_topic!r} does not exist: check --dlq-topic")
        chosen = sorted(p for p in available if not plan.partitions or p in plan.partitions)
        tps = [TopicPartition(plan.dlq_topic, p) for p in chosen]
        if not plan.dry_run:
            producer = AIOKafkaProducer(
                **kafka.client_kwargs(client_id=client_id), enable_idempotence=True, acks="all", linger_ms=5
            )
            await producer.start()
            target_partitions = await producer.partitions_for(plan.to_topic)
            if not target_partitions:
                raise ConfigError(f"target topic {plan.to_topic!r} does not exist: check --to-topic")
        consumer.assign(tps)
        starts = await _start_offsets(consumer, tps, plan)
        ends: dict[TopicPartition, int] = dict(await consumer.end_offsets(tps))
        if plan.to_offset is not None:
            ends = {tp: min(end, plan.to_offset) for tp, end in ends.items()}
        pending = set()
        for tp in tps:
            report.next_offsets[tp.partition] = starts[tp]
            if starts[tp] < ends[tp]:
                consumer.seek(tp, starts[tp])
                pending.add(tp)
            else:
                consumer.pause(tp)
        sends: list[asyncio.Future[Any]] = []
        stalls = 0
        while pending:
            before = {tp: await consumer.position(tp) for tp in pending}
            batches = await consumer.getmany(*pending, timeout_ms=_FETCH_TIMEOUT_MS, max_records=1000)
            for tp, records in batches.items():
                for record in records:
                    if record.offset >= ends[tp]:
                        break
                    if plan.until_ms is not None and record.timestamp >= plan.until_ms:
                        ends[tp] = record.offset  # dead-letter timestamps grow with the offset: stop here
                        break
                    report.next_offsets[tp.partition] = record.offset + 1
                    report.scanned += 1
                    headers = list(record.headers or ())
                    reason = _header(headers, "dlq.reason") or UNKNOWN_REASON
                    if plan.reasons and reason not in plan.reasons:
                        report.skipped_by_reason[reason] += 1
                        continue
                    report.matched += 1
                    report.by_reason[reason] += 1
                    if producer is None:
                        continue
                    partition = None
                    if record.key is None:
                        source = _header(headers, "dlq.source.partition")
                        if source is not None and source.isdigit() and int(source) in target_partitions:
                            partition = int(source)
                    sends.append(
                        await producer.send(
                            plan.to_topic,
                            record.value,
                            key=record.key,
                            partition=partition,
                            headers=_kept_headers(headers) or None,
                        )
                    )
                    report.by_partition[tp.partition] += 1
            moved = False
            for tp in list(pending):
                position = await consumer.position(tp)
                moved = moved or position != before[tp]
                if position >= ends[tp] or report.next_offsets[tp.partition] >= ends[tp]:
                    report.next_offsets[tp.partition] = ends[tp]  # past transaction markers too
                    pending.discard(tp)
                    consumer.pause(tp)
            stalls = 0 if moved else stalls + 1
            if stalls >= _STALL_LIMIT:
                raise TimeoutError(f"no progress reading partitions {sorted(tp.partition for tp in pending)}")
            if len(sends) >= 1000:
                await asyncio.gather(*sends)
                report.replayed += len(sends)
                sends.clear()
        if sends:
            await asyncio.gather(*sends)
            report.replayed += len(sends)
        return report
    finally:
        if producer is not None:
            await producer.stop()
        await consumer.stop()


# --------------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------------


class _ConnectionSettings(msgspec.Struct, kw_only=True, frozen=True):
    kafka: KafkaSettings = msgspec.field(default_factory=KafkaSettings)


def parse_time_ms(text: str) -> int:
    """Epoch milliseconds, or an ISO 8601 time (``2025-06-01T12:00:00Z``; no zone means UTC)."""
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected epoch milliseconds or ISO 8601, got {text!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


DESCRIPTION = """\
Replay a dead-letter topic back into the facts topic after a fix: read facts.dlq (or --dlq-topic)
from an offset or time, keep the records whose dlq.reason header is one of --reason (all by default),
and publish each record's original bytes with its original key to facts (or --to-topic), without the
dlq.* headers. Prints the counts and, per partition, the offset to start the next run from."""

EPILOG = """\
The topics default to PROCESSOR_FACTS_TOPIC and its dead-letter topic (<facts>.dlq).
Replaying is at least once: do not replay the same range twice; use --from-offset with the
next_offsets printed by the previous run. Start with --dry-run to see what would be replayed.

exit codes: 0 done (or dry run), 2 invalid arguments/configuration or a missing topic,
            3 the broker could not be reached or refused a request.

examples:
  python -m services.dlq_replay --dry-run
  python -m services.dlq_replay --reason invalid --since 2025-06-01T00:00:00Z
  python -m services.dlq_replay --partition 3 --from-offset 1200 --to-offset 1300 --json"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m services.dlq_replay",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dlq-topic", help="Dead-letter topic to read [default: <facts topic>.dlq].")
    parser.add_argument("--to-topic", help="Topic to publish to [default: PROCESSOR_FACTS_TOPIC, i.e. facts].")
    parser.add_argument(
        "--reason",
        action="append",
        default=[],
        metavar="REASON",
        help="Replay only records with this dlq.reason (undecodable, unsupported_version, invalid, oversized, ...); "
        "repeat for several.",
    )
    parser.add_argument(
        "--partition", action="append", type=_non_negative, default=[], help="Only this partition; repeatable."
    )
    parser.add_argument("--from-offset", type=_non_negative, help="First offset to read, in every chosen partition.")
    parser.add_argument("--to-offset", type=_non_negative, help="Stop before this offset, in every chosen partition.")
    parser.add_argument(
        "--since", type=parse_time_ms, metavar="TIME", help="Records dead-lettered at or after TIME (ms or ISO 8601)."
    )
    parser.add_argument("--until", type=parse_time_ms, metavar="TIME", help="Records dead-lettered before TIME.")
    parser.add_argument("--dry-run", action="store_true", help="Read and count, publish nothing.")
    parser.add_argument("--json", action="store_true", help="Print the counts as one JSON object.")
    add_config_arguments(parser, _ConnectionSettings)
    return parser


def _print_report(report: ReplayReport, plan: ReplayPlan, out: TextIO, *, as_json: bool) -> None:
    if as_json:
        out.write(msgspec.json.encode(report.as_dict()).decode() + "\n")
        return
    verb = "would replay" if report.dry_run else "replayed"
    done = report.matched if report.dry_run else report.replayed
    out.write(
        f"{plan.dlq_topic} -> {plan.to_topic}: scanned {report.scanned}, matched {report.matched}, {verb} {done}\n"
    )
    for reason, count in sorted(report.by_reason.items()):
        out.write(f"  reason {reason}: {count}\n")
    for reason, count in sorted(report.skipped_by_reason.items()):
        out.write(f"  skipped (reason {reason}): {count}\n")
    offsets = " ".join(f"{p}:{o}" for p, o in sorted(report.next_offsets.items()))
    out.write(f"next offsets (partition:offset): {offsets}\n")


def main(argv: Sequence[str] | None = None, *, env: Mapping[str, str] | None = None, out: TextIO | None = None) -> int:
    """Run the CLI; returns the exit code. ``env`` and ``out`` are for tests."""
    parser = build_parser()
    args = parser.parse_args(argv)
    environ = os.environ if env is None else env
    stdout = sys.stdout if out is None else out
    try:
        kafka = load_config(_ConnectionSettings, env=environ, args=args).kafka
        facts_topic = load_config(ProcessorConfig, env=environ).facts_topic
    except ConfigError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    plan = ReplayPlan(
        dlq_topic=args.dlq_topic or dead_letter_topic(facts_topic),
        to_topic=args.to_topic or facts_topic,
        reasons=frozenset(args.reason),
        partitions=frozenset(args.partition),
        from_offset=args.from_offset,
        to_offset=args.to_offset,
        since_ms=args.since,
        until_ms=args.until,
        dry_run=args.dry_run,
    )
    if plan.dlq_topic == plan.to_topic:
        print(f"{parser.prog}: error: --dlq-topic and --to-topic are both {plan.dlq_topic!r}", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = asyncio.run(replay(kafka, plan))
    except ConfigError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (KafkaError, OSError, TimeoutError) as exc:
        print(f"{parser.prog}: error: replay failed: {exc!r}", file=sys.stderr)
        return EXIT_KAFKA_ERROR
    _print_report(report, plan, stdout, as_json=args.json)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
