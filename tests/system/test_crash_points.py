"""Test 1 (crash-point matrix) and the negative controls of issue 6.

Scenario of every case (``crash_once``), bytewax ``test_abort_with_snapshots`` shape:

1. publish the first half of a seeded workload; a clean reducer A reduces it to lag 0 (so the
   changelog holds state and a restore has work to do);
2. start reducer C with ``RA_CRASH_AT=<step>:<n>``; once C holds partitions (or died trying),
   publish the second half, so C's transactions carry rows;
3. for the rebalance steps (``in_revoke``, ``after_fence_before_offset_read``), once C made 3 commits,
   start reducer B: the group rebalances and C reaches the step a second time;
4. C exits with status 86 at the step (the verifier fails if it never gets there); restart it clean;
5. drain and check V1-V7, the ledger and the dead letters.

Negative controls: the same scenario with ``RA_NEGATIVE_CONTROL`` set on every reducer. The verifier
must FAIL them (offsets outside the transaction lose rows: V1; rows outside the transaction duplicate
them: V2). Their real-build counterparts, same crash spec, are the ``after_offsets_added`` and
``after_rows_sent`` cases of the matrix, which must pass.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from services.processor.hooks import STEPS
from tests.support.processor_hooks import CRASH_EXIT_CODE
from tests.system.scenario import SETTINGS, Run
from tests.system.verifier import Verdict
from tests.system.workload import generate, split
from tools.demo.generator import Workload

pytestmark = pytest.mark.kafka

CRASH_COUNT = {"during_restore": 1, "in_revoke": 2, "after_fence_before_offset_read": 2}
"""The n of ``RA_CRASH_AT=<step>:<n>``: 3 by default (after a few commits); ``in_revoke`` and
``after_fence_before_offset_read`` are first reached at C's initial join (an empty revocation, its
first assignment), so n=2 is the rebalance B causes; a restore happens once, at C's join."""
REBALANCE_STEPS = frozenset({"in_revoke", "after_fence_before_offset_read"})
MATRIX_SETTINGS = SETTINGS.__class__(**{**SETTINGS.__dict__, "max_batch_records": 200})
THREADS = 200
REBALANCE_RATE = 400.0
"""facts/s of the second half in the rebalance cases: about 5 s of input, so work remains after C's crash."""


def crash_spec(step: str) -> str:
    return f"{step}:{CRASH_COUNT.get(step, 3)}"


async def crash_once(run: Run, step: str, *, negative: str | None = None) -> Verdict:
    facts = generate(Workload(seed=run.seed, threads=THREADS, concurrency=16))
    first, second = split(facts, 0.5)
    await run.setup()
    await run.publisher.publish(first, label="first half")
    a = run.start_reducer("reducer-a", negative=negative)
    assert await run.wait_drained(60) is not None, f"reducer A never drained the first half\n{a.log_tail()}"

    c = run.start_reducer("reducer-c", crash=crash_spec(step), negative=negative)
    c.expect_exit()  # armed: it must exit at the step (asserted below); no other process may exit
    # Publish the second half once C owns partitions (or died trying, e.g. during its restore).
    deadline = asyncio.get_running_loop().time() + 60
    while c.alive() and not any(e.get("event") == "partitions_assigned" and e.get("partitions") for e in c.events):
        assert asyncio.get_running_loop().time() < deadline, f"C never got partitions\n{c.log_tail()}"
        await asyncio.sleep(0.1)
    if step in REBALANCE_STEPS:
        # Paced, so the rebalance B causes (and C's crash in it) happens while facts still arrive.
        run.publish_in_background(second, rate=REBALANCE_RATE, label="second half")
        await run.wait_progress(c, 3)
        run.start_reducer("reducer-b", negative=negative)
    else:
        # At once, so every transaction of C carries rows (a negative control must not depend on luck).
        run.publish_in_background(second, label="second half")
    rc = await run.wait_exit(c, 90)
    assert rc == CRASH_EXIT_CODE, f"C exited {rc} instead of crashing at {step}\n{c.log_tail()}"
    run.fault_started("crash_point", c.name, step=crash_spec(step), commits=c.commits)
    run.fault_ended("crash_point", c.name)
    run.start_reducer("reducer-c", negative=negative)
    return await run.verify()


@pytest.mark.parametrize("step", STEPS)
async def test_crash_at_each_commit_step_loses_and_duplicates_nothing(
    system_run: Callable[..., Awaitable[Run]], step: str
) -> None:
    run = await system_run(settings=MATRIX_SETTINGS, crash=crash_spec(step))
    verdict = await crash_once(run, step)
    run.assert_ok(verdict)


@pytest.mark.parametrize(
    ("negative", "step", "must_fail"),
    [
        ("offsets_outside_txn", "after_offsets_added", "V1 no row missing"),
        ("rows_outside_txn", "after_rows_sent", "V2 no row duplicated"),
    ],
)
async def test_verifier_fails_a_broken_commit_protocol(
    system_run: Callable[..., Awaitable[Run]], negative: str, step: str, must_fail: str
) -> None:
    run = await system_run(settings=MATRIX_SETTINGS, negative=negative, crash=crash_spec(step))
    verdict = await crash_once(run, step, negative=negative)
    run.history.write("run_end", ok=not verdict.ok, negative_control=negative, failed=verdict.failed)
    assert not verdict.ok, f"the verifier passed the broken build {negative!r}: it cannot fail\n{verdict}"
    assert must_fail in verdict.failed, f"{negative}: expected {must_fail!r} to fail\n{verdict}"
    print(f"negative control {negative}: verifier failed as it must:\n{verdict}")
