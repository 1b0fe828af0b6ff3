"""Consumer lag, computed from the broker: shared by the ``lag`` CLI and :mod:`services.lag_monitor`.

For one consumer group and one topic partition::

    lag = end offset - committed offset

* **end offset** is the partition's *last stable offset* (read with ``isolation_level=read_committed``):
  the first offset of a still-open transaction, else the high watermark. Records of an open transaction
  are not counted as waiting, because no ``read_committed`` consumer can read them yet.
* **committed offset** is the group's committed offset (the next record the group will read). A group
  with no commit for a partition starts at the log-start offset (``auto_offset_reset=earliest`` in both
  services), so its lag is ``end - log start``; the ``committed`` column then shows ``-``.
* **consumer id, host, client id** name the group member the partition is assigned to now, read from
  ``DescribeGroups``; ``-`` when nobody owns it (group empty or rebalancing). Every replica has its own
  client id (``<role>-<host name>-<pid>``, :func:`services.config.instance_client_id`); a static member's
  consumer id starts with its ``group.instance.id``.
* **lag seconds** (``LAG-SECONDS``) is the age of the first record at or after the committed offset, by
  its timestamp: the oldest record the group has not finished (:mod:`services.freshness`); 0 when
  caught up. ``--serve PORT`` exports all of this to Prometheus (:mod:`services.lag_exporter`).

The table has ``kafka-consumer-groups --describe``'s columns (GROUP, TOPIC, PARTITION, CURRENT-OFFSET,
LOG-END-OFFSET, LAG, CONSUMER-ID, HOST, CLIENT-ID) with LAG-SECONDS after LAG, and shows ``-`` as the
CURRENT-OFFSET of a partition the group never committed. ``--list`` prints every consumer group of the
cluster, ``--members`` the members of the groups (``kafka-consumer-groups --describe --members``).

On a topic written with transactions (``events``), every committed transaction leaves one *commit marker*
record. A consumer that committed ``last record + 1`` is then 1 behind the end per partition even though
nothing is left to read; ``kafka-consumer-groups --describe`` shows the same. ``facts`` is written without
transactions, so the reducer's lag is exact and 0 when caught up.

CLI: ``lag`` (``python -m services.lag``); ``--help`` lists the flags and exit codes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import Final, TextIO

import msgspec
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.structs import TopicPartition

from services.cli import UsageError, command_parser, run_command
from services.config import KafkaSettings, ProcessorConfig, SenderConfig, add_config_arguments, load_config
from services.exitcodes import EXIT_FAILED, EXIT_OK
from services.freshness import age_s, head_timestamps
from services.kafka_errors import check_kafka_access

__all__ = [
    "GroupLag",
    "GroupMember",
    "LagReader",
    "PartitionLag",
    "default_groups",
    "main",
    "render_json",
    "render_members",
    "render_table",
]

HEAD_FETCH_BYTES: Final = 64 * 1024
"""Fetch size per partition when reading the first unfinished record (one record batch is always returned)."""

Groups = Mapping[str, Sequence[str]]
"""``{group id: [topic, ...]}``: which topics each group consumes."""


@dataclass(frozen=True)
class PartitionLag:
    """Lag of one group on one partition (see the module docstring for the definitions)."""

    group: str
    topic: str
    partition: int
    committed: int | None
    """Next offset the group will read; ``None`` when the group never committed on this partition."""
    end: int
    """Last stable offset of the partition."""
    lag: int
    consumer_id: str | None = None
    """Member id of the member that owns the partition now, if any (with its host and client id)."""
    host: str | None = None
    client_id: str | None = None
    age_s: float | None = None
    """Age in seconds of the oldest record the group has not finished (:mod:`services.freshness`): 0 when
    none is left, ``None`` when it could not be read in time."""


@dataclass(frozen=True)
class GroupMember:
    """One member of a consumer group, as ``DescribeGroups`` reports it."""

    group: str
    consumer_id: str
    host: str
    client_id: str
    partitions: list[tuple[str, int]] = field(default_factory=list)


@dataclass(frozen=True)
class GroupLag:
    """Every partition of every topic of one group, and the group's state (``Stable``, ``Empty``, ...)."""

    group: str
    state: str
    partitions: list[PartitionLag] = field(default_factory=list)
    missing_topics: list[str] = field(default_factory=list)
    """Topics the group should consume that the broker does not know."""
    members: list[GroupMember] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(p.lag for p in self.partitions)


class LagReader:
    """Reads committed offsets, end offsets and owners from the broker; one admin client and one consumer.

    Use as ``async with LagReader(kafka) as reader: groups = await reader.read({"group": ["topic"]})``.
    The consumer has no group and never commits: reading lag never changes it.
    """

    def __init__(self, kafka: KafkaSettings, *, client_id: str = "review-analytics-lag") -> None:
        self._admin = AIOKafkaAdminClient(**kafka.client_kwargs(client_id=client_id))
        self._consumer = AIOKafkaConsumer(
            **kafka.client_kwargs(client_id=client_id),
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            max_partition_fetch_bytes=HEAD_FETCH_BYTES,
        )

    async def start(self) -> None:
        try:
            await self._admin.start()
            await self._consumer.start()
        except BaseException:
            await self.close()  # a half-started client holds connections: stop both, or aiokafka warns
            raise

    async def close(self) -> None:
        try:
            await self._consumer.stop()
        finally:
            await self._admin.close()

    async def list_groups(self) -> list[str]:
        """Every consumer group the cluster knows, sorted (``kafka-consumer-groups --list``)."""
        return sorted({str(group[0]) for group in await self._admin.list_consumer_groups()})

    async def __aenter__(self) -> LagReader:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def read(self, groups: Groups) -> list[GroupLag]:
        """Lag of every group in ``groups``, in the order given; partitions sorted by (topic, partition)."""
        topics = sorted({topic for group_topics in groups.values() for topic in group_topics})
        partitions = await self._partitions(topics)
        all_tps = [TopicPartition(t, p) for t in topics for p in partitions.get(t, [])]
        ends: dict[TopicPartition, int] = await self._consumer.end_offsets(all_tps) if all_tps else {}
        starts: dict[TopicPartition, int] = await self._consumer.beginning_offsets(all_tps) if all_tps else {}
        result = []
        for group, group_topics in groups.items():
            tps = [TopicPartition(t, p) for t in sorted(set(group_topics)) for p in partitions.get(t, [])]
            committed = await self._committed(group, tps)
            state, members = await self.members(group)
            owners = {(topic, partition): member for member in members for topic, partition in member.partitions}
            heads = {tp: (max(committed.get(tp, starts[tp]), starts[tp]), ends[tp]) for tp in tps}
            ages = await self._ages(heads)
            rows = []
            for tp in tps:
                offset = committed.get(tp)
                end = ends[tp]
                reference = offset if offset is not None else starts[tp]
                owner = owners.get((tp.topic, tp.partition))
                rows.append(
                    PartitionLag(
                        group=group,
                        topic=tp.topic,
                        partition=tp.partition,
                        committed=offset,
                        end=end,
                        lag=max(0, end - reference),
                        consumer_id=owner.consumer_id if owner else None,
                        host=owner.host if owner else None,
                        client_id=owner.client_id if owner else None,
                        age_s=ages.get(tp),
                    )
                )
            missing = sorted({t for t in group_topics if t not in partitions})
            result.append(GroupLag(group=group, state=state, partitions=rows, missing_topics=missing, members=members))
        return result

    async def _ages(self, heads: dict[TopicPartition, tuple[int, int]]) -> dict[TopicPartition, float | None]:
        """Age of the first record in ``heads[tp] = (committed, end)``: 0 if none is there, ``None`` if unread."""
        found, unread = await head_timestamps(self._consumer, heads)
        now = time.time()
        return {tp: None if tp in unread else (age_s(found.get(tp), now) or 0.0) for tp in heads}

    async def dlq_depths(self, topics: Sequence[str]) -> dict[str, int]:
        """Offsets each existing topic of ``topics`` holds: end minus log-start offset, over its partitions."""
        partitions = await self._partitions(sorted(set(topics)))
        tps = [TopicPartition(t, p) for t, ps in partitions.items() for p in ps]
        if not tps:
            return {}
        ends = await self._consumer.end_offsets(tps)
        starts = await self._consumer.beginning_offsets(tps)
        depths = dict.fromkeys(partitions, 0)
        for tp in tps:
            depths[tp.topic] += max(0, ends[tp] - starts[tp])
        return depths

    async def _partitions(self, topics: list[str]) -> dict[str, list[int]]:
        if not topics:
            return {}
        described = await self._admin.describe_topics(topics)
        return {
            str(topic["topic"]): sorted(int(p["partition"]) for p in topic["partitions"])
            for topic in described
            if topic.get("error_code", 0) == 0 and topic["partitions"]
        }

    async def _committed(self, group: str, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        if not tps:
            return {}
        offsets = await self._admin.list_consumer_group_offsets(group, partitions=tps)
        return {tp: int(meta.offset) for tp, meta in offsets.items() if meta.offset is not None and meta.offset >= 0}

    async def members(self, group: str) -> tuple[str, list[GroupMember]]:
        """The group's state (``Stable``, ``Empty``, ``Dead`` for an unknown group, ...) and its members."""
        found: list[GroupMember] = []
        state = "Unknown"
        for response in await self._admin.describe_consumer_groups([group]):
            for described in response.groups:
                error_code, group_id, group_state, protocol_type, _protocol, members = described[:6]
                if error_code != 0 or group_id != group:
                    continue
                state = str(group_state) or "Unknown"
                if protocol_type != "consumer":
                    continue
                for member_id, client_id, client_host, _metadata, assignment in members:
                    partitions: list[tuple[str, int]] = []
                    if assignment:
                        with contextlib.suppress(Exception):  # an undecodable assignment only loses the columns
                            decoded = ConsumerProtocolMemberAssignment.decode(assignment)
                            partitions = sorted((tp.topic, tp.partition) for tp in decoded.partitions())
                    host = str(client_host).lstrip("/")
                    found.append(GroupMember(group, str(member_id), host, str(client_id), partitions))
        return state, sorted(found, key=lambda m: m.consumer_id)


# --------------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------------

_COLUMNS: Final = (
    "GROUP",
    "TOPIC",
    "PARTITION",
    "CURRENT-OFFSET",
    "LOG-END-OFFSET",
    "LAG",
    "CONSUMER-ID",
    "HOST",
    "CLIENT-ID",
)
_MEMBER_COLUMNS: Final = ("GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS")


def _aligned(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
    return ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in [columns, *rows]]


def render_table(groups: Sequence[GroupLag]) -> str:
    """One ``kafka-consumer-groups --describe`` table per group, each followed by its total."""
    blocks = []
    for group in groups:
        rows = [
            (
                p.group,
                p.topic,
                str(p.partition),
                "-" if p.committed is None else str(p.committed),
                str(p.end),
                str(p.lag),
                p.consumer_id or "-",
                p.host or "-",
                p.client_id or "-",
            )
            for p in group.partitions
        ]
        columns, cells = _with_age_column(_COLUMNS, rows, group.partitions)
        lines = [f"Consumer group '{group.group}' ({group.state})", *_aligned(columns, cells)]
        lines.extend(f"warning: topic {t!r} does not exist" for t in group.missing_topics)
        lines.append(f"TOTAL LAG {group.total}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def render_members(groups: Sequence[GroupLag]) -> str:
    """``kafka-consumer-groups --describe --members``: one line per member of each group."""
    blocks = []
    for group in groups:
        rows = [(m.group, m.consumer_id, m.host, m.client_id, str(len(m.partitions))) for m in group.members]
        lines = [f"Consumer group '{group.group}' ({group.state})"]
        lines.extend(_aligned(_MEMBER_COLUMNS, rows) if rows else ["(no active members)"])
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def _with_age_column(
    columns: Sequence[str], rows: Sequence[Sequence[str]], partitions: Sequence[PartitionLag]
) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """Insert ``LAG-SECONDS`` (:attr:`PartitionLag.age_s`, ``-`` when unread) after ``LAG``."""
    at = columns.index("LAG") + 1 if "LAG" in columns else len(columns)
    cells = ["-" if p.age_s is None else f"{p.age_s:.1f}" for p in partitions]
    return (
        (*columns[:at], "LAG-SECONDS", *columns[at:]),
        [(*row[:at], cell, *row[at:]) for row, cell in zip(rows, cells, strict=True)],
    )


def render_json(groups: Sequence[GroupLag]) -> str:
    """``{"groups": [{"group", "state", "total", "missing_topics", "partitions": [...], "members": [...]}]}``
    on one line."""
    payload = {"groups": [{**asdict(g), "total": g.total} for g in groups]}
    return msgspec.json.encode(payload).decode() + "\n"


# --------------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------------


class _ConnectionSettings(msgspec.Struct, kw_only=True, frozen=True):
    """Only the Kafka connection: flags ``--kafka-*``, variables ``KAFKA_*``."""

    kafka: KafkaSettings = msgspec.field(default_factory=KafkaSettings)


def default_groups(env: Mapping[str, str]) -> dict[str, list[str]]:
    """The groups the pipeline uses, from the same variables the services read.

    ``{PROCESSOR_GROUP_ID: [PROCESSOR_FACTS_TOPIC], SENDER_GROUP_ID: [SENDER_EVENTS_TOPIC]}``.
    """
    processor = load_config(ProcessorConfig, env=env)
    sender = load_config(SenderConfig, env=env)
    groups: dict[str, list[str]] = {processor.group_id: [processor.facts_topic]}
    groups.setdefault(sender.group_id, []).append(sender.events_topic)
    return groups


def _parse_group(text: str) -> tuple[str, list[str]]:
    group, sep, topics = text.partition(":")
    names = [t for t in topics.split(",") if t]
    if not group or not sep or not names:
        raise argparse.ArgumentTypeError(f"expected GROUP:TOPIC[,TOPIC...], got {text!r}")
    return group, names


DESCRIPTION = """\
Print the consumer lag of every consumer group the pipeline uses (the reducer on the facts topic,
the sender on the events topic), like `kafka-consumer-groups --describe`: one table per group with,
per partition, CURRENT-OFFSET (the committed offset; - if never committed), LOG-END-OFFSET, LAG and
the member that owns it (CONSUMER-ID, HOST, CLIENT-ID), then the group's total. Groups and topics come
from PROCESSOR_GROUP_ID, PROCESSOR_FACTS_TOPIC, SENDER_GROUP_ID and SENDER_EVENTS_TOPIC unless --group
is given."""

EPILOG = """\
lag = log-end offset (last stable offset) - committed offset, per partition. A group with no commit on a
partition counts from the partition's log-start offset (both services reset to earliest).
On 'events' (written in transactions) an idle, caught-up sender shows up to 1 per partition: the
commit marker of the last transaction.

With --max-lag, exit 1 means some group's total lag is above MAX (in --watch: on the last round).

examples:
  lag
  lag --json
  lag --watch 5
  lag --members
  lag --list
  lag --group review-analytics-reducer:facts --max-lag 0
  lag --serve 9103           # exporter for Prometheus (lag-exporter in compose)"""


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("lag", description=DESCRIPTION, epilog=EPILOG)
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--list", action="store_true", help="List every consumer group of the cluster and exit.")
    what.add_argument(
        "--members", action="store_true", help="Show the members of each group (consumer id, host, client id)."
    )
    parser.add_argument(
        "--group",
        action="append",
        type=_parse_group,
        metavar="GROUP:TOPIC[,TOPIC]",
        help="A group and the topics it consumes; repeat for several. Replaces the default groups.",
    )
    parser.add_argument("--json", action="store_true", help="Print one JSON object per round instead of tables.")
    parser.add_argument(
        "--watch",
        type=float,
        metavar="SECONDS",
        help="Print again every SECONDS until interrupted (Ctrl-C exits with the last round's code).",
    )
    parser.add_argument(
        "--max-lag",
        type=int,
        metavar="MAX",
        help="Exit 1 if any group's total lag is above MAX (for scripts and readiness gates).",
    )
    parser.add_argument(
        "--serve",
        type=int,
        metavar="PORT",
        help="Run as a Prometheus exporter on PORT instead of printing: lag in records and seconds per "
        "group and partition, and the dead-letter depths, read every --watch SECONDS (default 15).",
    )
    parser.add_argument(
        "--dlq-topic",
        action="append",
        metavar="TOPIC",
        help="With --serve: a dead-letter topic whose depth to export; repeat for several. Default: "
        "<PROCESSOR_FACTS_TOPIC>.dlq and SENDER_DLQ_TOPIC.",
    )
    add_config_arguments(parser, _ConnectionSettings)
    return parser


async def _run(
    kafka: KafkaSettings,
    groups: Groups,
    args: argparse.Namespace,
    out: TextIO,
    last_code: list[int],
) -> int:
    await check_kafka_access(kafka)
    async with LagReader(kafka) as reader:
        if args.list:
            names = await reader.list_groups()
            out.write(
                msgspec.json.encode({"groups": names}).decode() + "\n"
                if args.json
                else "".join(f"{n}\n" for n in names)
            )
            return EXIT_OK
        while True:
            result = await reader.read(groups)
            if args.json:
                out.write(render_json(result))
            else:
                out.write(render_members(result) if args.members else render_table(result))
            out.flush()
            over = args.max_lag is not None and any(g.total > args.max_lag for g in result)
            code = EXIT_FAILED if over else EXIT_OK
            last_code[:] = [code]
            if args.watch is None:
                return code
            await asyncio.sleep(args.watch)
            if not args.json:
                out.write("\n")


async def _main(args: argparse.Namespace, environ: Mapping[str, str], stdout: TextIO) -> int:
    if args.watch is not None and args.watch <= 0:
        raise UsageError("--watch must be a positive number of seconds")
    kafka = load_config(_ConnectionSettings, env=environ, args=args).kafka
    groups: dict[str, list[str]] = {}
    if args.group:
        for group, topics in args.group:
            groups.setdefault(group, []).extend(topics)
    elif not args.list:
        groups = default_groups(environ)
    if args.serve is not None:
        return await _serve(kafka, groups, args, environ)
    last_code = [EXIT_OK]
    try:
        return await _run(kafka, groups, args, stdout, last_code)
    except asyncio.CancelledError:  # Ctrl-C in --watch: asyncio.run cancels the main task
        return last_code[0]


def main(argv: Sequence[str] | None = None, *, env: Mapping[str, str] | None = None, out: TextIO | None = None) -> int:
    """Run the command; returns its exit code (:mod:`services.exitcodes`). ``env`` and ``out`` are for tests."""
    return run_command("lag", build_parser, _main, argv, env=env, out=out)


async def _serve(kafka: KafkaSettings, groups: Groups, args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """``--serve PORT``: :mod:`services.lag_exporter` (imported here: it builds on this module)."""
    from services import lag_exporter
    from services.logging import configure_logging

    configure_logging("lag-exporter")
    dlq_topics = args.dlq_topic or lag_exporter.default_dlq_topics(env)
    interval = args.watch or lag_exporter.DEFAULT_INTERVAL_S
    return await lag_exporter.serve(kafka, groups, dlq_topics, port=args.serve, interval_s=interval)


if __name__ == "__main__":
    sys.exit(main())
