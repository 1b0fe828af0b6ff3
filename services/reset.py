"""``reset``: rewind (or skip) the reducer group's input offsets, with its changelog state to match.

The analogue of ``kafka-streams-application-reset`` for the reducer. The reducer's progress is two things
written in one transaction per input partition P (:mod:`services.processor.transaction`): the group's
committed offset on ``facts``-P and the state in changelog partition P (plus its ``o:`` copy of the offset).
They must move together: a rewound offset with the current state would reduce the same facts twice into
a state that already holds them. So ``reset`` writes, per partition and **in one transaction** with the
processor's own transactional id (which fences any zombie producer of the partition first):

* the new committed offset (``send_offsets_to_transaction``, as the processor commits);
* the state **as of that offset** to the changelog: the records of the new state, tombstones for every key
  of the old state that the new one lacks, and the ``o:`` record.

The state as of offset X is defined as what the reducer computes from the partition's log-start offset up
to X, in batches of ``PROCESSOR_MAX_BATCH_RECORDS`` through the same containment boundary
(:class:`reducer.boundary.PartitionReducer`, the same bounds and idle TTL read from the ``PROCESSOR_*``
variables). So:

=================  ===================================  ==============================================
target             new offset                           new state
=================  ===================================  ==============================================
``--to-earliest``  the log-start offset                 empty (tombstones for every key)
``--to-offset N``  N (clamped to [log start, end])      rebuilt from the facts [log start, N)
``--to-datetime``  first offset at or after the time    rebuilt from the facts [log start, offset)
``--to-latest``    the end offset                       rebuilt from every fact (skips the backlog's rows)
=================  ===================================  ==============================================

A partition whose target equals its committed offset is left unchanged. When retention has deleted the
start of the partition (log start > 0), "as of X" means from the oldest fact still there; ``reset`` says
so in its plan. The rebuilt state equals the one the processor held only up to batch boundaries: caps,
idle expiry and the state budget apply at batch ends, and the processor's batches depended on timing.

What ``reset`` does not do: it does not touch ``events``. After a rewind the reducer publishes the rows of
the re-reduced facts again, with the same row ids (``<facts>-<partition>-<offset>-<n>``), and the sender
delivers them again: the endpoint sees them at least twice. It refuses to run while the group has active
members (stop every processor replica first; a static member's session must have expired, or it must have
been removed) and ``--dry-run`` prints the plan without writing anything.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, TextIO

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from reducer.boundary import PartitionReducer
from reducer.limits import Limits
from reducer.snapshot import snapshot
from schemas.topics import changelog_topic, dead_letter_topic
from services.cli import UsageError, command_parser, run_command, start_client
from services.config import ProcessorConfig, add_config_arguments, instance_client_id, load_config
from services.exitcodes import EXIT_FAILED, EXIT_OK
from services.lag import LagReader
from services.processor.broker_limits import read_broker_limits
from services.processor.partition import INPUT_OFFSET_KEY, restore_consumer, restore_states
from services.processor.topics import transactional_id
from services.processor.transaction import Record, send_batched

__all__ = ["PartitionPlan", "build_parser", "main", "plan_reset"]

ACTIVE_STATES: Final = frozenset({"Stable", "PreparingRebalance", "CompletingRebalance"})

log = structlog.get_logger("reset")


@dataclass(frozen=True)
class PartitionPlan:
    """What ``reset`` does to one input partition."""

    partition: int
    log_start: int
    end: int
    current: int | None
    """The group's committed offset now (``None``: never committed)."""
    target: int

    @property
    def action(self) -> str:
        if self.target == self.current:
            return "unchanged"
        if self.target == self.log_start:
            return "empty state"
        return f"rebuild state from {self.target - self.log_start} facts"


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "reset",
        description=(
            "Rewind (or skip) the reducer group's offsets on the facts topic and rewrite its changelog to the\n"
            "state as of the new offsets, like kafka-streams-application-reset. Stop every processor first."
        ),
        epilog=(
            "The state as of offset X is the reducer's state after the facts [log start, X): empty for\n"
            "--to-earliest, rebuilt by reducing those facts otherwise. Rows are not removed from 'events':\n"
            "re-reduced facts publish their rows again (same row ids). docs/operations.md#reset\n\n"
            "examples:\n"
            "  reset --to-earliest --dry-run\n"
            "  reset --to-datetime 2026-01-31T00:00:00Z --partition 3\n"
            "  reset --to-offset 120000"
        ),
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--to-earliest", action="store_true", help="Every fact again, from an empty state.")
    target.add_argument("--to-latest", action="store_true", help="Skip every unreduced fact (state rebuilt).")
    target.add_argument("--to-offset", type=int, metavar="N", help="Offset N on every chosen partition.")
    target.add_argument(
        "--to-datetime",
        type=_timestamp_ms,
        metavar="ISO-8601",
        help="The first fact at or after this time (e.g. 2026-01-31T00:00:00Z; no zone means UTC).",
    )
    parser.add_argument(
        "--partition", type=int, action="append", metavar="P", help="Only partition P (repeatable); default all."
    )
    parser.add_argument("--dry-run", action="store_true", help="Print the plan; write nothing.")
    add_config_arguments(
        parser,
        ProcessorConfig,
        title="pipeline settings (shared with the processor)",
        only=("kafka", "facts_topic", "events_topic", "group_id", "transactional_id_prefix"),
    )
    return parser


def _timestamp_ms(text: str) -> int:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 date-time: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


async def plan_reset(
    consumer: AIOKafkaConsumer,
    committed: Mapping[int, int | None],
    partitions: Sequence[int],
    args: argparse.Namespace,
    topic: str,
) -> list[PartitionPlan]:
    """The target of every partition in ``partitions`` (see the module docstring's table)."""
    tps = [TopicPartition(topic, p) for p in partitions]
    starts = await consumer.beginning_offsets(tps)
    ends = await consumer.end_offsets(tps)
    by_time = await consumer.offsets_for_times(dict.fromkeys(tps, args.to_datetime)) if args.to_datetime else {}
    plans = []
    for tp in tps:
        start, end = starts[tp], ends[tp]
        if args.to_earliest:
            target = start
        elif args.to_latest:
            target = end
        elif args.to_offset is not None:
            target = min(max(args.to_offset, start), end)
        else:
            found = by_time.get(tp)
            target = end if found is None else found.offset
        plans.append(PartitionPlan(tp.partition, start, end, committed.get(tp.partition), target))
    return plans


def render_plan(group: str, topic: str, plans: Sequence[PartitionPlan]) -> str:
    lines = [
        f"Reset of group '{group}' on '{topic}':",
        "PARTITION  LOG-START  LOG-END  CURRENT-OFFSET  NEW-OFFSET  STATE",
    ]
    for plan in plans:
        current = "-" if plan.current is None else str(plan.current)
        lines.append(
            f"{plan.partition:<9}  {plan.log_start:<9}  {plan.end:<7}  {current:<14}  {plan.target:<10}  {plan.action}"
        )
    if any(plan.log_start > 0 and plan.action.startswith("rebuild") for plan in plans):
        lines.append("note: retention deleted the oldest facts; states are rebuilt from the log start")
    return "\n".join(lines) + "\n"


async def rebuild_state(
    consumer: AIOKafkaConsumer, topic: str, plan: PartitionPlan, *, idle_ttl_ms: int, limits: Limits, batch: int
) -> PartitionReducer:
    """The reducer after the facts [log start, target) of the partition (an empty one for no facts)."""
    reducer = PartitionReducer(idle_ttl_ms=idle_ttl_ms, limits=limits)
    if plan.target <= plan.log_start:
        return reducer
    tp = TopicPartition(topic, plan.partition)
    consumer.assign([tp])
    consumer.seek(tp, plan.log_start)
    position = plan.log_start
    while position < plan.target:
        fetched = await consumer.getmany(tp, timeout_ms=1000, max_records=batch)
        records = [r for r in fetched.get(tp, []) if r.offset < plan.target]
        if records:
            reducer.run([r.value for r in records])
            position = records[-1].offset + 1
        else:
            position = max(position, await consumer.position(tp))  # skips gaps (compaction, aborted records)
    consumer.assign([])
    return reducer


def changelog_rewrite(old_keys: set[str], reducer: PartitionReducer, target: int) -> list[Record]:
    """The records that turn the old changelog state into ``reducer``'s, and record ``target`` as the offset."""
    new = snapshot(reducer.state)
    records: list[Record] = [(key.encode(), None, None) for key in sorted(old_keys - new.keys())]
    records.extend((key.encode(), value, None) for key, value in new.items())
    records.append((INPUT_OFFSET_KEY, str(target).encode(), None))
    return records


async def _main(args: argparse.Namespace, env: Mapping[str, str], out: TextIO) -> int:
    config = load_config(ProcessorConfig, env=env, args=args)
    kafka, group, facts = config.kafka, config.group_id, config.facts_topic
    changelog = changelog_topic(group, facts)
    async with LagReader(kafka, client_id=instance_client_id("reset")) as reader:
        state, members = await reader.members(group)
        if members or state in ACTIVE_STATES:
            ids = ", ".join(m.consumer_id for m in members) or "-"
            log.error("group_active", group=group, state=state, members=ids)
            out.write(f"group '{group}' is {state} with active members ({ids}): stop every processor first\n")
            return EXIT_FAILED
        [lag] = await reader.read({group: [facts]})
    if lag.missing_topics:
        raise UsageError(f"topic {facts!r} does not exist (PROCESSOR_FACTS_TOPIC)")
    known = [p.partition for p in lag.partitions]
    chosen = sorted(set(args.partition or known))
    if unknown := [p for p in chosen if p not in known]:
        raise UsageError(f"--partition {unknown}: {facts!r} has partitions 0-{len(known) - 1}")
    committed = {p.partition: p.committed for p in lag.partitions}

    async with contextlib.AsyncExitStack() as clients:
        client_id = instance_client_id("reset")
        consumer = await start_client(clients, restore_consumer(**kafka.client_kwargs(client_id=client_id)))
        plans = await plan_reset(consumer, committed, chosen, args, facts)
        out.write(render_plan(group, facts, plans))
        if args.dry_run:
            out.write("dry run: nothing written\n")
            return EXIT_OK
        admin = await start_client(clients, AIOKafkaAdminClient(**kafka.client_kwargs(client_id=client_id)))
        broker = await read_broker_limits(admin, [changelog, config.events_topic, dead_letter_topic(facts)])
        limits = config.limits(max_record_bytes=broker.max_record_bytes)
        for plan in plans:
            if plan.action == "unchanged":
                continue
            await _reset_partition(config, consumer, plan, limits, max(broker.max_message_bytes.values()))
            out.write(f"partition {plan.partition}: offset {plan.target}, {plan.action}: done\n")
    return EXIT_OK


async def _reset_partition(
    config: ProcessorConfig, consumer: AIOKafkaConsumer, plan: PartitionPlan, limits: Limits, max_request: int
) -> None:
    """Fence the partition's producer, then write its new offset and state in one transaction."""
    kafka, facts = config.kafka, config.facts_topic
    changelog = changelog_topic(config.group_id, facts)
    async with contextlib.AsyncExitStack() as clients:
        producer = await start_client(  # starting it fences a zombie owner and aborts its open transaction
            clients,
            AIOKafkaProducer(
                **kafka.client_kwargs(client_id=instance_client_id("reset")),
                transactional_id=transactional_id(config.transactional_id_prefix, facts, plan.partition),
                enable_idempotence=True,
                acks="all",
                transaction_timeout_ms=config.transaction_timeout_ms,
                max_request_size=max_request,
            ),
        )
        [(old, _offset)] = (
            await restore_states(
                consumer,
                changelog,
                [plan.partition],
                idle_ttl_ms=config.idle_ttl_ms,
                limits=limits,
            )
        ).values()
        old_keys = set(snapshot(old.state))
        reducer = await rebuild_state(
            consumer, facts, plan, idle_ttl_ms=config.idle_ttl_ms, limits=limits, batch=config.max_batch_records
        )
        records = changelog_rewrite(old_keys, reducer, plan.target)
        await producer.begin_transaction()
        try:
            pending = await send_batched(producer, changelog, plan.partition, records)
            for future in pending:
                await future
            await producer.send_offsets_to_transaction(
                {TopicPartition(facts, plan.partition): plan.target}, config.group_id
            )
        except BaseException:
            with contextlib.suppress(Exception):
                await producer.abort_transaction()
            raise
        await producer.commit_transaction()
        log.info(
            "partition_reset",
            partition=plan.partition,
            offset=plan.target,
            families=len(reducer.state.families),
            changelog_records=len(records),
        )


def main(argv: Sequence[str] | None = None, *, env: Mapping[str, str] | None = None, out: TextIO | None = None) -> int:
    """Run the command; returns its exit code (:mod:`services.exitcodes`). ``env`` and ``out`` are for tests."""
    return run_command("reset", build_parser, _main, argv, env=env, out=out)


if __name__ == "__main__":
    sys.exit(main())
