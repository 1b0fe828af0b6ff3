"""``python -m services.dlq_replay``: publish dead letters back to the topic they came from after a fix.

Both dead-letter topics hold the original key and bytes plus the ``dlq.*`` headers of
:mod:`schemas.headers`: the processor writes a fact it cannot reduce to ``facts.dlq``
(:mod:`services.processor.deadletter`), the sender writes a row the endpoint refuses to ``events.dlq``
(with the row's own ``row-id`` and ``event-type`` headers). Once a fix is deployed (a reducer that accepts
the facts, an endpoint that accepts the rows), this tool:

1. reads the dead-letter topic with ``read_committed`` (no consumer group, nothing committed), per
   partition from ``--from-offset`` / ``--since`` up to ``--to-offset`` / ``--until`` or the end offset
   taken when the run starts (records dead-lettered during the run are left for the next run);
2. keeps the records whose ``dlq.reason`` is one of ``--reason`` (all when none is given);
3. re-publishes each record's original bytes with its original key to the source topic (``--to-topic``;
   by default the topic the dead-letter topic is named after, ``facts`` for ``facts.dlq``, ``events`` for
   ``events.dlq``), idempotent producer, ``acks=all``, with its own headers but without the ``dlq.*``
   ones: a replayed row keeps its ``row-id``, so the sender sends it with the same idempotency key. A
   keyed record goes where the key hashes, which is where it was first sent; a key-less record (a
   broadcast ``Initialize`` fact) goes back to the partition named by ``dlq.source.partition``;
4. prints the counts (scanned, matched, replayed, by reason and by partition).

Replaying is at least once: running it twice over the same range publishes the facts twice (the
reducer ignores most duplicates, but not all rows are idempotent). Note the offsets printed at the end
and start the next run after them. A fact that still fails goes to the dead-letter topic again, at a new
offset. ``--dry-run`` reads and counts without publishing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, TextIO

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from schemas.headers import DLQ_PREFIX, DLQ_REASON, DLQ_SOURCE_PARTITION, header
from schemas.topics import dead_letter_source, dead_letter_topic
from services.cli import UsageError, command_parser, run_command
from services.config import KafkaSettings, ProcessorConfig, add_config_arguments, load_config
from services.errors import ConfigError
from services.exitcodes import EXIT_OK
from services.kafka_errors import check_kafka_access

__all__ = ["ReplayPlan", "ReplayReport", "build_parser", "main", "replay"]


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


def _kept_headers(headers: Sequence[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    return [(key, value) for key, value in headers if not key.startswith(DLQ_PREFIX)]


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
    try:
        await admin.start()  # inside the try: a client whose start failed must be closed too
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
    await check_kafka_access(kafka)
    consumer = AIOKafkaConsumer(
        **kafka.client_kwargs(client_id=client_id),
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
    )
    producer: AIOKafkaProducer | None = None
    try:
        await consumer.start()  # inside the try: a client whose start failed must be stopped too
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
                    reason = header(headers, DLQ_REASON) or UNKNOWN_REASON
                    if plan.reasons and reason not in plan.reasons:
                        report.skipped_by_reason[reason] += 1
                        continue
                    report.matched += 1
                    report.by_reason[reason] += 1
                    if producer is None:
                        continue
                    partition = None
                    if record.key is None:
                        source = header(headers, DLQ_SOURCE_PARTITION)
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
Replay a dead-letter topic back into the topic it came from after a fix: read facts.dlq (or
--dlq-topic, e.g. events.dlq) from an offset or time, keep the records whose dlq.reason header is one
of --reason (all by default), and publish each record's original bytes with its original key and its
own headers (a row keeps its row-id) to the source topic (or --to-topic), without the dlq.* headers.
Prints the counts and, per partition, the offset to start the next run from."""

EPILOG = """\
--dlq-topic defaults to PROCESSOR_FACTS_TOPIC's dead-letter topic (<facts>.dlq); --to-topic to the
topic the dead-letter topic is named after (<topic>.dlq -> <topic>), else PROCESSOR_FACTS_TOPIC.
Replaying is at least once: do not replay the same range twice; use --from-offset with the
next_offsets printed by the previous run. Start with --dry-run to see what would be replayed.

examples:
  python -m services.dlq_replay --dry-run
  python -m services.dlq_replay --reason invalid --since 2025-06-01T00:00:00Z
  python -m services.dlq_replay --dlq-topic events.dlq --reason rejected --dry-run
  python -m services.dlq_replay --partition 3 --from-offset 1200 --to-offset 1300 --json"""


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("replay-dlq", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument(
        "--dlq-topic", help="Dead-letter topic to read: facts.dlq or events.dlq [default: <facts topic>.dlq]."
    )
    parser.add_argument(
        "--to-topic", help="Topic to publish to [default: <topic> for <topic>.dlq, else PROCESSOR_FACTS_TOPIC]."
    )
    parser.add_argument(
        "--reason",
        action="append",
        default=[],
        metavar="REASON",
        help="Replay only records with this dlq.reason (facts.dlq: undecodable, unsupported_version, invalid, "
        "oversized, ...; events.dlq: rejected, payload_too_large, malformed_record); repeat for several.",
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


async def _main(args: argparse.Namespace, environ: Mapping[str, str], stdout: TextIO) -> int:
    kafka = load_config(_ConnectionSettings, env=environ, args=args).kafka
    facts_topic = load_config(ProcessorConfig, env=environ).facts_topic
    dlq_topic = args.dlq_topic or dead_letter_topic(facts_topic)
    plan = ReplayPlan(
        dlq_topic=dlq_topic,
        to_topic=args.to_topic or dead_letter_source(dlq_topic) or facts_topic,
        reasons=frozenset(args.reason),
        partitions=frozenset(args.partition),
        from_offset=args.from_offset,
        to_offset=args.to_offset,
        since_ms=args.since,
        until_ms=args.until,
        dry_run=args.dry_run,
    )
    if plan.dlq_topic == plan.to_topic:
        raise UsageError(f"--dlq-topic and --to-topic are both {plan.dlq_topic!r}")
    report = await replay(kafka, plan)
    _print_report(report, plan, stdout, as_json=args.json)
    return EXIT_OK


def main(argv: Sequence[str] | None = None, *, env: Mapping[str, str] | None = None, out: TextIO | None = None) -> int:
    """Run the command; returns its exit code (:mod:`services.exitcodes`). ``env`` and ``out`` are for tests."""
    return run_command("replay-dlq", build_parser, _main, argv, env=env, out=out)


if __name__ == "__main__":
    sys.exit(main())
