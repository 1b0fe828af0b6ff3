"""Test 10 (mixed faults end to end) and test 11 (the soak, behind ``--soak``).

Three reducers, two senders, the endpoint failing 5 % of requests with 500 throughout. Every 15 s a
fault drawn (seeded) from the sets of the other tests -- reducer kill -9, reducer SIGTERM, reducer
paused past its session timeout (zombie), sender kill -9, endpoint outage (503 + Retry-After for 10 s),
endpoint flakiness (accepted-but-timed-out requests, connection resets, 429s) -- each followed by a
fault-free stretch; every killed or stopped process is started again. Then heal (endpoint answers
200) and drain.

Broker faults are not in this schedule: a broker restart during a transaction currently stalls the
partition for good (finding F3, ``tests/system/FINDINGS.md``), which test 5 and the F3 reproduction
already show; with it here, this test would pass or fail with the seed. Add ``"broker_restart"`` to
``FAULT_KINDS`` (and run on ``private_broker``) once F3 is fixed.

Checks: V1-V8, E1-E4, R1-R2; the soak adds RSS per process, sampled every 10 s, flat after warm-up.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Awaitable, Callable

import pytest

from tests.system import faults, kafkaview
from tests.system.delivery import check_delivery, check_retry_behaviour
from tests.system.procs import ServiceProcess
from tests.system.scenario import SENDER_ENV, Run
from tests.system.workload import generate
from tools.demo.endpoint import RandomFailures, RecordingEndpoint, ResetConnection, Stall, Throttle, Unavailable
from tools.demo.generator import Workload

pytestmark = pytest.mark.kafka

FAULT_KINDS = (
    "reducer_kill",
    "reducer_term",
    "reducer_pause",
    "sender_kill",
    "endpoint_outage",
    "endpoint_flaky",
)
FAULT_EVERY_S = 15.0
OUTAGE_RETRY_AFTER_S = 2.0


class Cluster:
    """The reducers and senders of a mixed run, by role, restarted after every fault."""

    def __init__(self, run: Run, endpoint: RecordingEndpoint, reducers: int, senders: int) -> None:
        self.run = run
        self.endpoint = endpoint
        self.reducers = {f"reducer-{i}": run.start_reducer(f"reducer-{i}") for i in range(1, reducers + 1)}
        self.senders = {
            f"sender-{i}": run.start_sender(endpoint.url, f"sender-{i}", **SENDER_ENV) for i in range(1, senders + 1)
        }

    def pick(self, group: dict[str, ServiceProcess], rng: random.Random) -> str:
        ready = sorted(role for role, proc in group.items() if proc.progress >= faults.PROGRESS_COMMITS)
        return rng.choice(ready or sorted(group))

    async def inject(self, kind: str, rng: random.Random) -> None:
        run, endpoint = self.run, self.endpoint
        if kind in ("reducer_kill", "reducer_term", "reducer_pause"):
            role = self.pick(self.reducers, rng)
            proc = self.reducers[role]
            if kind == "reducer_kill":
                await faults.kill9(run, proc)
            elif kind == "reducer_term":
                rc = await faults.sigterm(run, proc)
                assert rc == 0, f"{proc.name} did not stop cleanly (rc {rc})\n{proc.log_tail()}"
            else:
                await faults.pause(run, proc)
                await asyncio.sleep(1.5 * run.settings.session_timeout_ms / 1000)
                faults.resume(run, proc)
                return  # the zombie rejoins by itself
            self.reducers[role] = run.start_reducer(role)
        elif kind == "sender_kill":
            role = self.pick(self.senders, rng)
            await faults.kill9(run, self.senders[role])
            self.senders[role] = run.start_sender(endpoint.url, role, **SENDER_ENV)
        elif kind == "endpoint_outage":
            run.fault_started("endpoint_outage", "endpoint", seconds=10, retry_after=OUTAGE_RETRY_AFTER_S)
            endpoint.add_fault(Unavailable(seconds=10, retry_after=str(int(OUTAGE_RETRY_AFTER_S))))
            await asyncio.sleep(10)
            run.fault_ended("endpoint_outage", "endpoint")
        elif kind == "endpoint_flaky":
            run.fault_started("endpoint_flaky", "endpoint", stalls=2, resets=3, throttles=3)
            endpoint.add_fault(Stall(count=2, seconds=3.0, accept=True))
            endpoint.add_fault(ResetConnection(count=3))
            endpoint.add_fault(Throttle(count=3, retry_after="1"))
            await asyncio.sleep(5)
            run.fault_ended("endpoint_flaky", "endpoint")
        else:
            raise ValueError(kind)

    async def schedule(self, rng: random.Random, until: float, *, on_tick: Callable[[], None] | None = None) -> int:
        """A fault every ``FAULT_EVERY_S`` (its start), until history time ``until``; returns how many."""
        count = 0
        while self.run.history.now() + FAULT_EVERY_S <= until:
            slot_end = self.run.history.now() + FAULT_EVERY_S
            await self.inject(rng.choice(FAULT_KINDS), rng)
            count += 1
            while self.run.history.now() < slot_end:  # the fault-free stretch
                if on_tick is not None:
                    on_tick()
                await asyncio.sleep(min(1.0, max(0.0, slot_end - self.run.history.now())))
        return count

    def all_processes(self) -> list[ServiceProcess]:
        return [*self.reducers.values(), *self.senders.values()]


async def heal_and_verify(run: Run, cluster: Cluster) -> None:
    run.fault_started("endpoint_heal", "endpoint")
    cluster.endpoint.clear_faults()
    run.fault_ended("endpoint_heal", "endpoint")
    verdict = await run.verify(sender=True, v8=True)
    assert run.oracle is not None
    sender_dlq = await kafkaview.read_all(run.bootstrap, run.events_dlq)
    requests = cluster.endpoint.requests
    checks, figures = check_delivery(run.oracle, requests, sender_dlq)
    retry_checks, retry_figures = check_retry_behaviour(
        requests,
        retry_after_by_fault={"unavailable": OUTAGE_RETRY_AFTER_S, "throttle": 1.0},
        interruptions=run.sender_interruptions(),
        request_timeout_s=float(SENDER_ENV["SENDER_REQUEST_TIMEOUT_S"]),
        backoff_cap_s=float(SENDER_ENV["SENDER_BACKOFF_CAP_S"]),
    )
    for check in [*checks, *retry_checks]:
        verdict.add(check)
        run.history.write("check", name=check.name, ok=check.ok, detail=check.detail)
    for name, value in {**figures, **retry_figures}.items():
        run.history.figure(name, value)
    run.assert_ok(verdict)


async def test_mixed_faults_end_to_end_lose_and_duplicate_nothing(
    system_run: Callable[..., Awaitable[Run]],
) -> None:
    run = await system_run(threads=1_500, reducers=3, senders=2, fault_every_s=FAULT_EVERY_S)
    endpoint = run.start_endpoint()
    rng = random.Random(run.seed)
    facts = generate(Workload(seed=run.seed, threads=1_500, concurrency=48))
    rate = 360.0
    await run.setup()
    endpoint.add_fault(RandomFailures(probability=0.05, seed=run.seed, statuses=(500,)))
    cluster = Cluster(run, endpoint, reducers=3, senders=2)
    started = run.history.now()
    run.publish_in_background(facts, rate=rate, label="mixed load")
    await asyncio.gather(*(run.wait_progress(p, 3) for p in cluster.reducers.values()))
    count = await cluster.schedule(rng, until=started + len(facts) / rate)
    run.history.figure("mixed_faults", count)
    await heal_and_verify(run, cluster)
    assert count >= 4, f"only {count} faults were injected -- {run.history.describe()}"


# --------------------------------------------------------------------------------------------------------
# Test 11: the soak (opt-in: --soak)
# --------------------------------------------------------------------------------------------------------

SOAK_MINUTES = float(os.environ.get("RA_SOAK_MINUTES", "30"))
SOAK_THREADS = int(os.environ.get("RA_SOAK_THREADS", "5000"))
"""Defaults: the issue's 30 minutes and 5,000 families (about 650,000 facts: 645,988 in the full run in
docs/reliability.md); the variables only serve a short smoke run of the soak's code
(``RA_SOAK_MINUTES=3 RA_SOAK_THREADS=150 pytest --soak -k soak``)."""


@pytest.mark.soak
@pytest.mark.timeout(SOAK_MINUTES * 60 + 900)
async def test_soak_a_million_facts_under_mixed_faults_with_flat_memory(
    system_run: Callable[..., Awaitable[Run]],
) -> None:
    """About 650,000 facts (not the million the name says) over 5,000 thread families for 30 minutes
    under the mixed fault schedule; every process's RSS is sampled every 10 s; after a 5-minute warm-up,
    the last quarter's median RSS of each long-lived role must stay within 1.5 x its median right after
    warm-up. Figures printed."""
    run = await system_run(threads=SOAK_THREADS, soak=True)
    endpoint = run.start_endpoint()
    rng = random.Random(run.seed)
    # Families of 8-14 turns: 5,000 of them make about 650,000 facts.
    workload = Workload(seed=run.seed, threads=SOAK_THREADS, concurrency=256, turns_per_thread=(8, 14))
    facts = generate(workload)
    rate = len(facts) / (SOAK_MINUTES * 60)
    run.history.write("soak_workload", facts=len(facts), rate=round(rate, 1))
    await run.setup()
    endpoint.add_fault(RandomFailures(probability=0.05, seed=run.seed, statuses=(500,)))
    cluster = Cluster(run, endpoint, reducers=3, senders=2)
    started = run.history.now()
    run.publish_in_background(facts, rate=rate, label="soak")
    samples: dict[str, list[tuple[float, int]]] = {}
    last_sample = 0.0

    def sample() -> None:
        nonlocal last_sample
        if run.history.now() - last_sample < 10:
            return
        last_sample = run.history.now()
        for role, proc in [*cluster.reducers.items(), *cluster.senders.items()]:
            if proc.alive():
                kib = proc.rss_kib()
                if kib is not None:
                    samples.setdefault(role, []).append((last_sample, kib))
                    run.history.write("rss", role=role, proc=proc.name, kib=kib)

    count = await cluster.schedule(rng, until=started + len(facts) / rate, on_tick=sample)
    run.history.figure("soak_faults", count)
    warm = started + min(300.0, SOAK_MINUTES * 60 / 6)
    growth = {}
    for role, points in samples.items():
        after = sorted(k for t, k in points if t >= warm)
        if len(after) < 8:
            continue
        early = sorted(after[: len(after) // 4])
        late = sorted(after[-(len(after) // 4) :])
        growth[role] = late[len(late) // 2] / max(1, early[len(early) // 2])
        run.history.figure(f"rss_growth_{role}", round(growth[role], 2), "x")
    print(f"soak: {len(facts)} facts, {count} faults, RSS growth after warm-up: {growth}")
    await heal_and_verify(run, cluster)
    assert all(g <= 1.5 for g in growth.values()), f"RSS grew: {growth} -- {run.history.describe()}"
