"""The consumer loop of the reducer service and its rebalance listener.

One consumer per instance (group ``ProcessorConfig.group_id``); one :class:`PartitionWorker` per
assigned partition. The poll loop only dispatches: each partition with records gets a *commit loop*
(one task, at most one per partition) that reduces them and commits them in one transaction, then takes
whatever was polled for that partition meanwhile (its *backlog*) as its next transaction, until
nothing is left. Partitions never wait for each other's transactions (aiokafka spends ~25 ms per
transaction), and a fact waits for at most the one transaction of its partition in flight when it
arrives; transactions grow with the load, by themselves. A backlog of ``max_batch_records`` pauses its
partition's fetching until the commit loop takes it, and so do ``max_backlog_bytes`` of fetched values
not yet committed (in flight plus backlog) until commits bring the partition back under.

Bounds read at start: ``max.message.bytes`` of the topics written (:mod:`.broker_limits`) gives
``Limits.max_record_bytes``, with the ``PROCESSOR_*`` bounds the :class:`~reducer.limits.Limits` every
worker applies, and sizes the producers. Liveness: a partition with lag that has not committed for
``stall_after_s`` is stalled (:mod:`.liveness`): metric, log line, ``/readyz`` 503.

Concurrency contract: ``self._lock`` is held while a poll is dispatched and by the rebalance callbacks,
never around ``getmany`` (the callbacks run inside aiokafka's rebalance, which ``getmany`` waits for).
A callback first waits, under the lock, for the commit loops of the partitions it gives up, so a
revocation always finds no transaction of them open, and no commit loop starts while it runs. Commit
loops never take the lock: a failed one hands its partition to a background reset that does.

Failure handling per partition:

* fenced producer: drop the worker; if the group has not revoked the partition two heartbeats later,
  reset it (:meth:`Processor._reclaim_later` says why the broker itself may have fenced us);
* any other error while committing: abort, then :meth:`Processor._reset` the partition in the
  background (new producer, which fences and aborts anything still open; committed offset re-read;
  state restored from the changelog; consumer seeked back), retrying with backoff while the broker is
  unreachable. Records polled for it meanwhile are dropped: it has no worker until the reset is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Collection, Coroutine, Iterable, Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, ConsumerRecord
from aiokafka.errors import IllegalStateError, InvalidProducerEpoch, KafkaError, ProducerFenced
from aiokafka.structs import TopicPartition

from reducer.boundary import PartitionReducer
from reducer.limits import DEFAULT_MAX_RECORD_BYTES, Limits
from schemas.headers import DLQ_REASON, header
from schemas.topics import DEAD_LETTER_TOPIC_MAX_BYTES, changelog_topic, dead_letter_topic
from services.config import ProcessorConfig
from services.freshness import OldestUnfinished
from services.metrics import ProcessorMetrics, Readiness
from services.processor.broker_limits import BrokerLimits, read_broker_limits
from services.processor.clients import ProcessorClients, heartbeat_s, kafka_clients
from services.processor.hooks import NO_HOOKS, ProcessorHooks
from services.processor.liveness import StallWatch
from services.processor.partition import PartitionWorker, restore_states
from services.processor.transaction import Destinations, Transaction

log = structlog.get_logger("processor")

_FENCED: tuple[type[Exception], ...] = (ProducerFenced, InvalidProducerEpoch)
"""Errors meaning another instance now owns the partition's transactional id."""
MAX_BATCH_BYTES = 512 * 1024
"""Record batch size of the producers (smaller when a topic accepts less)."""
LIVENESS_CHECK_S = 1.0
"""Longest time between two stall checks (shorter when ``stall_after_s`` is short)."""
POSITION_WAIT_S = 0.1
"""How long a stall check waits for a consumer position that is being reset (then it uses the offset)."""
PAUSE_LOG_EVERY = 100
"""A pause for backlog bytes is logged the first time and then every this many times."""
LIMIT_OF_OUTCOME: dict[str, str] = {
    "row_too_large": "max_record_bytes",  # dead-letter reasons of reducer.boundary
    "state_too_large": "max_record_bytes",
    "budget_evicted_family": "state_budget_bytes",  # drop reasons
    "connection_evicted": "max_connections",
}
"""The bound (a ``reducer.limits.Limits`` field) behind a dead-letter or drop reason; facts too far ahead to
move the clock (``BatchOutput.ahead``) count as hits of ``max_clock_skew_ms``."""


class Processor:
    """Reduce ``facts`` into ``events`` exactly once; see the module docstring."""

    def __init__(
        self,
        config: ProcessorConfig,
        *,
        metrics: ProcessorMetrics,
        clients: ProcessorClients | None = None,
        hooks: ProcessorHooks = NO_HOOKS,
        transaction: Transaction | None = None,
        client_id: str = "review-analytics-reducer",
        limits: Limits | None = None,
    ) -> None:
        """``clients``: the Kafka clients (:mod:`.clients`; built from ``config`` as ``client_id`` if not given).
        ``hooks`` are called at the named steps, ``transaction`` commits (tests substitute both)."""
        self.config = config
        self.clients = clients if clients is not None else kafka_clients(config, client_id)
        self._fixed_limits = limits is not None
        self.limits = limits if limits is not None else config.limits(max_record_bytes=DEFAULT_MAX_RECORD_BYTES)
        """Bounds of the containment boundary (``reducer.limits``): the ``PROCESSOR_*`` settings, and the
        record size the broker accepts, read at the start of :meth:`run`; or ``limits`` as given (tests)."""
        self.metrics = metrics
        self.hooks = hooks
        self.transaction = transaction if transaction is not None else Transaction(hooks)
        self.to = Destinations(
            group_id=config.group_id,
            input_topic=config.facts_topic,
            events_topic=config.events_topic,
            changelog_topic=changelog_topic(config.group_id, config.facts_topic),
            dead_letter_topic=dead_letter_topic(config.facts_topic),
        )
        self.workers: dict[TopicPartition, PartitionWorker] = {}
        self._parked: dict[int, tuple[PartitionReducer, int]] = {}
        self._lock = asyncio.Lock()
        self._consumer: AIOKafkaConsumer | None = None
        """The group consumer once :meth:`run` has started it."""
        self.assigned: set[TopicPartition] = set()
        self.restoring = False
        self.commits = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._seeks: dict[TopicPartition, int] = {}
        """Seeks per partition: a batch polled across a seek of its partition is stale (see _dispatch)."""
        self._jobs: dict[TopicPartition, asyncio.Task[None]] = {}
        """The commit loop of each partition that has work (see the module docstring)."""
        self._backlog: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = {}
        """Records polled while their partition's commit loop was busy: its next transaction."""
        self._backlog_bytes: dict[TopicPartition, int] = {}
        """Value bytes of each backlog."""
        self._in_flight_bytes: dict[TopicPartition, int] = {}
        """Value bytes of the transaction each commit loop is reducing or committing."""
        self._paused: set[TopicPartition] = set()
        self._byte_pauses = 0
        self.broker_limits: BrokerLimits | None = None
        """What the broker accepts, read at the start of :meth:`run`."""
        self.liveness = StallWatch(config.stall_after_s)
        self._oldest = OldestUnfinished(metrics.oldest_unfinished_age)
        """Per partition: the first fact of the transaction in flight, else of the backlog (see _commit_loop)."""
        self._stalled: tuple[int, ...] = ()
        """The stalled partitions as of the last check (read by ``/readyz`` on the server's thread)."""
        self._failure: Exception | None = None
        """The first unexpected error of a commit loop; the poll loop raises it."""
        self._heartbeat_s = heartbeat_s(config)

    # --- readiness -------------------------------------------------------------------------------

    def readiness(self) -> Readiness:
        """Joined, every assigned partition restored, none stalled (``/readyz``, with the reason if not)."""
        if self._consumer is None:
            return Readiness(False, "not started")
        if self.restoring:
            return Readiness(False, "restoring partitions")
        changing = sorted(tp.partition for tp in set(self.assigned) ^ set(self.workers))
        if changing:
            return Readiness(False, f"partitions being taken or reset: {', '.join(map(str, changing))}")
        stalled = self._stalled
        if stalled:
            return Readiness(
                False,
                f"partitions stalled (lag, no commit for {self.config.stall_after_s:g} s): "
                + ", ".join(map(str, stalled)),
            )
        return Readiness(True)

    def ready(self) -> bool:
        """:meth:`readiness` as a flag."""
        return self.readiness().ready

    # --- lifecycle -------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set, then finish the batch in hand and leave the group.

        The clients handed in are started here and stopped when it returns, whatever happens."""
        consumer = self.clients.consumer
        try:
            await self._read_broker_limits()
            self._consumer = consumer
            await self.clients.restorer.start()
            await consumer.start()
        except BaseException:
            await consumer.stop()  # stopping a consumer that never started is allowed, and quiet
            await self.clients.restorer.stop()
            raise
        consumer.subscribe([self.config.facts_topic], listener=_Listener(self._on_revoked, self._on_assigned))
        log.info("processor_started", group=self.config.group_id, topic=self.config.facts_topic)
        self._background(self._watch_liveness())
        try:
            while not stop.is_set():
                seeks = dict(self._seeks)
                batch = await consumer.getmany(
                    timeout_ms=self.config.poll_timeout_ms, max_records=self.config.max_batch_records
                )
                if self._failure is not None:
                    raise self._failure
                if batch:
                    async with self._lock:
                        self._dispatch(batch, seeks)
        finally:
            for task in list(self._tasks):
                task.cancel()
            async with self._lock:
                await self._settle(list(self._jobs))  # finish the transactions in hand
                for worker in list(self.workers.values()):
                    await worker.close()
                self.workers.clear()
            await consumer.stop()
            await self.clients.restorer.stop()
            log.info("processor_stopped", commits=self.commits)

    # --- processing ------------------------------------------------------------------------------

    def _dispatch(
        self, batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]], seeks: dict[TopicPartition, int]
    ) -> None:
        """Hand each partition's records to its commit loop (started if idle, else as its backlog).

        Records of a partition that was (re)taken while ``getmany`` ran may have been fetched before its
        seek, from anywhere ahead of the committed offset: they are dropped and the partition is sought
        back to where its worker starts, so nothing is skipped (finding F5). A partition without a worker
        (fenced or failed, waiting to be reset) is sought back when it is taken. Caller holds the lock.
        """
        assert self._consumer is not None
        for tp, records in batch.items():
            worker = self.workers.get(tp)
            if worker is None:
                continue
            if self._seeks.get(tp) != seeks.get(tp):
                log.info("stale_fetch_dropped", partition=tp.partition, records=len(records), seek=worker.next_offset)
                self._seek(tp, worker.next_offset)
                continue
            size = _value_bytes(records)
            if tp not in self._jobs:
                self._in_flight_bytes[tp] = size
                self._oldest.set(tp.partition, records[0].timestamp)
                self._jobs[tp] = asyncio.get_running_loop().create_task(self._commit_loop(tp, records))
            else:
                self._backlog.setdefault(tp, []).extend(records)
                self._backlog_bytes[tp] = self._backlog_bytes.get(tp, 0) + size
            self._limit_fetching(tp)

    async def _commit_loop(self, tp: TopicPartition, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        """Commit ``records``, then the partition's backlog, one transaction each, until none is left.

        An unexpected error (a bug, not a Kafka failure) stops the partition and is raised by the poll
        loop, which stops the service, as it did when partitions were committed inline.
        """
        try:
            while records and await self._process_partition(tp, records):
                records = self._backlog.pop(tp, [])
                self._in_flight_bytes[tp] = self._backlog_bytes.pop(tp, 0)
                self._oldest.set(tp.partition, records[0].timestamp if records else None)
                self._limit_fetching(tp)
        except Exception as error:
            log.exception("commit_loop_failed", topic=tp.topic, partition=tp.partition)
            await self._drop_worker(tp, self.workers.get(tp))
            if self._failure is None:
                self._failure = error
        finally:
            self._jobs.pop(tp, None)
            self._in_flight_bytes.pop(tp, None)
            if tp in self.assigned:
                self._oldest.set(tp.partition, None)
                self._limit_fetching(tp)

    async def _settle(self, tps: Iterable[TopicPartition]) -> None:
        """Wait for the commit loops of ``tps`` to finish. Caller holds the lock (no new loop starts)."""
        jobs = [job for tp in tps if (job := self._jobs.get(tp)) is not None]
        if jobs:
            await asyncio.gather(*jobs, return_exceptions=True)

    def _forget_fetched(self, tp: TopicPartition) -> None:
        """Drop what was polled for ``tp`` and not reduced yet (before a seek or after a failure)."""
        self._backlog.pop(tp, None)
        self._backlog_bytes.pop(tp, None)
        self._limit_fetching(tp)

    def _limit_fetching(self, tp: TopicPartition) -> None:
        """Pause ``tp``'s fetching while its backlog holds ``max_batch_records`` records or it holds more than
        ``max_backlog_bytes`` of values not yet committed; resume it otherwise. Exports the bytes held."""
        held = self._in_flight_bytes.get(tp, 0) + self._backlog_bytes.get(tp, 0)
        self.metrics.backlog_bytes.labels(partition=str(tp.partition)).set(held)
        reason: str | None = None
        if len(self._backlog.get(tp, ())) >= self.config.max_batch_records:
            reason = "backlog_records"
        elif held > self.config.max_backlog_bytes:
            reason = "backlog_bytes"
        if reason is None:
            self._resume(tp)
        elif tp not in self._paused and self._consumer is not None and tp in self._consumer.assignment():
            self._consumer.pause(tp)
            self._paused.add(tp)
            self.metrics.fetch_pauses.labels(reason=reason).inc()
            if reason == "backlog_bytes":
                self._byte_pauses += 1
                if self._byte_pauses % PAUSE_LOG_EVERY == 1:
                    log.info(
                        "fetch_paused_backlog_bytes",
                        partition=tp.partition,
                        held_bytes=held,
                        limit=self.config.max_backlog_bytes,
                        pauses=self._byte_pauses,
                    )

    def _resume(self, tp: TopicPartition) -> None:
        if tp in self._paused:
            self._paused.discard(tp)
            if self._consumer is not None and tp in self._consumer.assignment():
                self._consumer.resume(tp)

    def _seek(self, tp: TopicPartition, offset: int) -> None:
        """Move the consumer's position of ``tp``."""
        assert self._consumer is not None
        self._consumer.seek(tp, offset)
        self._sought(tp)

    def _sought(self, tp: TopicPartition) -> None:
        """After any seek of ``tp``: what was polled before it is void, and the seek is counted (see
        :meth:`_dispatch`)."""
        self._forget_fetched(tp)
        self._seeks[tp] = self._seeks.get(tp, 0) + 1

    async def _process_partition(self, tp: TopicPartition, records: Sequence[ConsumerRecord[bytes, bytes]]) -> bool:
        """Reduce and commit one transaction of ``tp``; ``False`` if it failed (the worker is then gone)."""
        worker = self.workers.get(tp)
        if worker is None:
            return False
        # In a worker thread: a batch that costs seconds (a family near the record limit is encoded per fact)
        # must not stop the event loop from heartbeating, or the group fences this member (F10).
        out = await asyncio.to_thread(worker.reduce_batch, records)
        if out.next_offset is None:
            return True
        started = time.monotonic()
        try:
            await self.transaction.commit(worker.producer, out, partition=tp.partition, to=self.to)
        except _FENCED:
            self.metrics.transactions.labels(outcome="aborted").inc()
            log.warning("partition_fenced", topic=tp.topic, partition=tp.partition)
            await self._drop_worker(tp, worker)
            self._reclaim_later(tp)
            return False
        except (TimeoutError, KafkaError, OSError) as error:
            self.metrics.transactions.labels(outcome="aborted").inc()
            log.warning(
                "transaction_failed", topic=tp.topic, partition=tp.partition, error=repr(error), facts=out.facts
            )
            await self._drop_worker(tp, worker)
            self._background(self._reset_locked(tp))
            return False
        elapsed = time.monotonic() - started
        worker.next_offset = out.next_offset
        self.liveness.committed(tp.partition, out.next_offset, time.monotonic())
        self.commits += 1
        m = self.metrics
        m.transactions.labels(outcome="committed").inc()
        m.transaction_duration.observe(elapsed)
        m.facts_consumed.inc(out.facts)
        for event_type, count in out.rows_by_type.items():
            m.events_produced.labels(event_type=event_type).inc(count)
        hits: dict[str, int] = {"max_clock_skew_ms": out.ahead} if out.ahead else {}
        for letter in out.dead_letters:
            reason = header(letter.headers, DLQ_REASON) or "unknown"
            m.facts_dead_lettered.labels(reason=reason).inc()
            if reason in LIMIT_OF_OUTCOME:
                hits[LIMIT_OF_OUTCOME[reason]] = hits.get(LIMIT_OF_OUTCOME[reason], 0) + 1
        state = worker.state
        label = str(tp.partition)
        m.state_entries.labels(partition=label, kind="families").set(len(state.families))
        m.state_entries.labels(partition=label, kind="connections").set(len(state.connections))
        m.state_bytes.labels(partition=label).set(worker.reducer.state_bytes)
        log.info(
            "transaction_committed",
            topic=tp.topic,
            partition=tp.partition,
            offset=out.next_offset,
            facts=out.facts,
            rows=len(out.rows),
            dead_letters=len(out.dead_letters),
            changelog=len(out.changelog),
            ahead=out.ahead,
            duration_ms=round(elapsed * 1000, 1),
        )
        if state.drops:
            for reason, count in state.drops.items():
                m.facts_dropped.labels(reason=reason).inc(count)
                if reason in LIMIT_OF_OUTCOME:
                    hits[LIMIT_OF_OUTCOME[reason]] = hits.get(LIMIT_OF_OUTCOME[reason], 0) + count
            log.info("facts_dropped_by_rules", partition=tp.partition, drops=dict(state.drops))
            state.drops.clear()
        if hits:
            for limit, count in hits.items():
                m.limit_hits.labels(limit=limit).inc(count)
            log.info("limits_hit", partition=tp.partition, hits=hits)
        return True

    async def _drop_worker(self, tp: TopicPartition, worker: PartitionWorker | None) -> None:
        """Stop using ``tp`` after a failed transaction: its state is ahead of its changelog now."""
        if worker is not None and self.workers.get(tp) is worker:
            del self.workers[tp]
        self._forget_fetched(tp)
        if worker is not None:
            await worker.close()

    # --- partition ownership ---------------------------------------------------------------------

    async def _start_producer(self, partition: int) -> AIOKafkaProducer:
        """A started transactional producer for ``partition``; starting it fences the previous owner.

        Its record batches stay within what the smallest topic accepts, and it refuses a record larger
        than the largest one does (the broker would refuse it anyway)."""
        largest = max(self.broker_limits.max_message_bytes.values()) if self.broker_limits else None
        producer = self.clients.producer(
            partition, min(MAX_BATCH_BYTES, self.limits.max_record_bytes), largest or DEAD_LETTER_TOPIC_MAX_BYTES
        )
        try:
            await producer.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await producer.stop()  # a producer whose start failed still holds connections
            raise
        return producer

    async def _take(self, tps: Sequence[TopicPartition]) -> None:
        """Own ``tps``: fence, read committed offsets, restore state, seek. Caller holds the lock."""
        assert self._consumer is not None
        consumer = self._consumer
        producers = dict(
            zip(tps, await asyncio.gather(*(self._start_producer(tp.partition) for tp in tps)), strict=True)
        )
        self.hooks.reached("after_fence_before_offset_read")
        committed: dict[TopicPartition, int | None] = {tp: await consumer.committed(tp) for tp in tps}
        states: dict[int, PartitionReducer] = {}
        to_restore: list[int] = []
        for tp in tps:
            parked = self._parked.pop(tp.partition, None)
            if parked is not None and committed[tp] is not None and parked[1] == committed[tp]:
                states[tp.partition] = parked[0]  # nobody committed since we did: our state is current
            else:
                to_restore.append(tp.partition)
        if to_restore:
            self.restoring = True
            started = time.monotonic()
            restored = await restore_states(
                self.clients.restorer,
                self.to.changelog_topic,
                to_restore,
                hooks=self.hooks,
                idle_ttl_ms=self.config.idle_ttl_ms,
                limits=self.limits,
                on_progress=lambda counts: log.info("restore_progress", records=counts),
            )
            elapsed = time.monotonic() - started
            for tp in tps:
                if tp.partition not in restored:
                    continue
                reducer, stored_offset = restored[tp.partition]
                state = reducer.state
                self.metrics.restore_duration.observe(elapsed)
                log.info(
                    "partition_restored",
                    partition=tp.partition,
                    families=len(state.families),
                    connections=len(state.connections),
                    changelog_offset=stored_offset,
                    committed_offset=committed[tp],
                    duration_ms=round(elapsed * 1000, 1),
                )
                states[tp.partition] = reducer
                committed[tp] = _start_offset(tp, committed[tp], stored_offset)
            self.restoring = False
        for tp in tps:
            start = committed[tp] or 0
            if start > 0:
                self._seek(tp, start)
            else:
                await consumer.seek_to_beginning(tp)
                self._sought(tp)
            self.workers[tp] = PartitionWorker(
                topic=tp.topic,
                partition=tp.partition,
                producer=producers[tp],
                reducer=states[tp.partition],
                next_offset=start,
            )
            self.liveness.taken(tp.partition, start, time.monotonic())

    async def _reset(self, tp: TopicPartition) -> None:
        """Rebuild one partition after a failed commit; retry while the broker is unreachable."""
        worker = self.workers.pop(tp, None)
        if worker is not None:
            await worker.close()
        delay = 0.5
        while tp in self.assigned:
            try:
                await self._take([tp])
                log.info("partition_reset", topic=tp.topic, partition=tp.partition)
                return
            except _FENCED:
                self._reclaim_later(tp)
                return
            except (TimeoutError, KafkaError, OSError) as error:
                log.warning("partition_reset_failed", partition=tp.partition, error=repr(error), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self._lock:
            await self._settle(revoked)
            self.hooks.reached("in_revoke")
            self.metrics.rebalances.labels(kind="revoked").inc()
            for tp, worker in (await self._release(revoked)).items():
                self._parked[tp.partition] = (worker.reducer, worker.next_offset)
            self.assigned -= revoked
            log.info("partitions_revoked", partitions=sorted(tp.partition for tp in revoked))

    async def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        async with self._lock:
            self.metrics.rebalances.labels(kind="assigned").inc()
            self.assigned = set(assigned)
            fresh = sorted((tp for tp in assigned if tp not in self.workers), key=lambda tp: tp.partition)
            await self._release([tp for tp in self.workers if tp not in assigned])
            self._parked = {p: v for p, v in self._parked.items() if any(tp.partition == p for tp in fresh)}
            try:
                await self._take(fresh)
            except (TimeoutError, KafkaError, OSError) as error:
                log.error("partition_assignment_failed", error=repr(error))
                for tp in fresh:
                    if tp not in self.workers:
                        self._background(self._reset_locked(tp))
            log.info("partitions_assigned", partitions=sorted(tp.partition for tp in assigned))

    async def _release(self, tps: Collection[TopicPartition]) -> dict[TopicPartition, PartitionWorker]:
        """Give ``tps`` up: wait for their commit loops, forget what was polled, close their workers.

        Returns the closed workers (their state and offset stay readable). Caller holds the lock.
        """
        await self._settle(tps)
        released: dict[TopicPartition, PartitionWorker] = {}
        for tp in tps:
            self._backlog.pop(tp, None)
            self._backlog_bytes.pop(tp, None)
            self._paused.discard(tp)
            self._forget_partition_metrics(tp.partition)
            worker = self.workers.pop(tp, None)
            if worker is not None:
                await worker.close()
                released[tp] = worker
        return released

    async def _reset_locked(self, tp: TopicPartition) -> None:
        async with self._lock:
            if tp in self.assigned and tp not in self.workers:
                await self._reset(tp)

    def _reclaim_later(self, tp: TopicPartition) -> None:
        """After a fencing error, take ``tp`` back unless the group revokes it first.

        A fencing error means some producer with this partition's transactional id started after ours.
        Usually that is a new owner, and the group revokes ``tp`` from us within a heartbeat or two. But
        the broker also bumps the epoch itself when it aborts a transaction that outlived
        ``transaction.timeout.ms`` (a paused process, a broker restart): then nobody else owns ``tp``
        and dropping it would stall it for ever. So wait two heartbeats (outside the lock, so a
        revocation can run), and if ``tp`` is still ours, reset it: the new producer fences whatever is
        left, and the committed offset and the changelog are read again, so correctness never depends
        on who wins.
        """

        async def reclaim() -> None:
            await asyncio.sleep(2 * self._heartbeat_s)
            log.info("partition_reclaim", topic=tp.topic, partition=tp.partition, still_assigned=tp in self.assigned)
            await self._reset_locked(tp)

        self._background(reclaim())

    # --- bounds and liveness ---------------------------------------------------------------------

    async def _read_broker_limits(self) -> None:
        """Read what the topics written accept (:mod:`.broker_limits`) and derive the workers' bounds."""
        admin = self.clients.admin
        try:
            await admin.start()
            to = self.to
            limits = await read_broker_limits(admin, [to.events_topic, to.changelog_topic, to.dead_letter_topic])
        finally:
            await admin.close()
        self.broker_limits = limits
        if not self._fixed_limits:
            self.limits = self.config.limits(max_record_bytes=limits.max_record_bytes)
        log.info(
            "broker_limits",
            max_message_bytes=dict(limits.max_message_bytes),
            source=dict(limits.source),
            max_record_bytes=limits.max_record_bytes,
        )

    async def _watch_liveness(self) -> None:
        interval = min(LIVENESS_CHECK_S, self.config.stall_after_s / 4)
        while True:
            await asyncio.sleep(interval)
            try:
                await self._check_liveness()
            except Exception:  # a check that fails must not end the checks (the verdicts would go stale)
                log.exception("liveness_check_failed")

    async def _lagging(self, consumer: AIOKafkaConsumer, tp: TopicPartition) -> bool:
        """Whether ``tp`` has lag: facts fetched and not committed, or records on the broker it has not read.

        "Not read" compares the end offset (last stable offset) with the consumer's position, not with the
        committed offset: after a transactional producer's last write, a partition ends with a commit
        marker that no record and no commit ever passes. Without a worker (failed, being reset), the
        committed offset is all there is."""
        if tp in self._jobs or self._backlog.get(tp):
            return True
        if tp not in consumer.assignment():
            return False
        end = consumer.last_stable_offset(tp) or consumer.highwater(tp)
        if end is None:
            return False
        worker = self.workers.get(tp)
        if worker is None:
            committed = self.liveness.committed_offset(tp.partition)
            return committed is not None and end > committed
        try:
            read_to = await asyncio.wait_for(consumer.position(tp), POSITION_WAIT_S)
        except (TimeoutError, IllegalStateError):
            read_to = worker.next_offset
        return bool(end > read_to)

    async def _check_liveness(self) -> None:
        """Update the stall verdicts, their metrics and log lines, and what ``/readyz`` reads."""
        consumer = self._consumer
        if consumer is None:
            return
        lagging = {tp.partition for tp in list(self.assigned) if await self._lagging(consumer, tp)}
        now = time.monotonic()
        watch = self.liveness
        changes = watch.check(now, lagging)
        for partition in changes.stalled:
            log.warning(
                "partition_stalled",
                partition=partition,
                seconds_since_commit=round(watch.seconds_since_commit(partition, now), 1),
                stall_after_s=self.config.stall_after_s,
            )
        for partition in changes.unstalled:
            log.info(
                "partition_unstalled",
                partition=partition,
                seconds_since_commit=round(watch.seconds_since_commit(partition, now), 1),
            )
        stalled = watch.stalled
        for partition in watch.partitions:
            label = str(partition)
            self.metrics.partition_stalled.labels(partition=label).set(1 if partition in stalled else 0)
            self.metrics.seconds_since_commit.labels(partition=label).set(watch.seconds_since_commit(partition, now))
        self._stalled = stalled

    def _forget_partition_metrics(self, partition: int) -> None:
        """A partition given up: its per-partition series go (its new owner exports them), and its stall."""
        if self.liveness.released(partition):
            log.info("partition_unstalled", partition=partition, released=True)
        self._stalled = self.liveness.stalled
        self._oldest.forget(partition)
        m = self.metrics
        for gauge in (m.partition_stalled, m.seconds_since_commit, m.backlog_bytes, m.state_bytes):
            with contextlib.suppress(KeyError):
                gauge.remove(str(partition))

    def _background(self, job: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _value_bytes(records: Sequence[ConsumerRecord[bytes, bytes]]) -> int:
    return sum(len(record.value) for record in records if record.value is not None)


def _start_offset(tp: TopicPartition, committed: int | None, stored: int | None) -> int | None:
    """Where a restored partition resumes: the group's committed offset, or the changelog's copy of it.

    Both are written in the same transaction, so they agree. The changelog's copy matters when the broker
    answers an offset fetch with "none" although the group committed (seen right after a broker stall,
    finding F6): resuming from 0 would then reduce the whole partition a second time.
    """
    if committed is None and stored is not None:
        log.warning("committed_offset_missing_using_changelog", partition=tp.partition, changelog_offset=stored)
        return stored
    if committed is not None and stored is not None and committed != stored:
        log.warning(
            "committed_offset_differs_from_changelog", partition=tp.partition, committed=committed, changelog=stored
        )
    return committed


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(
        self,
        revoked: Callable[[set[TopicPartition]], Awaitable[None]],
        assigned: Callable[[set[TopicPartition]], Awaitable[None]],
    ) -> None:
        self._revoked = revoked
        self._assigned = assigned

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self._assigned(set(assigned))
