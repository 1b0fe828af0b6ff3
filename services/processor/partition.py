"""One assigned input partition: its reducer state, its transactional producer, its changelog.

Responsibilities of a :class:`PartitionWorker`:

1. Own the partition's transactional producer (``transactional_id = <prefix>-<topic>-<partition>``,
   stable across hosts and restarts). Starting it bumps the producer epoch, which fences any previous
   owner and aborts its open transaction *before* this worker reads the committed offset
   (kafka-notes §1: aiokafka has no KIP-447, so this is the fencing).
2. Hold the partition's :class:`~schemas.state.PartitionState`, restored from changelog partition P
   before the first fact is reduced (:func:`restore_states`).
3. Turn a batch of input records into rows, changelog records and dead letters
   (:meth:`PartitionWorker.reduce_batch`): decode once, reduce, encode once.
4. Commit that output with the input offset in one transaction (:func:`.transaction.commit`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Sequence
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.structs import TopicPartition

from reducer.boundary import PartitionReducer
from reducer.limits import DEFAULT_LIMITS, Limits
from reducer.snapshot import keep_latest, restore_values
from schemas.events import Row, event_type
from schemas.headers import EVENT_TYPE_HEADER, ROW_ID_HEADER
from schemas.state import PartitionState
from services.processor.deadletter import dead_letter
from services.processor.hooks import NO_HOOKS, ProcessorHooks
from services.processor.transaction import BatchOutput, abort_quietly

INPUT_OFFSET_KEY: Final = b"o:"
"""Changelog record holding the input offset the transaction commits: the changelog's own copy of the
group's committed offset, used when the broker does not return the latter (``service._start_offset``)."""

_EVENT_TYPE_BY_CLASS: dict[type[Row], bytes] = {}


def event_type_header(cls: type[Row]) -> bytes:
    """The ``event-type`` header of a row class, computed once per class."""
    tag = _EVENT_TYPE_BY_CLASS.get(cls)
    if tag is None:
        tag = _EVENT_TYPE_BY_CLASS[cls] = event_type(cls).encode()
    return tag


class PartitionWorker:
    """State and producer of one input partition; see the module docstring for its responsibilities."""

    def __init__(
        self,
        *,
        topic: str,
        partition: int,
        producer: AIOKafkaProducer,
        reducer: PartitionReducer,
        next_offset: int,
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.producer = producer
        self.reducer = reducer
        self.next_offset = next_offset
        self.row_prefix = f"{topic}-{partition}-"

    @property
    def state(self) -> PartitionState:
        return self.reducer.state

    def reduce_batch(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> BatchOutput:
        """Reduce the records at or after ``next_offset`` through the containment boundary.

        Every fact is reduced, dead-lettered (``reducer.boundary`` says why) or dropped by a rule; none stops
        the batch. The state is updated in place: if the commit of the returned output fails, this state is
        ahead of the changelog and the caller must :meth:`reset` the worker.
        """
        out = BatchOutput()
        first = self.next_offset
        if records and records[0].offset < first:
            records = [record for record in records if record.offset >= first]  # fetched before a reset
        if not records:
            return out
        result = self.reducer.run([record.value for record in records])
        rows = out.rows
        rows_by_class: dict[type[Row], int] = {}
        prefix = self.row_prefix
        keys: dict[str, bytes] = {}
        for position, nth, family, value, cls in result.rows:
            key = keys.get(family)
            if key is None:
                key = keys[family] = family.encode()
            rows_by_class[cls] = rows_by_class.get(cls, 0) + 1
            rows.append(
                (
                    key,
                    value,
                    [
                        (ROW_ID_HEADER, f"{prefix}{records[position].offset}-{nth}".encode()),
                        (EVENT_TYPE_HEADER, event_type_header(cls)),
                    ],
                )
            )
        for refusal in result.refused:
            out.dead_letters.append(self._dead_letter(records[refusal.position], refusal.reason, refusal.error))
        out.facts = len(records)
        out.next_offset = records[-1].offset + 1
        out.rows_by_type = {event_type_header(cls).decode(): count for cls, count in rows_by_class.items()}
        out.changelog = [(key.encode(), value, None) for key, value in result.changelog]
        out.changelog.append((INPUT_OFFSET_KEY, str(out.next_offset).encode(), None))
        out.ahead = result.ahead
        return out

    def _dead_letter(self, record: ConsumerRecord[bytes, bytes], reason: str, error: BaseException) -> Any:
        return dead_letter(
            key=record.key,
            value=record.value or b"",
            reason=reason,
            error=error,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            max_bytes=self.reducer.limits.max_record_bytes,
        )

    async def close(self) -> None:
        """Abort anything open and stop the producer (on revocation, reset or shutdown)."""
        await abort_quietly(self.producer)
        with contextlib.suppress(Exception):
            await self.producer.stop()


def restore_consumer(**client_kwargs: Any) -> AIOKafkaConsumer:
    """The consumer :func:`restore_states` needs: group-less, ``read_committed``, reset to earliest (with
    aiokafka's default ``"latest"`` the restore read was seen to hang). ``client_kwargs`` name the broker
    (``bootstrap_servers``, ``client_id``, security settings)."""
    return AIOKafkaConsumer(
        **client_kwargs,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
    )


async def restore_states(
    consumer: AIOKafkaConsumer,
    changelog: str,
    partitions: Iterable[int],
    *,
    idle_ttl_ms: int,
    hooks: ProcessorHooks = NO_HOOKS,
    limits: Limits = DEFAULT_LIMITS,
    progress_every_s: float = 5.0,
    on_progress: Any = None,
) -> dict[int, tuple[PartitionReducer, int | None]]:
    """Read changelog partitions from the beginning to their end (read_committed) into reducers.

    Returns, per partition, its :class:`~reducer.boundary.PartitionReducer` (state and last changelog
    values) and the input offset of the last committed transaction (``None`` for an empty changelog).

    ``consumer`` is used only for restores and made by :func:`restore_consumer`. Call only after the
    partitions' producers have started (fenced), so no transaction of a previous owner is still open.
    """
    tps = [TopicPartition(changelog, partition) for partition in partitions]
    if not tps:
        return {}
    consumer.assign(tps)
    ends = await consumer.end_offsets(tps)
    await consumer.seek_to_beginning(*tps)
    latest: dict[int, dict[str, bytes | None]] = {tp.partition: {} for tp in tps}
    """Per partition, the last value of each key read so far: memory bounded by the keys, not the log."""
    read: dict[int, int] = dict.fromkeys(latest, 0)
    offsets: dict[int, int | None] = {tp.partition: None for tp in tps}
    remaining = {tp for tp in tps if ends[tp] > 0}
    last_report = time.monotonic()
    while remaining:
        hooks.reached("during_restore")
        batch = await consumer.getmany(*remaining, timeout_ms=500, max_records=20_000)
        for tp, messages in batch.items():
            target = latest[tp.partition]
            read[tp.partition] += len(messages)
            for message in messages:
                if message.key == INPUT_OFFSET_KEY:
                    offsets[tp.partition] = int(message.value) if message.value is not None else None
                elif message.key is not None:
                    keep_latest(target, message.key.decode(), message.value)
        for tp in list(remaining):
            if await consumer.position(tp) >= ends[tp]:
                remaining.discard(tp)
        if on_progress is not None and time.monotonic() - last_report >= progress_every_s:
            last_report = time.monotonic()
            on_progress(dict(read))
    consumer.assign([])
    restored: dict[int, tuple[PartitionReducer, int | None]] = {}
    for partition, partition_latest in latest.items():
        state, values = restore_values(partition_latest.items())
        reducer = PartitionReducer(state, idle_ttl_ms=idle_ttl_ms, limits=limits, values=values)
        restored[partition] = (reducer, offsets[partition])
    return restored
