"""The commit protocol: one Kafka transaction per input partition per batch.

A batch's outputs (rows, changelog records, dead letters) and its input offsets become visible
together or not at all, which is what makes the output exactly-once per input fact. The steps, each
marked ``# Step n.`` below:

1. begin the transaction;
2. produce the rows to the events topic, in record batches per events partition (the partition the
   default partitioner picks for the row's key, so a family's rows stay in order on one partition);
3. produce the changed state to changelog partition P (same number as input partition P), batched too;
4. produce the dead letters to the facts dead-letter topic, partition P;
5. add the input offset (last + 1) to the transaction, and wait until that and every record is
   acknowledged;
6. commit.

Any failure aborts the transaction when the producer still can, and raises: the caller then resets
the partition (new producer, which fences and aborts anything left open; state restored from the
changelog; input re-read from the committed offset). Nothing is retried inside a transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import TopicPartition

from schemas.headers import Headers
from services.processor.deadletter import DeadLetter
from services.processor.hooks import NO_HOOKS, ProcessorHooks

Record = tuple[bytes | None, bytes | None, Headers | None]
"""Key, value (``None``: a tombstone) and headers of one record to produce."""
Row = tuple[bytes, bytes, Headers]
"""Key (the family), value and headers (``row-id``, ``event-type``) of one row."""
Offsets = dict[TopicPartition, int]
Pending = list["asyncio.Future[object]"]
"""Sends not yet acknowledged."""


@dataclass
class BatchOutput:
    """Everything one input partition's batch produces, ready to be committed."""

    rows: list[Row] = field(default_factory=list)
    changelog: list[Record] = field(default_factory=list)
    """Changelog records (no headers), in the shape they are produced in."""
    dead_letters: list[DeadLetter] = field(default_factory=list)
    facts: int = 0
    next_offset: int | None = None
    """Offset to commit (last processed + 1); ``None`` when the batch held nothing new."""
    rows_by_type: dict[str, int] = field(default_factory=dict)
    ahead: int = 0
    """Facts observed too far ahead of the partition's watermark to move it (``reducer.clock``)."""


@dataclass(frozen=True)
class Destinations:
    group_id: str
    input_topic: str
    events_topic: str
    changelog_topic: str
    dead_letter_topic: str


class Transaction:
    """The commit protocol (module docstring), calling ``hooks`` at each named step.

    Steps 2 and 5 are methods of their own, so the reliability suite can substitute deliberately broken
    variants (``tests/support/processor_hooks.py``): none is defined here."""

    def __init__(self, hooks: ProcessorHooks = NO_HOOKS) -> None:
        self.hooks = hooks

    async def commit(self, producer: AIOKafkaProducer, out: BatchOutput, *, partition: int, to: Destinations) -> None:
        """Write ``out`` and the input offset of ``partition`` in one transaction (steps in the module doc)."""
        assert out.next_offset is not None
        reached = self.hooks.reached
        # Step 1.
        await producer.begin_transaction()
        try:
            # Step 2.
            pending = await self.send_rows(producer, out.rows, to)
            reached("after_rows_sent")
            # Step 3.
            pending += await send_batched(producer, to.changelog_topic, partition, out.changelog)
            reached("after_changelog_sent")
            # Step 4. Dead letters are rare and may be megabytes: one send() each, size-checked by the producer.
            for letter in out.dead_letters:
                pending.append(
                    await producer.send(
                        to.dead_letter_topic, letter.value, key=letter.key, partition=partition, headers=letter.headers
                    )
                )
            # Step 5.
            await self.add_offsets(producer, {TopicPartition(to.input_topic, partition): out.next_offset}, to, pending)
            reached("after_offsets_added")
            reached("before_commit")
        except BaseException:
            await abort_quietly(producer)
            raise
        # Step 6. A failed commit is not aborted here: the transaction state is unknown, and the caller's
        # reset (a new producer with the same transactional id) resolves it either way.
        await producer.commit_transaction()
        reached("after_commit")

    async def send_rows(self, producer: AIOKafkaProducer, rows: list[Row], to: Destinations) -> Pending:
        """Step 2: the rows to the events topic, in record batches per events partition."""
        pending: list[asyncio.Future[object]] = []
        by_partition = by_key_partition(rows, sorted(await producer.partitions_for(to.events_topic)))
        for events_partition, partition_rows in by_partition.items():
            pending += await send_batched(producer, to.events_topic, events_partition, partition_rows)
        return pending

    async def add_offsets(self, producer: AIOKafkaProducer, offsets: Offsets, to: Destinations, sent: Pending) -> None:
        """Step 5: the input offset into the transaction while the records are still being acknowledged (a
        coordinator round trip that need not wait for them); returns once both are done."""
        await asyncio.gather(*sent, producer.send_offsets_to_transaction(offsets, to.group_id))


_partitioner = DefaultPartitioner()


def by_key_partition(rows: Sequence[Record], partitions: list[int]) -> dict[int, list[Record]]:
    """Group rows by the partition aiokafka's default partitioner picks for their key, keeping order.

    The same choice ``producer.send(topic, value, key=key)`` would make (murmur2 of the key over the
    sorted partition ids; a random partition for no key), computed once per key: a batch's rows come
    in runs of one family's key.
    """
    groups: dict[int, list[Record]] = {}
    chosen: dict[bytes | None, int] = {}
    for row in rows:
        key = row[0]
        target = chosen.get(key) if key is not None else None
        if target is None:
            target = _partitioner(key, partitions, partitions)
            if key is not None:
                chosen[key] = target
        group = groups.get(target)
        if group is None:
            group = groups[target] = []
        group.append(row)
    return groups


async def send_batched(
    producer: AIOKafkaProducer, topic: str, partition: int, records: list[Record]
) -> list[asyncio.Future[object]]:
    """Append ``records`` to record batches for one partition and hand them to the producer.

    One future per batch (a batch holds up to the producer's ``max_batch_size``; the first record
    always fits) instead of one ``send()`` await, partition lookup and future per record: about 3x
    cheaper per record in a transaction (docs/performance.md). ``send_batch`` adds the partition to the
    open transaction like ``send`` does.
    """
    futures: list[asyncio.Future[object]] = []
    batch = producer.create_batch()
    for key, value, headers in records:
        if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
            futures.append(await producer.send_batch(batch, topic, partition=partition))
            batch = producer.create_batch()
            batch.append(key=key, value=value, timestamp=None, headers=headers)
    if batch.record_count():
        batch.close()  # complete: a closed batch is sent at once instead of lingering (linger_ms)
        futures.append(await producer.send_batch(batch, topic, partition=partition))
    return futures


async def abort_quietly(producer: AIOKafkaProducer) -> None:
    """Abort the open transaction if the producer still can; a fenced producer cannot, and need not."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(producer.abort_transaction(), timeout=10)
