"""Minimal reproductions of the system bugs the reliability suite found (``tests/system/FINDINGS.md``).

Each test states the behaviour the design promises. They were written failing (run them against the
commit before the fix to see it: F1 and F2 were fixed in b6e9c4f) and stay as regression tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from schemas.codec import MAX_FACT_BYTES, encode_fact
from services.config import KafkaSettings
from services.producer import BROADCAST, FactPublisher
from tests.support.builders import (
    reviewed_family,
    sample_initialize,
)
from tests.system import faults, kafkaview
from tests.system.scenario import Run, Settings
from tests.system.verifier import dead_letter_value_problem
from tests.system.workload import generate
from tools.demo.generator import Workload
from tools.localkafka import BrokerHandle

pytestmark = pytest.mark.kafka

NEAR_LIMIT_BYTES = 1_048_370
"""Value size of the undecodable fact: its record (value, key, batch overhead: about 1,048,470 bytes)
fits aiokafka's default 1 MiB ``max_request_size`` and the broker's default 1,048,588-byte message
limit, so ``FactPublisher`` and the facts topic accept it; the dead-letter record carries the same
value plus six ``dlq.*`` headers (about 250 bytes more here; ``dlq.message`` alone may take 2 KiB),
which is over 1 MiB."""


@pytest.mark.parametrize("variant", ["near_limit_garbage", "oversized", "over_3_mib"])
async def test_f1_a_huge_bad_fact_is_dead_lettered_without_stalling_its_partition(
    system_run: Callable[..., Awaitable[Run]], variant: str
) -> None:
    """kafka-notes §5: an undecodable fact goes to ``facts.dlq`` and its partition never blocks.

    ``near_limit_garbage``: default topic configuration (as ``setup_topics`` creates it) and the real
    ``FactPublisher``: one undecodable fact of about 1 MB, which both accept. ``oversized``: a facts
    topic that accepts 4 MiB records, and one fact over ``MAX_FACT_BYTES`` (1 MiB), the generator's
    "oversized" poison. ``over_3_mib``: the same with 3.6 MB, which the dead-letter record carries cut
    (a prefix, with ``dlq.value.size`` and ``dlq.value.sha256`` of the original). Then a normal family
    on the same key; the partition must drain and the dead letter describe the fact."""
    run = await system_run(variant=variant)
    await run.setup(witness=False, big_facts=variant != "near_limit_garbage")
    rng = random.Random(run.seed)
    size = {"near_limit_garbage": NEAR_LIMIT_BYTES, "oversized": MAX_FACT_BYTES + 1024, "over_3_mib": 3_600_000}[
        variant
    ]
    garbage = b"\xff" + rng.randbytes(size - 1)
    publisher = FactPublisher(kafka=KafkaSettings(bootstrap_servers=run.bootstrap), topic=run.facts, producer_id="f1")
    await publisher.start()
    for key, value in [(None, encode_fact(sample_initialize())), *reviewed_family("thread-f1", 7)[:2]]:
        publisher.publish_encoded(publisher_key(key), value)
    await asyncio.wait_for(publisher.flush(), 30)
    if variant == "near_limit_garbage":
        publisher.publish_encoded(b"thread-f1", garbage)
    else:
        await run.publisher.start_big()
        await run.publisher.send_big(b"thread-f1", garbage)
    for key, value in reviewed_family("thread-f1", 7)[2:]:
        publisher.publish_encoded(publisher_key(key), value)
    await asyncio.wait_for(publisher.close(), 30)
    run.start_reducer()
    drained = await run.wait_drained(30)
    failures = sum(1 for p in run.procs.all for e in p.events if e.get("event") == "transaction_failed")
    errors = {
        str(e.get("error"))[:60] for p in run.procs.all for e in p.events if e.get("event") == "transaction_failed"
    }
    run.history.figure("f1_failed_transactions", failures)
    assert drained is not None, f"the partition never drained: {failures} failed transactions in 30 s: {errors}"
    dlq = await kafkaview.read_all(run.bootstrap, run.facts_dlq)
    assert len(dlq) == 1, f"{len(dlq)} dead letters"
    assert dead_letter_value_problem(dlq[0], garbage) is None, dead_letter_value_problem(dlq[0], garbage)


def publisher_key(key: str | None) -> object:
    return BROADCAST if key is None else key.encode()


async def test_f2_a_fact_the_producer_refuses_does_not_silently_drop_every_later_fact(
    system_run: Callable[..., Awaitable[Run]],
) -> None:
    """``FactPublisher`` promises a full buffer is never silent; a single fact over aiokafka's 1 MiB
    request limit must not make every later ``publish_encoded`` (which still returns True) vanish."""
    run = await system_run()
    await run.setup(witness=False)
    publisher = FactPublisher(kafka=KafkaSettings(bootstrap_servers=run.bootstrap), topic=run.facts, producer_id="f2")
    await publisher.start()
    try:
        accepted = publisher.publish_encoded(b"thread-f2", b"{" + b" " * (2 * 1024 * 1024) + b"}")
        later = [publisher.publish_encoded(b"thread-f2", value) for _key, value in reviewed_family("thread-f2", 9)]
        try:
            await asyncio.wait_for(publisher.flush(), 15)
            flushed = True
        except TimeoutError:
            flushed = False
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(publisher.close(), 10)
        # close() re-raises the drain task's error before stopping its producer: stop it here.
        with contextlib.suppress(Exception):
            await publisher._producer.stop()
    ends = await kafkaview.end_offsets(run.bootstrap, run.facts)
    on_topic = sum(ends.values())
    run.history.write("f2", accepted=accepted, later_accepted=all(later), flushed=flushed, on_topic=on_topic)
    assert on_topic == len(later), (
        f"publish_encoded returned {accepted} for the big fact and {all(later)} for the {len(later)} later "
        f"ones; flush() {'returned' if flushed else 'hung past 15 s'}; the facts topic holds {on_topic}"
    )


F3_SETTINGS = Settings(session_timeout_ms=12_000, transaction_timeout_ms=4_000)


async def test_f3_a_reducer_whose_transaction_timed_out_but_still_owns_the_partition_resumes_it(
    system_run: Callable[..., Awaitable[Run]],
) -> None:
    """One reducer, session timeout 12 s, transaction timeout 4 s. Pause it (SIGSTOP) while it holds an
    open transaction for 8 s: longer than the transaction timeout, so the broker aborts the transaction
    and bumps the producer epoch, but shorter than the session timeout, so the group keeps the partition
    with this reducer (no rebalance). After SIGCONT its next send or commit is refused as "fenced". A
    broker restart during a transaction ends the same way (test 5). No other instance owns the partition:
    the reducer must take it up again (new producer, committed offset, restore) and drain it (F3) --
    without skipping the facts that arrived while it was deciding to (F5): facts keep coming all along,
    and the whole output is verified (V1-V7)."""
    run = await system_run(settings=F3_SETTINGS, threads=400)
    facts = generate(Workload(seed=run.seed, threads=400, concurrency=32))
    await run.setup()
    reducer = run.start_reducer()
    run.publish_in_background(facts, rate=300.0, label="load")
    open_txn = await faults.pause_holding_open_transaction(run, reducer)
    await asyncio.sleep(F3_SETTINGS.transaction_timeout_ms / 1000 + 4)
    faults.resume(run, reducer)
    await run.publishing_done()
    drained = await run.wait_drained(30)
    fenced = [e for e in reducer.events if e.get("event") == "partition_fenced"]
    committed = await kafkaview.committed_offsets(run.bootstrap, run.group, run.facts)
    ends = await kafkaview.end_offsets(run.bootstrap, run.facts)
    run.history.write("f3", open_txn=sorted(open_txn), fenced=[e.get("partition") for e in fenced])
    assert drained is not None, (
        f"the only reducer left partitions {sorted(p for p in ends if committed.get(p) != ends[p])} undrained "
        f"30 s after the publishing ended (committed {committed}, end {ends}); it logged partition_fenced for "
        f"{[e.get('partition') for e in fenced]} and was never assigned them again -- {run.history.describe()}"
    )
    run.assert_ok(await run.verify())


F5_SETTINGS = Settings(session_timeout_ms=12_000, transaction_timeout_ms=4_000)
F5_BROKER_STOP_S = 3.0
F6_BROKER_STOP_S = 6.0


async def test_f5_a_reclaimed_partition_does_not_skip_the_facts_fetched_while_it_was_dropped(
    system_run: Callable[..., Awaitable[Run]], private_broker: BrokerHandle
) -> None:
    """The F3 situation (the broker aborted the reducer's transaction while the group still gives it the
    partition), on one partition under steady load. The reducer drops the partition, keeps polling it
    (its records are skipped), and two heartbeats later takes it back (new producer, committed offset,
    restore, seek back). The moment it logs ``partition_reclaim``, the broker is paused (SIGSTOP) for 3 s,
    so taking the partition back is slow, as it was after the broker restart of test 5 where this was
    found. A batch fetched before the seek back must not be reduced from where that fetch had got to:
    every fact after the committed offset is reduced, once (V1-V7)."""
    await reclaim_with_a_stopped_broker(system_run, private_broker, F5_BROKER_STOP_S)


async def test_f6_a_partition_taken_back_while_the_broker_was_stalled_resumes_from_its_committed_offset(
    system_run: Callable[..., Awaitable[Run]], private_broker: BrokerHandle
) -> None:
    """As F5, with the broker stopped for 6 s (more than two consumer heartbeats, less than the session
    timeout) when the reducer takes the partition back: the committed offset it reads then must be the
    group's (the last committed transaction's), never "none" read as 0 -- which would reduce the whole
    partition again on top of the state restored from the changelog (every row twice, V2)."""
    await reclaim_with_a_stopped_broker(system_run, private_broker, F6_BROKER_STOP_S)


async def reclaim_with_a_stopped_broker(
    system_run: Callable[..., Awaitable[Run]], private_broker: BrokerHandle, stop_s: float
) -> None:
    run = await system_run(settings=F5_SETTINGS, partitions=1, threads=600, broker=private_broker)
    facts = generate(Workload(seed=run.seed, threads=600, concurrency=64))
    await run.setup()
    reducer = run.start_reducer()
    broker_pid = private_broker.pid

    def stop_broker_on_reclaim(line: dict[str, Any]) -> None:
        if line.get("event") != "partition_reclaim" or reducer.on_event is None:
            return
        reducer.on_event = None  # once
        run.fault_started("broker_sigstop", "broker", seconds=stop_s, at="partition_reclaim")
        os.killpg(broker_pid, signal.SIGSTOP)

        def resume() -> None:
            os.killpg(broker_pid, signal.SIGCONT)
            run.fault_ended("broker_sigstop", "broker")

        threading.Timer(stop_s, resume).start()

    reducer.on_event = stop_broker_on_reclaim
    run.publish_in_background(facts, rate=500.0, label="load")
    await faults.pause_holding_open_transaction(run, reducer)
    await asyncio.sleep(F5_SETTINGS.transaction_timeout_ms / 1000 + 4)
    faults.resume(run, reducer)
    run.assert_ok(await run.verify())
    assert any(f["kind"] == "broker_sigstop" for f in run.faults), "the reducer never reclaimed the partition"


async def test_f4_a_batch_resent_after_a_sender_crash_carries_the_idempotency_key_it_was_accepted_under(
    system_run: Callable[..., Awaitable[Run]],
) -> None:
    """kafka-notes §6: each request carries an idempotency key derived from its rows' ids, "so a receiver
    can drop a batch it has already accepted when a crash makes the sender send it again".

    One partition. A few families whose rows never travel alone; the sender's batch (the whole topic so
    far) is accepted by the endpoint, which holds the answer (stall); more rows arrive meanwhile; the
    sender is killed before it sees the answer, so nothing is committed. The next sender resends from
    the committed offset. The rows the endpoint accepted under the first key must come again under that
    key (a receiver drops the repeat) -- not inside a bigger batch under a new key."""
    run = await system_run(partitions=1)
    endpoint = run.start_endpoint()
    init = [(None, encode_fact(sample_initialize()))]
    first = init + [fact for index in range(3) for fact in reviewed_family(f"thread-f4-{index}", 40 + index)]
    second = [fact for index in range(3, 6) for fact in reviewed_family(f"thread-f4-{index}", 40 + index)]
    await run.setup(witness=False)
    run.start_reducer()
    publisher = FactPublisher(kafka=KafkaSettings(bootstrap_servers=run.bootstrap), topic=run.facts, producer_id="f4")
    await publisher.start()
    try:
        for key, value in first:
            publisher.publish_encoded(publisher_key(key), value)
        await asyncio.wait_for(publisher.flush(), 30)
        assert await run.wait_drained(60) is not None
        endpoint.stall(30.0, count=1, accept=True)
        env = {"SENDER_REQUEST_TIMEOUT_S": "60", "SENDER_MAX_BATCH_ROWS": "500"}
        sender = run.start_sender(endpoint.url, **env)
        deadline = asyncio.get_running_loop().time() + 60
        while not endpoint.requests:
            assert asyncio.get_running_loop().time() < deadline, f"the sender sent nothing\n{sender.log_tail()}"
            await asyncio.sleep(0.1)
        for key, value in second:  # more rows while the first batch's answer is held
            publisher.publish_encoded(publisher_key(key), value)
        await asyncio.wait_for(publisher.flush(), 30)
    finally:
        await asyncio.wait_for(publisher.close(), 30)
    assert await run.wait_drained(60) is not None  # the reducer is done; the sender still waits
    await faults.kill9(run, sender, progress=0)
    run.start_sender(endpoint.url, **env)
    assert await run.wait_drained(60, sender=True) is not None
    requests = [r for r in endpoint.requests if r.accepted]
    first_key, first_rows = requests[0].idempotency_key, requests[0].events
    again_same_key = [r for r in requests[1:] if r.idempotency_key == first_key]
    again_other_key = [
        r for r in requests[1:] if r.idempotency_key != first_key and any(e in r.events for e in first_rows)
    ]
    run.history.write(
        "f4",
        first_rows=len(first_rows),
        resent_same_key=len(again_same_key),
        resent_other_key=[len(r.events) for r in again_other_key],
    )
    assert not again_other_key, (
        f"the {len(first_rows)} rows accepted under key {first_key[:12]} were sent again inside batches of "
        f"{[len(r.events) for r in again_other_key]} rows under other keys: a receiver that drops repeated keys "
        f"keeps them twice -- {run.history.describe()}"
    )
