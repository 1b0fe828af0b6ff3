"""The sender: consume ``events``, POST the rows in batches, dead-letter refused rows, commit after ack.

Delivery is **at least once**: an offset is committed only after every row before it was accepted by
the endpoint (2xx) or written to the dead-letter topic (acknowledged by Kafka). A crash or a rebalance
between the POST and the commit makes the next owner send the rows again; each request carries an
``Idempotency-Key`` derived from its rows' ids so the receiver can drop a repeat.

How the work is arranged (one asyncio task per partition with work, the consumer loop in front):

1. The consumer loop calls ``getmany`` continuously, so the consumer stays in its group however long
   a delivery takes (aiokafka leaves the group when ``getmany`` is not called for
   ``max_poll_interval_ms``). A fetched chunk of records goes to the worker task of its partition
   (started if the partition has none). While a worker delivers a chunk, the next chunk of its
   partition is fetched and held for it, and the partition is **paused** until the worker takes that
   chunk: at most one worker per partition and one chunk waiting, rows of a partition strictly in
   order, partitions in parallel, and the fetch of the next chunk overlaps the delivery of this one.
2. The consumer loop turns the records into rows (:func:`row_from_record`) as it fetches them; a worker
   groups a chunk's rows with :func:`reducer.batching.split_batches`, and for each batch, in order: delivers it
   (:meth:`Sender._settle`); progress is committed after the chunk's last batch (the consumer's position,
   which also skips the transaction markers that follow the rows) and at most every second in between.
3. Delivering a batch: POST; a transient failure (5xx, 408, 429, timeout, connection error) is retried
   **forever** with capped, jittered backoff (honouring ``Retry-After``); 413 splits the batch in halves,
   recursively; any other refusal of a multi-row batch is retried once, then the batch is bisected so
   that only the refused rows reach single-row requests; a refused single row is dead-lettered.
   Records that break the topic contract (no value, no ``row-id`` or ``event-type`` header) are
   dead-lettered without being sent.
4. On revocation, the workers of the revoked partitions are cancelled: their uncommitted rows are
   dropped here and delivered by the partition's next owner from the committed offset.
5. :meth:`Sender.stop` (SIGTERM): no new batch starts; a request in flight finishes and, if accepted,
   is committed; a batch waiting to retry is abandoned uncommitted. Then :meth:`Sender.run` returns and
   the composition root closes the clients.

Unexpected errors (a dead-letter produce that Kafka refuses, a bug) end :meth:`Sender.run` with that
exception: the process exits and restarts from the committed offsets, which is always safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass
from typing import Any, Final

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from reducer.batching import is_isolated_event_type, split_batches
from schemas.headers import (
    DLQ_HTTP_RESPONSE,
    DLQ_HTTP_STATUS,
    DLQ_MESSAGE,
    DLQ_REASON,
    EVENT_TYPE_HEADER,
    ROW_ID_HEADER,
    Headers,
    source_headers,
)
from schemas.http import request_body
from services.config import SenderConfig
from services.errors import (
    ConfigError,
    DeliveryError,
    EndpointMisconfigured,
    PayloadTooLarge,
    PermanentDeliveryError,
)
from services.freshness import OldestUnfinished
from services.metrics import SenderMetrics
from services.sender.client import EndpointClient, RetryPolicy, idempotency_key

__all__ = [
    "OutboundRow",
    "Sender",
    "create_consumer",
    "create_producer",
    "row_from_record",
    "travels_alone",
]

_log = structlog.get_logger("services.sender")

_CLIENT_ID: Final = "review-analytics-sender"
COMMIT_INTERVAL_S: Final = 1.0
"""Longest time settled rows of a chunk stay uncommitted while later batches of the chunk are sent."""
ANNOUNCED_BATCH_PREFIX: Final = "tail-batch-end="
"""Commit metadata naming the last offset of a tail batch sent but not yet committed."""
_POLL_TIMEOUT_S: Final = 0.2
_REVOKE_WAIT_S: Final = 10.0


@dataclass(frozen=True, slots=True)
class OutboundRow:
    """One record of the events topic, as the sender needs it.

    Attributes:
        offset: Offset in the source partition.
        key: The record key (the thread id, UTF-8), kept for the dead-letter record.
        value: The row's JSON, exactly as it goes into the request body.
        row_id: Deterministic unique id of the row (``row-id`` header).
        event_type: The row's event type (``event-type`` header); decides isolation.
        defect: Why the record breaks the topic contract and cannot be sent, or ``None``.
        timestamp_ms: The record's timestamp (when the reducer wrote the row), or ``None``.
    """

    offset: int
    key: bytes | None
    value: bytes
    row_id: str
    event_type: str
    defect: str | None = None
    timestamp_ms: int | None = None

    @property
    def thread_id(self) -> str | None:
        """The record key as text, for logs."""
        return None if self.key is None else self.key.decode("utf-8", "replace")


def _text(value: Any) -> str | None:
    try:
        text: str = value.decode("utf-8")
    except (UnicodeDecodeError, AttributeError):
        return None
    return text


def row_from_record(record: Any) -> OutboundRow:
    """Read an aiokafka ``ConsumerRecord`` into an :class:`OutboundRow`, flagging contract breaches.

    A header counts by its first occurrence. One pass over the headers: this runs for every row.
    """
    row_id: str | None = None
    event_type: str | None = None
    seen_row_id = seen_event_type = False
    for name, raw in record.headers or ():
        if name == ROW_ID_HEADER:
            if not seen_row_id:
                seen_row_id, row_id = True, _text(raw)
        elif name == EVENT_TYPE_HEADER and not seen_event_type:
            seen_event_type, event_type = True, _text(raw)
    value = record.value
    timestamp = getattr(record, "timestamp", None)
    if value and row_id and event_type:
        return OutboundRow(record.offset, record.key, value, row_id, event_type, timestamp_ms=timestamp)
    problems = []
    if not value:
        problems.append("the record has no value")
    if not row_id:
        problems.append(f"header {ROW_ID_HEADER!r} is missing or not UTF-8")
    if not event_type:
        problems.append(f"header {EVENT_TYPE_HEADER!r} is missing or not UTF-8")
    return OutboundRow(
        offset=record.offset,
        key=record.key,
        value=value or b"",
        row_id=row_id or "",
        event_type=event_type or "",
        defect="; ".join(problems),
        timestamp_ms=timestamp,
    )


def travels_alone(row: OutboundRow) -> bool:
    """Rows sent in a request of their own: accepted-line fingerprints (as codex does) and malformed records
    (which are dead-lettered, never sent)."""
    return row.defect is not None or is_isolated_event_type(row.event_type)


def _size(row: OutboundRow) -> int:
    return len(row.value)


def create_consumer(config: SenderConfig, *, client_id: str = _CLIENT_ID) -> AIOKafkaConsumer:
    """The sender's consumer: ``read_committed`` (only rows of committed reducer transactions), manual
    commits, and ``earliest`` for a new group, so a fresh deployment delivers the topic from its start.
    ``client_id``: distinct per replica in production (:func:`services.config.instance_client_id`)."""
    return AIOKafkaConsumer(
        **config.kafka.client_kwargs(client_id=client_id),
        group_id=config.group_id,
        group_instance_id=config.group_instance_id,
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=config.max_poll_records,
    )


def create_producer(config: SenderConfig, *, client_id: str = _CLIENT_ID) -> AIOKafkaProducer:
    """The dead-letter producer: idempotent, ``acks=all``; each send is awaited before the next commit."""
    return AIOKafkaProducer(
        **config.kafka.client_kwargs(client_id=client_id),
        acks="all",
        enable_idempotence=True,
    )


@dataclass(frozen=True, slots=True)
class _Chunk:
    """Rows of one partition returned by one ``getmany``, and the consumer's position right after them."""

    rows: list[OutboundRow]
    end: int


class _Abandoned(Exception):
    """A batch was left undelivered because the sender is stopping (it stays uncommitted)."""


class _PartitionLost(Exception):
    """The partition was taken away while its worker was busy; the next owner will resume it."""


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    def __init__(self, sender: Sender) -> None:
        self._sender = sender

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._sender._on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._sender._on_assigned(assigned)


class Sender:
    """Drains the events topic to the endpoint (see the module docstring for the protocol).

    The Kafka clients and the endpoint client are passed in, not created here: the composition root
    (``services.sender.__main__``) or a test starts them before :meth:`run` and closes them after.
    """

    def __init__(
        self,
        *,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        client: EndpointClient,
        config: SenderConfig,
        metrics: SenderMetrics,
        retry_policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._consumer = consumer
        self._producer = producer
        self._client = client
        self._config = config
        self._metrics = metrics
        self._retry = retry_policy or RetryPolicy(
            base_s=config.backoff_base_s, cap_s=config.backoff_cap_s, retry_after_cap_s=config.retry_after_cap_s
        )
        self._rng = rng or random.Random()
        self._stopping = asyncio.Event()
        self._running = False
        self._workers: dict[TopicPartition, asyncio.Task[None]] = {}
        self._next_chunks: dict[TopicPartition, _Chunk] = {}
        """Per partition: the chunk fetched while its worker delivers the previous one (partition paused)."""
        self._failure: BaseException | None = None
        self._oldest = OldestUnfinished(metrics.oldest_unfinished_age)
        """Per partition: the first row of the batch being delivered (the oldest not acknowledged)."""
        self._announced: dict[TopicPartition, tuple[int, int]] = {}
        """Per partition: (first, last) offset of a tail batch a previous owner announced and never committed."""

    # -- lifecycle ---------------------------------------------------------------------------------------

    def is_ready(self) -> bool:
        """Readiness: consuming and not stopping. Cheap and thread-safe (read by ``/readyz``)."""
        return self._running and not self._stopping.is_set()

    def stop(self) -> None:
        """Ask :meth:`run` to finish the requests in flight, commit them and return. Idempotent."""
        if not self._stopping.is_set():
            _log.info("sender_stopping", workers=len(self._workers))
            self._stopping.set()

    async def run(self) -> None:
        """Consume and deliver until :meth:`stop`; the consumer and producer must be started.

        Raises:
            ConfigError: the events or dead-letter topic does not exist.
            Exception: whatever made a worker fail unexpectedly (after the others finished).
        """
        await self._check_topics()
        self._consumer.subscribe([self._config.events_topic], listener=_Rebalance(self))
        self._running = True
        _log.info("sender_started", topic=self._config.events_topic, group=self._config.group_id)
        try:
            while not self._stopping.is_set():
                if self._failure is not None:
                    raise self._failure
                fetched = await self._consumer.getmany(timeout_ms=int(_POLL_TIMEOUT_S * 1000))
                for tp, records in fetched.items():
                    if records:
                        # Rows now, so the records (several objects each) die young instead of waiting for
                        # their turn; and the position right after the chunk: every record before it is in it.
                        rows = [row_from_record(record) for record in records]
                        self._take_chunk(tp, _Chunk(rows, await self._consumer.position(tp)))
        finally:
            self._stopping.set()
            await self._wait_for_workers()
            self._running = False
            _log.info("sender_stopped")
        if self._failure is not None:
            raise self._failure

    async def _check_topics(self) -> None:
        """Fail fast, with what to do, if a topic is missing (the brokers may not auto-create topics)."""
        try:
            existing = await self._consumer.topics()
        except KafkaError as exc:
            raise ConfigError(
                f"cannot list Kafka topics ({type(exc).__name__}: {exc}); check KAFKA_* settings"
            ) from exc
        for setting, topic in (
            ("SENDER_EVENTS_TOPIC", self._config.events_topic),
            ("SENDER_DLQ_TOPIC", self._config.dlq_topic),
        ):
            if topic not in existing:
                raise ConfigError(
                    f"topic {topic!r} ({setting}) does not exist: create it (python -m services.setup_topics) or "
                    f"point {setting} at an existing topic"
                )

    # -- partition workers -------------------------------------------------------------------------------

    def _take_chunk(self, tp: TopicPartition, chunk: _Chunk) -> None:
        """Hand a fetched chunk to its partition's worker: start one, or hold the chunk for the busy one."""
        if tp not in self._workers:
            self._workers[tp] = asyncio.create_task(self._drain(tp, chunk), name=f"sender-{tp.topic}-{tp.partition}")
            return
        if tp in self._next_chunks:  # impossible while the partition is paused; fail loudly if it ever happens
            raise RuntimeError(f"records for {tp} arrived while a chunk was already waiting for its worker")
        self._next_chunks[tp] = chunk
        self._consumer.pause(tp)

    async def _drain(self, tp: TopicPartition, chunk: _Chunk) -> None:
        """Deliver ``chunk``, then each chunk fetched for the partition meanwhile, until none is waiting.

        The worker forgets itself in the same step as it finds no chunk waiting (no ``await`` between),
        so a chunk fetched later always starts a new worker and is never left behind.
        """
        structlog.contextvars.bind_contextvars(group=self._config.group_id, topic=tp.topic, partition=tp.partition)
        me = asyncio.current_task()
        failure: Exception | None = None
        try:
            while await self._work(tp, chunk) and not self._stopping.is_set():
                next_chunk = self._next_chunks.pop(tp, None)
                if next_chunk is None:
                    break
                chunk = next_chunk
                self._consumer.resume(tp)  # fetch the chunk after it while this one is delivered
        except Exception as exc:  # handed to run(), which raises it
            failure = exc
        finally:
            if self._workers.get(tp) is me:  # else revoked: the rebalance listener already forgot it
                del self._workers[tp]
                self._oldest.set(tp.partition, None)
                # A chunk still waiting when the worker stopped early (partition lost, stopping, failure) is
                # dropped uncommitted: the partition's next owner, or the next run, sends it again.
                dropped = self._next_chunks.pop(tp, None)
                if failure is not None:
                    self._failure = self._failure or failure
                elif dropped is not None and tp in self._consumer.assignment():
                    self._consumer.resume(tp)

    async def _wait_for_workers(self) -> None:
        pending = list(self._workers.values())
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def _work(self, tp: TopicPartition, chunk: _Chunk) -> bool:
        """Deliver one fetched chunk of a partition, batch by batch, in order; ``False`` if it stopped early
        (the sender is stopping or the partition was lost).

        Progress is committed after the chunk's last batch, and in between at most every
        :data:`COMMIT_INTERVAL_S` (a commit per request would cost more than the request itself). Batches
        before the last are cut by the rules, so a resend after a crash rebuilds them with the same keys.
        """
        batches = self._batches(tp, chunk.rows)
        settled: int | None = None  # next offset after the last settled, not yet committed batch
        last_commit = time.monotonic()
        try:
            for index, batch in enumerate(batches):
                if self._stopping.is_set():
                    _log.info("chunk_left_for_restart", batches_left=len(batches) - index, from_offset=batch[0].offset)
                    break
                is_tail = index == len(batches) - 1
                self._oldest.set(tp.partition, batch[0].timestamp_ms)
                if is_tail:
                    await self._announce_tail_batch(tp, batch)  # also commits everything settled before it
                    settled = None
                try:
                    await self._settle(tp, batch, may_retry_refusal=True)
                except _Abandoned:
                    _log.info("batch_abandoned_on_stop", first_offset=batch[0].offset, rows=len(batch))
                    break
                settled = batch[-1].offset + 1
                if is_tail:
                    # Past the transaction markers that follow the chunk's last row, so a caught-up group
                    # has lag 0: the consumer's position right after it fetched the chunk is that of the
                    # next record getmany returned, and every record before it was in this chunk.
                    await self._commit(tp, max(settled, chunk.end))
                    return True
                if time.monotonic() - last_commit >= COMMIT_INTERVAL_S:
                    await self._commit(tp, settled)
                    settled, last_commit = None, time.monotonic()
            if settled is not None:
                await self._commit(tp, settled)
        except _PartitionLost:
            pass
        return False

    def _split(self, rows: list[OutboundRow]) -> list[list[OutboundRow]]:
        return split_batches(
            rows, travels_alone, self._config.max_batch_rows, self._config.max_batch_bytes, size_of=_size
        )

    def _batches(self, tp: TopicPartition, rows: list[OutboundRow]) -> list[list[OutboundRow]]:
        """The chunk's request batches. If a previous owner announced an unacknowledged tail batch starting
        here, rebuild exactly that batch first, so a resend carries the idempotency key it may have been
        accepted under (see :meth:`_announce_tail_batch`)."""
        announced = self._announced.pop(tp, None)
        if announced is None or not rows or rows[0].offset != announced[0]:
            return self._split(rows)
        head = [row for row in rows if row.offset <= announced[1]]
        if head[-1].offset < announced[1]:
            _log.warning("announced_batch_incomplete", start=announced[0], end=announced[1], got=head[-1].offset)
        return self._split(head) + self._split(rows[len(head) :])

    async def _announce_tail_batch(self, tp: TopicPartition, batch: list[OutboundRow]) -> None:
        """Record where a chunk's last batch ends, in the commit metadata, before sending it.

        Batches cut by the rules (isolated rows, row and byte caps) are a function of their first offset,
        so a resend from the committed offset rebuilds them exactly, with the same idempotency key. The
        last batch of a chunk is cut by where the fetch happened to end instead: after a crash or a
        rebalance between its POST and its commit, the next owner would fetch more rows and send a larger
        batch under a new key, and a receiver that de-duplicates by key would keep its rows twice. So the
        tail batch's end offset is committed (at its first offset, which changes no position) as metadata
        first, and the next owner reads it on assignment.
        """
        await self._consumer.commit({tp: (batch[0].offset, f"{ANNOUNCED_BATCH_PREFIX}{batch[-1].offset}")})

    # -- delivering one batch ----------------------------------------------------------------------------

    async def _settle(self, tp: TopicPartition, rows: list[OutboundRow], *, may_retry_refusal: bool) -> None:
        """Return once every row of ``rows`` was accepted by the endpoint or dead-lettered, in order.

        ``may_retry_refusal``: a refused multi-row batch is sent once more before being bisected (true for
        batches as :func:`split_batches` made them, false for the halves of a bisection).
        """
        if rows[0].defect is not None:  # travels alone (see travels_alone)
            await self._dead_letter(tp, rows[0], reason="malformed_record", detail=rows[0].defect)
            return
        try:
            await self._post_until_answered(rows)
            return
        except PermanentDeliveryError as refusal:
            if len(rows) == 1:
                await self._dead_letter(
                    tp, rows[0], reason=refusal.reason, status=refusal.status, excerpt=refusal.excerpt
                )
                return
            if may_retry_refusal and not isinstance(refusal, PayloadTooLarge):
                await self._settle(tp, rows, may_retry_refusal=False)
                return
        middle = len(rows) // 2
        await self._settle(tp, rows[:middle], may_retry_refusal=False)
        await self._settle(tp, rows[middle:], may_retry_refusal=False)

    async def _post_until_answered(self, rows: list[OutboundRow]) -> None:
        """POST ``rows`` until the endpoint accepts or refuses them; transient failures are retried forever.

        Raises:
            PermanentDeliveryError: the endpoint refused the batch.
            _Abandoned: the sender is stopping while waiting to retry.
        """
        body = request_body([row.value for row in rows])
        key = idempotency_key(row.row_id for row in rows)
        context = {
            "rows": len(rows),
            "bytes": len(body),
            "first_offset": rows[0].offset,
            "last_offset": rows[-1].offset,
            "idempotency_key": key,
        }
        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            try:
                status = await self._client.post_batch(body, key)
            except DeliveryError as error:
                latency = time.monotonic() - started
                self._observe_request(len(rows), len(body), latency, _status_class(error.status, error.reason))
                if not error.retriable:
                    _log.warning(
                        "batch_sent",
                        **context,
                        status=error.status,
                        attempt=attempt,
                        latency_ms=round(latency * 1000, 1),
                        outcome="refused",
                        error=str(error),
                    )
                    raise
                delay = self._retry.next_delay(attempt, error.retry_after, self._rng)
                self._metrics.retries.labels(error.reason).inc()
                # A misconfiguration needs an operator; an unavailable endpoint usually heals by itself.
                report = _log.error if isinstance(error, EndpointMisconfigured) else _log.warning
                report(
                    "batch_sent",
                    **context,
                    status=error.status,
                    attempt=attempt,
                    latency_ms=round(latency * 1000, 1),
                    outcome="retrying",
                    retry_in_s=round(delay, 3),
                    reason=error.reason,
                    error=str(error),
                )
                await self._sleep_unless_stopping(delay)
                continue
            latency = time.monotonic() - started
            self._observe_request(len(rows), len(body), latency, _status_class(status, ""))
            self._metrics.rows_delivered.inc(len(rows))
            _log.info(
                "batch_sent",
                **context,
                status=status,
                attempt=attempt,
                latency_ms=round(latency * 1000, 1),
                outcome="accepted",
            )
            return

    def _observe_request(self, rows: int, size: int, latency: float, status_class: str) -> None:
        self._metrics.requests.labels(status_class).inc()
        self._metrics.request_latency.observe(latency)
        self._metrics.batch_rows.observe(rows)
        self._metrics.batch_bytes.observe(size)

    async def _sleep_unless_stopping(self, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=delay)
        if self._stopping.is_set():
            raise _Abandoned

    async def _dead_letter(
        self,
        tp: TopicPartition,
        row: OutboundRow,
        *,
        reason: str,
        status: int | None = None,
        excerpt: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Write ``row`` to the dead-letter topic and wait for Kafka's acknowledgement."""
        headers: Headers = [(DLQ_REASON, reason.encode())]
        if status is not None:
            headers.append((DLQ_HTTP_STATUS, str(status).encode()))
        if excerpt is not None:
            headers.append((DLQ_HTTP_RESPONSE, excerpt.encode()))
        if detail is not None:
            headers.append((DLQ_MESSAGE, detail.encode()))
        headers += source_headers(tp.topic, tp.partition, row.offset)
        if row.row_id:
            headers.append((ROW_ID_HEADER, row.row_id.encode()))
        if row.event_type:
            headers.append((EVENT_TYPE_HEADER, row.event_type.encode()))
        await self._producer.send_and_wait(self._config.dlq_topic, value=row.value, key=row.key, headers=headers)
        self._metrics.rows_dead_lettered.labels(reason).inc()
        _log.warning(
            "row_dead_lettered",
            reason=reason,
            status=status,
            offset=row.offset,
            row_id=row.row_id,
            event_type=row.event_type,
            thread_id=row.thread_id,
            detail=detail or excerpt,
        )

    async def _commit(self, tp: TopicPartition, next_offset: int) -> None:
        try:
            await self._consumer.commit({tp: next_offset})
        except (CommitFailedError, IllegalStateError) as exc:
            _log.warning("commit_refused_partition_moved", next_offset=next_offset, error=str(exc))
            raise _PartitionLost from exc
        self._metrics.commits.inc()

    # -- rebalancing (called by aiokafka's coordinator task) ---------------------------------------------

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        """Drop the uncommitted work of revoked partitions: their next owner starts from the committed offset."""
        cancelled = []
        for tp in revoked:
            self._oldest.forget(tp.partition)
            self._next_chunks.pop(tp, None)
            task = self._workers.pop(tp, None)
            if task is not None:
                task.cancel()
                cancelled.append(task)
        if cancelled:
            _, still_running = await asyncio.wait(cancelled, timeout=_REVOKE_WAIT_S)
            if still_running:
                _log.error("revoked_workers_did_not_stop", count=len(still_running))
        _log.info(
            "partitions_revoked",
            partitions=sorted(tp.partition for tp in revoked),
            in_flight_dropped=len(cancelled),
        )

    async def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        self._announced = {}
        if assigned:
            try:
                committed = await committed_with_metadata(self._consumer, assigned)
            except KafkaError as exc:  # without the announcements a resend only risks a new idempotency key
                _log.warning("announced_batches_unread", error=str(exc))
                committed = {}
            for tp, (offset, metadata) in committed.items():
                if metadata.startswith(ANNOUNCED_BATCH_PREFIX) and offset >= 0:
                    self._announced[tp] = (offset, int(metadata[len(ANNOUNCED_BATCH_PREFIX) :]))
        _log.info(
            "partitions_assigned",
            partitions=sorted(tp.partition for tp in assigned),
            announced_batches={tp.partition: end for tp, (_, end) in self._announced.items()},
        )


async def committed_with_metadata(
    consumer: AIOKafkaConsumer, partitions: set[TopicPartition]
) -> dict[TopicPartition, tuple[int, str]]:
    """Committed offsets *with their metadata* (``AIOKafkaConsumer.committed`` returns the offset only).

    Uses the consumer's group coordinator, the same call ``committed`` makes; covered by
    ``tests/integration/test_sender_delivery.py`` so an aiokafka upgrade that changes it fails loudly.
    """
    found = await consumer._coordinator.fetch_committed_offsets(list(partitions))
    return {tp: (int(meta.offset), str(meta.metadata or "")) for tp, meta in found.items()}


def _status_class(status: int | None, reason: str) -> str:
    """``2xx`` ... ``5xx`` for answered requests; ``timeout`` or ``connection_error`` otherwise."""
    if status is None:
        return reason
    return f"{status // 100}xx"
