"""Test 2: kill -9 under load.

Three reducer processes share a seeded workload of 3,000 thread families (about 58,000 facts: the
issue's "about 60,000 facts over 3,000 threads"), published at a steady rate. About every 10 s
(seeded jitter, 8-12 s) a random reducer that has made at least 3 commits since it started is
killed with SIGKILL and started again at once. Kills stop 15 s before the publishing ends, so rows
of every killed partition still have facts to resume with.

Checks: V1-V8, the ledger, the dead letters, and for every kill, each partition the killed reducer
held shows a new visible row within 20 s (measured by the witness consumer). A reducer that exits by
itself is a failure, never "one more kill": only a running reducer is killed (``faults.kill9``), the
schedule stops at the first exit it did not cause, and check X fails on it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

import pytest

from tests.system import faults
from tests.system.scenario import Run
from tests.system.workload import generate
from tools.demo.generator import Workload

pytestmark = pytest.mark.kafka

THREADS = 3_000
RATE = 650.0
"""facts/s: about 90 s of publishing for ~58,000 facts, so the whole test fits in 3 minutes."""
KILL_EVERY_S = (8.0, 12.0)
RESUME_LIMIT_S = 20.0


async def test_reducers_killed_every_10_s_under_load_lose_and_duplicate_nothing(
    system_run: Callable[..., Awaitable[Run]],
) -> None:
    run = await system_run(threads=THREADS, rate=RATE, reducers=3)
    rng = random.Random(run.seed)
    facts = generate(Workload(seed=run.seed, threads=THREADS, concurrency=64))
    await run.setup()
    roles = {role: run.start_reducer(role) for role in ("reducer-1", "reducer-2", "reducer-3")}
    publish_started = run.history.now()
    run.publish_in_background(facts, rate=RATE, label="load")
    publish_end = publish_started + len(facts) / RATE
    kills = 0
    while True:
        await asyncio.sleep(rng.uniform(*KILL_EVERY_S))
        crashed = run.procs.check_no_unexpected_exit()
        assert not crashed, f"a reducer exited by itself; only kills are allowed here: {crashed}"
        if run.history.now() > publish_end - 15:
            break
        ready = [role for role, proc in roles.items() if proc.commits >= faults.PROGRESS_COMMITS]
        role = rng.choice(ready or sorted(roles))
        await faults.kill9(run, roles[role])
        roles[role] = run.start_reducer(role)
        kills += 1
    verdict = await run.verify(v8=True)
    resumes = run.resume_after_faults()
    slow = [r for r in resumes if r["resume_s"] is None or r["resume_s"] > RESUME_LIMIT_S]
    worst = max((r["resume_s"] or 0.0 for r in resumes), default=0.0)
    run.history.figure("kills", kills)
    run.history.figure("max_resume_s", worst, "s")
    run.assert_ok(verdict)
    assert kills >= 5, (
        f"only {kills} kills happened: the schedule did not exercise anything -- {run.history.describe()}"
    )
    assert not slow, (
        f"partitions did not resume within {RESUME_LIMIT_S} s after a kill: {slow} -- {run.history.describe()}"
    )
