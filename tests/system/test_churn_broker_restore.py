"""Test 3 (rebalance churn), test 5 (broker restart) and test 7 (restore from the changelog only)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.system import faults
from tests.system.history import read_history
from tests.system.procs import ServiceProcess
from tests.system.scenario import Run
from tests.system.workload import generate, split
from tools.demo.generator import Workload
from tools.localkafka import BrokerHandle

pytestmark = pytest.mark.kafka


async def test_reducers_scaled_1_2_3_2_1_3_with_clean_stops_lose_and_duplicate_nothing(
    system_run: Callable[..., Awaitable[Run]],
) -> None:
    """Scale the reducer group 1 -> 2 -> 3 -> 2 -> 1 -> 3 while facts keep arriving; every stop is a
    SIGTERM (finish the batch, commit, leave the group) after the target made 3 commits, and must
    exit 0. Each step waits for the group to settle (every running reducer holds partitions or the
    step's 3 commits). V1-V8."""
    run = await system_run(threads=1_000)
    facts = generate(Workload(seed=run.seed, threads=1_000, concurrency=48))
    await run.setup()
    running: list[ServiceProcess] = [run.start_reducer("reducer-1")]
    run.publish_in_background(facts, rate=420.0, label="load")
    await run.wait_progress(running[0], 3)
    counter = 1

    async def scale_to(size: int) -> None:
        nonlocal counter
        run.history.write("scale", size=size, before=len(running))
        while len(running) < size:
            counter += 1
            proc = run.start_reducer(f"reducer-{counter}")
            running.append(proc)
            run.fault_started("scale_up", proc.name, size=size)
            await run.wait_progress(proc, 3)
            run.fault_ended("scale_up", proc.name)
        while len(running) > size:
            proc = running.pop(0)
            rc = await faults.sigterm(run, proc)
            assert rc == 0, f"{proc.name} did not stop cleanly (rc {rc})\n{proc.log_tail()}"
        for proc in running:
            await run.wait_progress(proc, proc.commits + 3)

    for size in (2, 3, 2, 1, 3):
        await scale_to(size)
    verdict = await run.verify(v8=True)
    run.history.figure("scale_steps", 5)
    run.assert_ok(verdict)


async def test_broker_killed_and_restarted_under_load_loses_and_duplicates_nothing(
    system_run: Callable[..., Awaitable[Run]], private_broker: BrokerHandle
) -> None:
    """On a broker of its own: two reducers under load; kill -9 the broker at a moment it reports a
    reducer transaction open (the broker's own ListTransactions/DescribeTransactions, with the reducers
    frozen for the moment of the kill so it cannot end first), restart it 10 s later; later restart it
    cleanly. No reducer is restarted: both must still be running at the end. V1-V8, and the publisher
    (the app-server side) lost nothing either (ledger check)."""
    run = await system_run(broker=private_broker, threads=800)
    facts = generate(Workload(seed=run.seed, threads=800, concurrency=48))
    await run.setup()
    reducers = [run.start_reducer("reducer-1"), run.start_reducer("reducer-2")]
    run.publish_in_background(facts, rate=300.0, label="load")
    open_at_kill = await faults.broker_kill(run)
    kill_line = next(f for f in run.faults if f["kind"] == "broker_kill")
    await asyncio.sleep(10)
    await faults.broker_restart(run)
    await faults.broker_clean_restart(run, progress=20)
    verdict = await run.verify(v8=True)
    dead = [f"{p.name} rc={p.poll()}" for p in reducers if not p.alive()]
    run.history.figure("broker_restarts", 2)
    run.history.figure("publisher_failed_sends", run.publisher.fact_publisher.failed)
    run.assert_ok(verdict)
    assert open_at_kill and set(open_at_kill) <= set(run.transactional_ids()), open_at_kill
    assert all(txn.partitions for txn in open_at_kill.values()), f"open transactions with no partition: {open_at_kill}"
    assert sorted(t["txn_id"] for t in kill_line["open_txn"]) == sorted(open_at_kill), kill_line
    assert not dead, f"reducers died across the broker restarts: {dead} -- {run.history.describe()}"


async def test_two_fresh_reducers_restore_state_from_the_changelog_only(
    system_run: Callable[..., Awaitable[Run]],
) -> None:
    """Two reducers reduce 60 % of the stream (many families half-way through); both stop; the other
    40 % is published with nobody running; two fresh reducers start. They must restore every
    partition from the changelog (logged restore with families), reduce exactly the 40 % (never the
    facts before the committed offsets), and the whole output must equal the oracle. Restore time is
    recorded."""
    run = await system_run(threads=1_200)
    facts = generate(Workload(seed=run.seed, threads=1_200, concurrency=64))
    first, second = split(facts, 0.6)
    await run.setup()
    old = [run.start_reducer("reducer-old-1"), run.start_reducer("reducer-old-2")]
    await run.publisher.publish(first, label="first 60 %")
    assert await run.wait_drained(90) is not None, "the first reducers never drained the first part"
    for proc in old:  # "stop everything": not a fault, no progress to wait for
        rc = await faults.sigterm(run, proc, progress=0)
        assert rc == 0, f"{proc.name} did not stop cleanly\n{proc.log_tail()}"
    before = {p.name: p.commits for p in old}
    await run.publisher.publish(second, label="last 40 % (nobody running)")
    started = run.history.now()
    fresh = [run.start_reducer("reducer-new-1"), run.start_reducer("reducer-new-2")]
    verdict = await run.verify()
    restores = [e for p in fresh for e in p.events if e.get("event") == "partition_restored"]
    restored_partitions = {e["partition"] for e in restores}
    families = sum(e.get("families", 0) for e in restores)
    first_assigned = min(
        (e["_t"] for p in fresh for e in p.events if e.get("event") == "partitions_assigned"), default=0
    )
    restore_ms = max((e.get("duration_ms", 0.0) for e in restores), default=None)
    consumed = sum(int(line.get("facts") or 0) for line in _commits(run, fresh))
    expected_consumed = run.publisher.ledger.records - _records_of(run, first)
    run.history.figure("restore_ms_max", restore_ms, "ms")
    run.history.figure("restore_families", families)
    run.history.figure("fresh_ready_s", round(first_assigned - started, 2), "s")
    run.assert_ok(verdict)
    assert restored_partitions == set(range(run.partitions)), f"restored only {sorted(restored_partitions)}"
    assert families > 0, "the fresh reducers restored no family: the changelog was not used"
    assert consumed == expected_consumed, (
        f"the fresh reducers reduced {consumed} facts, expected exactly the {expected_consumed} published after "
        f"the stop (old reducers' commits: {before}) -- {run.history.describe()}"
    )


def _commits(run: Run, procs: list[ServiceProcess]) -> list[dict[str, Any]]:
    names = {p.name for p in procs}
    return [e for e in read_history(run.history.path) if e["ev"] == "commit" and e.get("proc") in names]


def _records_of(run: Run, facts: list[object]) -> int:
    """Records the facts topic got for ``facts`` (broadcasts count once per partition)."""
    return sum(run.partitions if getattr(f, "key", "") is None else 1 for f in facts)
