"""Cluster faults (issue 13): the pipeline on the local 3-node cluster, replication factor 3 and
``min.insync.replicas=2`` on every topic, Kafka's internal topics included.

Every test runs two processors and a sender (to the loopback endpoint) over at least 100,000 facts
(``THREADS`` thread families: 85 % published at ``RATE``, then the rest trickled for as long as the faults
last and published at once after them, so every fault happens under load however slow the machine), injects
its broker faults while the facts flow, and then checks V1-V8, the ledger, the dead letters, E1-E4 at the
endpoint (0 rows lost, 0 duplicated, state and rows equal to the offline replay by the oracle) and X (no
process exited: the processors and the sender ride every fault out without a restart). The resume time of each
fault is the time from the fault until every facts partition has a new row visible (the witness), less than
``RESUME_LIMIT_S``.

- leader kill: three times, ``kill -9`` of the leader of a partition that an open transaction of the
  processors writes to, the moment the brokers report that transaction open (``ListTransactions`` /
  ``DescribeTransactions``, ``faults.wait_open_transaction``); the node is started again each time;
- SIGSTOP of the node leading a partition of an open transaction for ``PAUSE_S`` (over its 3 s broker
  session and the processors' 6 s session), then SIGCONT;
- a rolling restart: each node in turn stopped cleanly, started, and serving before the next;
- loss of quorum: two nodes killed for ``QUORUM_OUTAGE_S``. Nothing may become visible meanwhile (one
  in-sync replica is below ``min.insync.replicas``, and one controller of three is no quorum), no process may
  exit, and processing resumes by itself once both nodes are back.

CI runs the leader kill and the quorum loss; the SIGSTOP and the rolling restart are marked ``cluster_extra``
and run with ``--cluster-all`` (together the four take about 10 minutes here, a third of CI's budget).
``RA_CLUSTER_REPEAT=N`` runs each scenario N times (default 1): the extra runs are the opt-in repetitions
(docs/reliability.md, "Cluster faults").
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from tests.system import faults, kafkaview
from tests.system.delivery import check_delivery
from tests.system.scenario import SENDER_ENV, Run
from tests.system.workload import generate, split
from tools.demo.endpoint import RecordingEndpoint
from tools.demo.generator import GeneratedFact, Workload
from tools.kafkacluster import ClusterHandle

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(900)]
"""900 s: the first test also starts the session's cluster; a run takes about 1.5 minutes on a quiet machine."""

MIN_FACTS = 100_000
THREADS = 5_300
"""About 102,000 facts (the generator's families average 19 facts)."""
RATE = 2_000.0
"""facts/s: about 50 s of publishing."""
RESERVE = 0.15
"""Share of the facts kept back from the paced body: trickled while faults last, the rest after them."""
BODY_CHUNK = 5_000
TRICKLE_RATE = 100.0
TRICKLE_CHUNK = 200
RESUME_LIMIT_S = 60.0
PAUSE_S = 10.0
QUORUM_OUTAGE_S = 20.0
QUORUM_SETTLE_S = 5.0
"""After the two kills, commits in flight may still finish; from then on nothing may become visible."""
REPEAT = int(os.environ.get("RA_CLUSTER_REPEAT", "1"))
repeat = pytest.mark.parametrize("attempt", range(1, REPEAT + 1))


@dataclass
class Load:
    """The run under load: ``body`` at ``RATE``, then ``reserve`` trickled (``TRICKLE_RATE``) for as long as the
    faults last, so every fault happens while facts arrive however slow the machine; the rest of the reserve
    follows at once when the faults are over (:meth:`faults_over`)."""

    run: Run
    endpoint: RecordingEndpoint
    body: list[GeneratedFact]
    reserve: list[GeneratedFact]
    over: asyncio.Event = field(default_factory=asyncio.Event)

    async def feed(self) -> None:
        # In chunks: each publish() waits for its acknowledgements, so the publisher never runs far ahead of
        # what the brokers take (a slow machine or a fault then slows the load instead of piling it up).
        for start in range(0, len(self.body), BODY_CHUNK):
            await self.run.publisher.publish(self.body[start : start + BODY_CHUNK], rate=RATE, label="load")
        sent = 0
        while not self.over.is_set() and sent < len(self.reserve):
            chunk = self.reserve[sent : sent + TRICKLE_CHUNK]
            await self.run.publisher.publish(chunk, rate=TRICKLE_RATE, label="trickle during the faults")
            sent += len(chunk)
        await self.run.publisher.publish(self.reserve[sent:], label="after the faults")

    def faults_over(self) -> None:
        self.run.history.write("faults_over")
        self.over.set()


async def start_load(system_run: Callable[..., Awaitable[Run]], cluster: ClusterHandle) -> Load:
    """Topics (replication 3), two processors, a sender and the endpoint; publishing starts in the background."""
    run = await system_run(cluster=cluster, threads=THREADS, rate=RATE, reducers=2, senders=1)
    facts = generate(Workload(seed=run.seed, threads=THREADS, concurrency=64))
    assert len(facts) >= MIN_FACTS, f"the workload has {len(facts)} facts, fewer than {MIN_FACTS}"
    body, reserve = split(facts, 1 - RESERVE)
    await run.setup()
    endpoint = run.start_endpoint()
    processors = [run.start_reducer("reducer-1"), run.start_reducer("reducer-2")]
    run.start_sender(endpoint.url, **SENDER_ENV)
    load = Load(run, endpoint, body, reserve)
    run.in_background(load.feed())
    for proc in processors:
        await run.wait_progress(proc, faults.PROGRESS_COMMITS, within_s=120)
    return load


async def finish(load: Load, kinds: tuple[str, ...], *, since: list[float] | None = None) -> list[float | None]:
    """End the faults (the reserve is published), verify everything, record the figures; return the resume
    time of each fault of ``kinds`` (from its start, or from the history times ``since``), after asserting the
    verdict."""
    run = load.run
    load.faults_over()
    verdict = await run.verify(sender=True, v8=True)
    assert run.oracle is not None
    sender_dlq = await kafkaview.read_all(run.bootstrap, run.events_dlq)
    checks, figures = check_delivery(run.oracle, load.endpoint.requests, sender_dlq)
    for check in checks:
        verdict.add(check)
        run.history.write("check", name=check.name, ok=check.ok, detail=check.detail)
    for name, value in figures.items():
        run.history.figure(name, value)
    starts = [f["t"] for f in run.faults if f["kind"] in kinds]
    resumes = [run.resume_s(t) for t in (since if since is not None else starts)]
    run.history.figure("cluster_faults", len(starts))
    run.history.write("resumes", kinds=list(kinds), resume_s=resumes)
    run.history.figure("max_resume_s", max((r for r in resumes if r is not None), default=None), "s")
    print(
        f"cluster figures: facts {run.oracle.facts}, faults {len(starts)}, rows lost {run.rows_lost}, "
        f"duplicated {run.rows_duplicated}, resume s {resumes}"
    )
    run.assert_ok(verdict)
    slow = [r for r in resumes if r is None or r > RESUME_LIMIT_S]
    assert not slow, f"not resumed within {RESUME_LIMIT_S} s: {resumes} -- {run.history.describe()}"
    return resumes


@repeat
async def test_partition_leader_killed_three_times_inside_open_transactions_loses_and_duplicates_nothing(
    system_run: Callable[..., Awaitable[Run]], cluster: ClusterHandle, attempt: int
) -> None:
    load = await start_load(system_run, cluster)
    killed = []
    for _ in range(3):
        await faults.wait_total_progress(load.run, faults.PROGRESS_COMMITS)
        node_id, txn = await faults.leader_kill_in_open_transaction(load.run)
        killed.append((node_id, txn.transactional_id))
        await faults.nodes_restart(load.run, [node_id], kind="leader_kill")
    await finish(load, ("leader_kill",))
    assert len(killed) == 3, killed


@pytest.mark.cluster_extra
@repeat
async def test_a_node_paused_past_its_session_timeout_loses_and_duplicates_nothing(
    system_run: Callable[..., Awaitable[Run]], cluster: ClusterHandle, attempt: int
) -> None:
    load = await start_load(system_run, cluster)
    run = load.run
    txn = await faults.wait_open_transaction(run)
    topic = run.events if txn.partitions.get(run.events) else run.changelog
    leader = (await kafkaview.partition_leaders(run.bootstrap, topic))[txn.partitions[topic][0]]
    await faults.node_pause(run, leader, PAUSE_S)
    await finish(load, ("node_sigstop",))


@pytest.mark.cluster_extra
@repeat
async def test_rolling_restart_of_all_three_nodes_under_load_loses_and_duplicates_nothing(
    system_run: Callable[..., Awaitable[Run]], cluster: ClusterHandle, attempt: int
) -> None:
    load = await start_load(system_run, cluster)
    for node in cluster.nodes:
        await faults.wait_total_progress(load.run, faults.PROGRESS_COMMITS)
        await faults.node_clean_restart(load.run, node.config.node_id)
    await finish(load, ("node_clean_restart",))


@repeat
async def test_losing_the_quorum_stops_processing_cleanly_and_it_resumes_by_itself(
    system_run: Callable[..., Awaitable[Run]], cluster: ClusterHandle, attempt: int
) -> None:
    load = await start_load(system_run, cluster)
    run = load.run
    await faults.wait_open_transaction(run)
    down = [node.config.node_id for node in cluster.nodes[1:]]
    await faults.nodes_kill(run, down, kind="quorum_loss")
    t_kill = run.history.now()
    await asyncio.sleep(QUORUM_OUTAGE_S)
    alive = [p.name for p in run.procs.all if p.module != "tests.system.watcher" and p.alive()]
    t_back = run.history.now()
    await faults.nodes_restart(run, down, kind="quorum_loss")
    await finish(load, ("quorum_loss",), since=[run.history.now()])  # resume: from both nodes serving again
    during = sum(1 for times in run.row_times().values() for t in times if t_kill + QUORUM_SETTLE_S < t < t_back)
    run.history.figure("rows_visible_without_quorum", during)
    assert len(alive) == 3, f"processes alive during the outage: {alive} -- {run.history.describe()}"
    assert during == 0, f"{during} rows became visible with two of three nodes down -- {run.history.describe()}"
