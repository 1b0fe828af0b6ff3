"""Fault injection. Every fault waits until its target made progress (at least 3 commits since it
started, read from its JSON log), and is written to the history (``fault`` then ``fault_end``).

- :func:`kill9`: ``SIGKILL`` to the process group (no cleanup, no flush, open transactions left open);
- :func:`pause` / :func:`resume`: ``SIGSTOP`` / ``SIGCONT`` (a zombie that wakes up later);
- :func:`sigterm`: a clean stop (finish the batch, commit, leave the group);
- :func:`broker_kill`, :func:`broker_restart`: ``kill -9`` of the broker's process group at a moment
  the broker itself reports a reducer transaction open (Admin API, ``kafkaview.wait_open_transaction``), and its
  restart on the same ports and data (``tools.localkafka.BrokerHandle``); the clean variant is
  :func:`broker_clean_restart` (SIGTERM, wait, start);
- on the 3-node cluster (``run.cluster``): :func:`wait_open_transaction` (the brokers' own view,
  ``ListTransactions``/``DescribeTransactions``), :func:`leader_kill_in_open_transaction`, :func:`nodes_kill` /
  :func:`nodes_restart`, :func:`node_clean_restart`, :func:`node_pause`.
"""

from __future__ import annotations

import asyncio
import random

from tests.system import kafkaview
from tests.system.procs import ServiceProcess
from tests.system.scenario import Run
from tools.kafkacluster import ClusterHandle

PROGRESS_COMMITS = 3


def _still_running(proc: ServiceProcess) -> None:
    """A fault's target must be running: one that already exited by itself crashed, and a kill now
    would hide that (``Processes.check_no_unexpected_exit``)."""
    if not proc.alive():
        raise AssertionError(f"{proc.name} exited by itself (rc {proc.poll()}) before the fault\n{proc.log_tail()}")


async def kill9(run: Run, proc: ServiceProcess, *, progress: int = PROGRESS_COMMITS) -> None:
    await run.wait_progress(proc, progress)
    _still_running(proc)
    run.fault_started("kill9", proc.name, progress=proc.progress, pid=proc.pid)
    await asyncio.to_thread(proc.kill9)
    run.fault_ended("kill9", proc.name)


async def sigterm(run: Run, proc: ServiceProcess, *, progress: int = PROGRESS_COMMITS, within_s: float = 45) -> int:
    await run.wait_progress(proc, progress)
    _still_running(proc)
    run.fault_started("sigterm", proc.name, progress=proc.progress, pid=proc.pid)
    rc = await asyncio.to_thread(proc.terminate, within_s)
    run.fault_ended("sigterm", proc.name, rc=rc)
    return rc


async def pause(run: Run, proc: ServiceProcess, *, progress: int = PROGRESS_COMMITS) -> None:
    await run.wait_progress(proc, progress)
    _still_running(proc)
    run.fault_started("sigstop", proc.name, progress=proc.progress, pid=proc.pid)
    proc.pause()


async def open_changelog_transactions(run: Run, partitions: set[int]) -> dict[int, tuple[int, int]]:
    """Changelog partitions among ``partitions`` whose stable offset is below their end: an open transaction.

    Changelog partition P is written only by the owner of facts partition P, so an open range there is
    the owner's transaction. Returns ``{partition: (stable offset, end offset)}``.
    """
    stable = await kafkaview.end_offsets(run.bootstrap, run.changelog, "read_committed")
    end = await kafkaview.end_offsets(run.bootstrap, run.changelog, "read_uncommitted")
    return {p: (stable[p], end[p]) for p in partitions if stable[p] < end[p]}


async def pause_holding_open_transaction(
    run: Run, proc: ServiceProcess, *, attempts: int = 100, progress: int = PROGRESS_COMMITS
) -> dict[int, tuple[int, int]]:
    """SIGSTOP ``proc`` at a moment it holds an open transaction, seen from outside (its changelog
    partition's stable offset below the end). Each try that finds none is undone at once (SIGCONT) and
    retried after a random 20-300 ms; the tries are ``probe`` lines in the history, the final stop is
    the ``sigstop`` fault. Returns ``{partition: (stable, end)}`` of the open transaction(s)."""
    await run.wait_progress(proc, progress)
    rng = random.Random(run.seed ^ 0x5EED)
    for attempt in range(attempts):
        owned = proc.owned_at(run.history.now())
        proc.pause()
        found = await open_changelog_transactions(run, owned) if owned else {}
        run.history.write("probe", proc=proc.name, attempt=attempt, owned=sorted(owned), open=_jsonable(found))
        if found:
            run.fault_started("sigstop", proc.name, commits=proc.commits, pid=proc.pid, open_txn=_jsonable(found))
            return found
        proc.resume()
        await asyncio.sleep(rng.uniform(0.02, 0.3))
    raise AssertionError(f"never caught {proc.name} with an open transaction in {attempts} tries")


def _jsonable(found: dict[int, tuple[int, int]]) -> dict[str, list[int]]:
    return {str(k): list(v) for k, v in found.items()}


def resume(run: Run, proc: ServiceProcess) -> None:
    proc.resume()
    run.fault_ended("sigstop", proc.name, resumed=True)


def _total_commits(run: Run) -> int:
    return sum(p.commits for p in run.procs.all)


async def _wait_total_commits(run: Run, at_least: int, within_s: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while _total_commits(run) < at_least:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"reducers made {_total_commits(run)} of {at_least} commits within {within_s:.0f} s")
        await asyncio.sleep(0.2)


async def broker_kill(
    run: Run, *, progress: int = PROGRESS_COMMITS, attempts: int = 200
) -> dict[str, kafkaview.OpenTransaction]:
    """``kill -9`` the broker while it coordinates an open transaction of the reducers.

    After the reducers made ``progress`` commits since the last broker fault, wait until the broker
    itself reports one of :meth:`Run.transactional_ids` ``Ongoing`` (:func:`kafkaview.wait_open_transaction`).
    Then freeze every running reducer (SIGSTOP) and ask again: a transaction still ``Ongoing`` while its
    only writer is frozen is still open when the broker dies, so the kill follows at once and the reducers
    are resumed after it. A try whose transactions ended in between is undone and retried (``probe`` lines
    in the history). Returns the open transactions, which the ``broker_kill`` fault line records too."""
    assert run.broker is not None, "broker faults need the run's own broker (private_broker fixture)"
    await _wait_total_commits(run, run.broker_commit_mark + progress)
    ids = run.transactional_ids()
    rng = random.Random(run.seed ^ 0xB20C)
    for attempt in range(attempts):
        await kafkaview.wait_open_transaction(run.bootstrap, ids)
        frozen = [p for p in run.procs.running("services.processor") if p.alive()]
        for proc in frozen:
            proc.pause()
        try:
            found = await kafkaview.open_transactions(run.bootstrap, ids)
            run.history.write("probe", target="broker", attempt=attempt, open=sorted(found))
            if found:
                run.fault_started(
                    "broker_kill",
                    "broker",
                    pid=run.broker.pid,
                    open_txn=[txn.as_json() for txn in found.values()],
                    frozen=[p.name for p in frozen],
                )
                await asyncio.to_thread(run.broker.kill)
                return found
        finally:
            for proc in frozen:
                proc.resume()
        await asyncio.sleep(rng.uniform(0.01, 0.1))
    raise AssertionError(f"never caught the broker with an open transaction of {ids} in {attempts} tries")


async def broker_restart(run: Run) -> None:
    """Start the killed broker again on the same ports and data dir; the fault ends when it serves."""
    assert run.broker is not None
    started = run.history.now()
    await asyncio.to_thread(run.broker.restart, 90.0)
    run.broker_commit_mark = _total_commits(run)
    run.fault_ended("broker_kill", "broker", pid=run.broker.pid, restart_s=round(run.history.now() - started, 2))


async def broker_clean_restart(run: Run, *, progress: int = PROGRESS_COMMITS) -> None:
    assert run.broker is not None
    await _wait_total_commits(run, run.broker_commit_mark + progress)
    run.fault_started("broker_clean_restart", "broker", pid=run.broker.pid)
    await asyncio.to_thread(run.broker.restart, 90.0)
    run.broker_commit_mark = _total_commits(run)
    run.fault_ended("broker_clean_restart", "broker", pid=run.broker.pid)


# --- the 3-node cluster (run.cluster; tools.kafkacluster) ---------------------------------------------


async def wait_open_transaction(
    run: Run, *, topics: tuple[str, ...] | None = None, within_s: float = 60.0, interval_s: float = 0.05
) -> kafkaview.OpenTransaction:
    """Wait until the broker itself reports a transaction of the run's processors open (``Ongoing`` in
    ``ListTransactions`` / ``DescribeTransactions``, :meth:`Run.transactional_ids`) that has
    written to one of ``topics`` (default: the events topic or the changelog). Returns it as described; every
    try is a ``txn_probe`` line of the history. Reusable for any fault that must land inside a transaction."""
    wanted = topics or (run.events, run.changelog)
    ids = run.transactional_ids()
    deadline = asyncio.get_running_loop().time() + within_s
    tries = 0
    while True:
        tries += 1
        found = await kafkaview.open_transactions(run.bootstrap, ids)
        hits = [txn for txn in found.values() if any(txn.partitions.get(topic) for topic in wanted)]
        if hits:
            run.history.write("txn_probe", tries=tries, open=[txn.as_json() for txn in hits])
            return hits[0]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(
                f"the brokers reported no open transaction on {wanted} in {within_s:.0f} s ({tries} tries)"
            )
        await asyncio.sleep(interval_s)


def _cluster(run: Run) -> ClusterHandle:
    assert run.cluster is not None, "node faults need a run on the cluster (system_run(cluster=...))"
    return run.cluster


async def leader_kill_in_open_transaction(run: Run) -> tuple[int, kafkaview.OpenTransaction]:
    """``kill -9`` the leader of a partition an open transaction of the processors writes to, the moment the
    broker reports it open (:func:`wait_open_transaction`). Returns the killed node id and the transaction."""
    cluster = _cluster(run)
    for _ in range(50):
        txn = await wait_open_transaction(run)
        topic = run.events if txn.partitions.get(run.events) else run.changelog
        partition = txn.partitions[topic][0]
        leader = (await kafkaview.partition_leaders(run.bootstrap, topic)).get(partition, -1)
        if leader in cluster.running():
            break
    else:
        raise AssertionError(f"50 open transactions seen, none on a partition led by a running node ({topic})")
    node = cluster.node(leader)
    run.fault_started(
        "leader_kill", f"node-{leader}", pid=node.pid, topic=topic, partition=partition, txn=txn.as_json()
    )
    await asyncio.to_thread(node.kill)
    return leader, txn


async def nodes_kill(run: Run, node_ids: list[int], *, kind: str = "node_kill") -> None:
    """``kill -9`` several nodes at once (the fault ``kind`` starts)."""
    cluster = _cluster(run)
    run.fault_started(kind, ",".join(f"node-{n}" for n in node_ids), pids=[cluster.node(n).pid for n in node_ids])
    for node_id in node_ids:
        await asyncio.to_thread(cluster.node(node_id).kill)


async def nodes_restart(run: Run, node_ids: list[int], *, kind: str = "node_kill") -> float:
    """Start killed or stopped nodes again, all at once (a lone node of a lost quorum cannot be ready by itself),
    and end the fault ``kind`` when every one of them serves. Returns the seconds that took."""
    cluster = _cluster(run)
    started = run.history.now()
    nodes = [cluster.node(n) for n in node_ids]
    for node in nodes:
        await asyncio.to_thread(node.start_again)
    for node in nodes:
        await asyncio.to_thread(node.wait_ready, 180.0)
    took = round(run.history.now() - started, 2)
    run.fault_ended(kind, ",".join(f"node-{n}" for n in node_ids), restart_s=took)
    return took


async def node_clean_restart(run: Run, node_id: int) -> float:
    """SIGTERM one node, wait for its clean shutdown, start it again and wait until it serves (a rolling
    restart's step). Returns the seconds from the stop to serving again."""
    node = _cluster(run).node(node_id)
    t = run.fault_started("node_clean_restart", f"node-{node_id}", pid=node.pid)
    await asyncio.to_thread(node.restart, 180.0)
    run.fault_ended("node_clean_restart", f"node-{node_id}", pid=node.pid)
    return round(run.history.now() - t, 2)


async def node_pause(run: Run, node_id: int, seconds: float) -> None:
    """SIGSTOP one node for ``seconds`` (a long GC pause or a frozen VM), then SIGCONT."""
    node = _cluster(run).node(node_id)
    run.fault_started("node_sigstop", f"node-{node_id}", pid=node.pid, seconds=seconds)
    node.pause()
    try:
        await asyncio.sleep(seconds)
    finally:
        node.resume()
    run.fault_ended("node_sigstop", f"node-{node_id}", pid=node.pid)


async def wait_total_progress(run: Run, commits: int, within_s: float = 120.0) -> None:
    """Wait until the processors made ``commits`` more commits (all together) than now."""
    await _wait_total_commits(run, _total_commits(run) + commits, within_s)
