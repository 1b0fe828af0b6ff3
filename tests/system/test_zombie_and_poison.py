"""Test 4 (zombie fencing) and test 6 (poison facts)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from tests.support.kafka import read_topic
from tests.system import faults
from tests.system.scenario import Run
from tests.system.workload import generate
from tools.demo.generator import Workload

pytestmark = pytest.mark.kafka


async def test_a_paused_reducer_holding_an_open_transaction_is_fenced_and_its_rows_never_show(
    system_run: Callable[..., Awaitable[Run]],
) -> None:
    """SIGSTOP the reducer while it holds an open transaction (seen from outside: its changelog
    partition's stable offset is below the end) for longer than the session and transaction timeouts;
    the other reducer takes its partitions. After SIGCONT the zombie must be fenced AND stay alive
    (fenced, then back in the group with fresh partitions: a fenced reducer that exits has stopped
    every partition it held), the records of its open transaction must never become visible, and
    V1-V7 hold."""
    run = await system_run(threads=600)
    settings = run.settings
    pause_s = 1.5 * max(settings.session_timeout_ms, settings.transaction_timeout_ms) / 1000
    facts = generate(Workload(seed=run.seed, threads=600, concurrency=32))
    await run.setup()
    zombie = run.start_reducer("reducer-a")
    other = run.start_reducer("reducer-b")
    run.publish_in_background(facts, rate=350.0, label="load")
    await run.wait_progress(other, 3)
    open_txn = await faults.pause_holding_open_transaction(run, zombie)
    stopped_at = run.history.now()

    await asyncio.sleep(pause_s)
    taken = {p for p in open_txn if p in other.owned_at(run.history.now())}
    faults.resume(run, zombie)
    resumed_at = run.history.now()

    def after_resume(*events: str) -> bool:
        return any(e.get("_t", 0) > resumed_at and e.get("event") in events for e in zombie.events)

    # Fenced (its next send or commit refused), then back in the group with fresh partitions, alive.
    deadline = asyncio.get_running_loop().time() + 30
    while not (after_resume("partition_fenced", "transaction_failed") and after_resume("partitions_assigned")):
        assert zombie.alive(), f"the resumed zombie exited (rc {zombie.poll()}), not rejoined\n{zombie.log_tail()}"
        assert asyncio.get_running_loop().time() < deadline, (
            f"the resumed zombie was not fenced and rejoined within 30 s\n{zombie.log_tail()}"
        )
        await asyncio.sleep(0.2)
    run.history.write("zombie", taken_over=sorted(taken), fenced=True, rejoined=True, alive=zombie.alive())

    verdict = await run.verify()
    # The zombie's open transaction: its changelog records must never be visible read_committed.
    changelog = await read_topic(run.bootstrap, run.changelog, "read_committed", timeout=60)
    visible = [
        (r.partition, r.offset)
        for r in changelog
        if r.partition in open_txn and open_txn[r.partition][0] <= r.offset < open_txn[r.partition][1]
    ]
    run.history.figure("zombie_pause_s", round(resumed_at - stopped_at, 2), "s")
    run.assert_ok(verdict)
    assert not visible, (
        f"records of the zombie's open transaction became visible: {visible} -- {run.history.describe()}"
    )
    assert taken == set(open_txn), f"the other reducer did not take {sorted(open_txn)} during the pause"
    assert zombie.alive(), f"the zombie exited after rejoining (rc {zombie.poll()})\n{zombie.log_tail()}"


POISON = {"poison_rate_garbage": 0.01, "poison_rate_invalid": 0.002, "oversized": 3}


async def test_poison_facts_are_dead_lettered_exactly_once_with_their_source(
    system_run: Callable[..., Awaitable[Run]],
) -> None:
    """1 % garbage bytes, 0.2 % decodable-but-invalid facts and 3 oversized facts (over 1 MiB, on a facts
    topic that accepts 4 MiB records), plus one reducer kill -9: the dead-letter topic holds exactly the
    ledger's poison (no duplicates), each with reason, exception type and source topic/partition/offset;
    the valid rows equal the oracle; no partition stalls (V8 and the witness's longest gap)."""
    run = await system_run(threads=600, **POISON)
    facts = generate(Workload(seed=run.seed, threads=600, concurrency=32, **POISON))
    await run.setup(big_facts=True)
    first = run.start_reducer("reducer-a")
    run.start_reducer("reducer-b")
    run.publish_in_background(facts, rate=500.0, label="poisoned load")
    await faults.kill9(run, first, progress=10)
    run.start_reducer("reducer-a")
    verdict = await run.verify(v8=True)
    run.assert_ok(verdict)
    poison = run.publisher.ledger.poison
    assert poison["undecodable"] and poison["invalid"] and poison["oversized"], f"poison kinds missing: {poison}"
    assert run.max_stall_s <= 20, f"a partition stalled {run.max_stall_s:.1f} s -- {run.history.describe()}"
