"""Consumer lag, computed from the broker: shared by the ``lag`` CLI and :mod:`services.lag_monitor`.

For one consumer group and one topic partition::

    lag = end offset - committed offset

* **end offset** is the partition's *last stable offset* (read with ``isolation_level=read_committed``):
  the first offset of a still-open transaction, else the high watermark. Records of an open transaction
  are not counted as waiting, because no ``read_committed`` consumer can read them yet.
* **committed offset** is the group's committed offset (the next record the group will read). A group
  with no commit for a partition starts at the log-start offset (``auto_offset_reset=earliest`` in both
  services), so its lag is ``end - log start``; the ``committed`` column then shows ``-``.
* **owner** is the client id (and host) of the group member the partition is assigned to now, read from
  ``DescribeGroups``; ``-`` when nobody owns it (group empty or rebalancing).

On a topic written with transactions (``events``), every committed transaction leaves one *commit marker*
record. A consumer that committed ``last record + 1`` is then 1 behind the end per partition even though
nothing is left to read; ``kafka-consumer-groups --describe`` shows the same. ``facts`` is written without
transactions, so the reducer's lag is exact and 0 when caught up.

CLI: ``python -m services.lag`` (also installed as ``lag``); ``--help`` lists the flags and exit codes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import Final, TextIO

import msgspec
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from services.config import KafkaSettings, ProcessorConfig, SenderConfig, add_config_arguments, load_config
from services.errors import ConfigError

__all__ = [
    "EXIT_KAFKA_ERROR",
    "EXIT_LAG_ABOVE_MAX",
    "EXIT_OK",
    "EXIT_USAGE",
    "GroupLag",
    "LagReader",
    "PartitionLag",
    "default_groups",
    "main",
    "render_json",
    "render_table",
]

EXIT_OK: Final = 0
EXIT_LAG_ABOVE_MAX: Final = 1
EXIT_USAGE: Final = 2
EXIT_KAFKA_ERROR: Final = 3

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
    owner: str | None = None
    """``client_id@host`` of the member that owns the partition now, if any."""


@dataclass(frozen=True)
class GroupLag:
    """Every partition of every topic of one group, and the group's state (``Stable``, ``Empty``, ...)."""

    group: str
    state: str
    partitions: list[PartitionLag] = field(default_factory=list)
    missing_topics: list[str] = field(default_factory=list)
    """Topics the group should consume that the broker does not know."""

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
        )

    async def start(self) -> None:
        await self._admin.start()
        try:
            await self._consumer.start()
        except BaseException:
            await self._admin.close()
            raise

    async def close(self) -> None:
        try:
            await self._consumer.stop()
        finally:
            await self._admin.close()

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
            state, owners = await self._owners(group)
            rows = []
            for tp in tps:
                offset = committed.get(tp)
                end = ends[tp]
                reference = offset if offset is not None else starts[tp]
                rows.append(
                    PartitionLag(
                        group=group,
                        topic=tp.topic,
                        partition=tp.partition,
                        committed=offset,
                        end=end,
                        lag=max(0, end - reference),
                        owner=owners.get(tp),
                    )
                )
            missing = sorted({t for t in group_topics if t not in partitions})
            result.append(GroupLag(group=group, state=state, partitions=rows, missing_topics=missing))
        return result

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

    async def _owners(self, group: str) -> tuple[str, dict[TopicPartition, str]]:
        """The group's state and ``{partition: "client_id@host"}`` of its current members."""
        owners: dict[TopicPartition, str] = {}
        state = "Unknown"
        for response in await self._admin.describe_consumer_groups([group]):
            for described in response.groups:
                error_code, group_id, group_state, protocol_type, _protocol, members = described[:6]
                if error_code != 0 or group_id != group:
                    continue
                state = str(group_state) or "Unknown"
                if protocol_type != "consumer":
                    continue
                for _member_id, client_id, client_host, _metadata, assignment in members:
                    if not assignment:
                        continue
                    with contextlib.suppress(Exception):  # an undecodable assignment only loses the owner column
                        decoded = ConsumerProtocolMemberAssignment.decode(assignment)
                        for tp in decoded.partitions():
                            owners[tp] = f"{client_id}@{str(client_host).lstrip('/')}"
        return state, owners


# --------------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------------

_COLUMNS: Final = ("GROUP", "TOPIC", "PARTITION", "COMMITTED", "END", "LAG", "OWNER")


def render_table(groups: Sequence[GroupLag]) -> str:
    """One ``kafka-consumer-groups --describe``-like table per group, each followed by its total."""
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
                p.owner or "-",
            )
            for p in group.partitions
        ]
        widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(_COLUMNS)]
        lines = [f"Consumer group '{group.group}' ({group.state})"]
        lines.append("  ".join(c.ljust(w) for c, w in zip(_COLUMNS, widths, strict=True)).rstrip())
        lines.extend("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows)
        lines.extend(f"warning: topic {t!r} does not exist" for t in group.missing_topics)
        lines.append(f"TOTAL LAG {group.total}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def render_json(groups: Sequence[GroupLag]) -> str:
    """``{"groups": [{"group", "state", "total", "missing_topics", "partitions": [...]}]}`` on one line."""
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
the sender on the events topic): one table per group with, per partition, the committed offset, the
end offset, the lag and the member that owns it, then the group's total, like
`kafka-consumer-groups --describe`. Groups and topics come from PROCESSOR_GROUP_ID,
PROCESSOR_FACTS_TOPIC, SENDER_GROUP_ID and SENDER_EVENTS_TOPIC unless --group is given."""

EPILOG = """\
lag = end offset (last stable offset) - committed offset, per partition. A group with no commit on a
partition counts from the partition's log-start offset (both services reset to earliest).
On 'events' (written in transactions) an idle, caught-up sender shows up to 1 per partition: the
commit marker of the last transaction.

exit codes:
  0  lag printed (and, with --max-lag, every group's total lag is at most MAX)
  1  --max-lag given and some group's total lag is above it (in --watch: on the last round)
  2  invalid arguments or configuration
  3  the broker could not be reached or refused a request

examples:
  python -m services.lag
  python -m services.lag --json
  python -m services.lag --watch 5
  python -m services.lag --group review-analytics-reducer:facts --max-lag 0"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m services.lag",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    add_config_arguments(parser, _ConnectionSettings)
    return parser


async def _run(
    kafka: KafkaSettings,
    groups: Groups,
    *,
    as_json: bool,
    watch: float | None,
    max_lag: int | None,
    out: TextIO,
    last_code: list[int],
) -> int:
    async with LagReader(kafka) as reader:
        while True:
            result = await reader.read(groups)
            out.write(render_json(result) if as_json else render_table(result))
            out.flush()
            code = EXIT_LAG_ABOVE_MAX if max_lag is not None and any(g.total > max_lag for g in result) else EXIT_OK
            last_code[:] = [code]
            if watch is None:
                return code
            await asyncio.sleep(watch)
            if not as_json:
                out.write("\n")


def main(argv: Sequence[str] | None = None, *, env: Mapping[str, str] | None = None, out: TextIO | None = None) -> int:
    """Run the CLI; returns the exit code (see ``--help``). ``env`` and ``out`` are for tests."""
    parser = build_parser()
    args = parser.parse_args(argv)
    environ = os.environ if env is None else env
    stdout = sys.stdout if out is None else out
    if args.watch is not None and args.watch <= 0:
        parser.exit(EXIT_USAGE, f"{parser.prog}: error: --watch must be a positive number of seconds\n")
    try:
        kafka = load_config(_ConnectionSettings, env=environ, args=args).kafka
        groups: dict[str, list[str]] = {}
        if args.group:
            for group, topics in args.group:
                groups.setdefault(group, []).extend(topics)
        else:
            groups = default_groups(environ)
    except ConfigError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    last_code = [EXIT_OK]
    try:
        return asyncio.run(
            _run(
                kafka,
                groups,
                as_json=args.json,
                watch=args.watch,
                max_lag=args.max_lag,
                out=stdout,
                last_code=last_code,
            )
        )
    except KeyboardInterrupt:
        return last_code[0]
    except (KafkaError, OSError, TimeoutError) as exc:
        print(f"{parser.prog}: error: cannot read lag from {kafka.bootstrap_servers}: {exc!r}", file=sys.stderr)
        return EXIT_KAFKA_ERROR


if __name__ == "__main__":
    sys.exit(main())
