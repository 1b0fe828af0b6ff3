"""Fault injection. Every fault waits until its target made progress (at least 3 commits since it
started, read from its JSON log), and is written to the history (``fault`` then ``fault_end``).

- :func:`kill9`: ``SIGKILL`` to the process group (no cleanup, no flush, open transactions left open);
- :func:`pause` / :func:`resume`: ``SIGSTOP`` / ``SIGCONT`` (a zombie that wakes up later);
- :func:`sigterm`: a clean stop (finish the batch, commit, leave the group);
- :func:`broker_kill`, :func:`broker_restart`: ``kill -9`` of the broker's process group, and its
  restart on the same ports and data (``services.localkafka.BrokerHandle``); the clean variant is
  :func:`broker_clean_restart` (SIGTERM, wait, start).
"""

from __future__ import annotations

import asyncio
import random

from tests.system import kafkaview
from tests.system.procs import ServiceProcess
from tests.system.scenario import Run

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


async def broker_kill(run: Run, *, progress: int = PROGRESS_COMMITS) -> None:
    """``kill -9`` the broker after the reducers made ``progress`` commits since the last broker fault."""
    assert run.broker is not None, "broker faults need the run's own broker (private_broker fixture)"
    await _wait_total_commits(run, run.broker_commit_mark + progress)
    run.fault_started("broker_kill", "broker", pid=run.broker.pid)
    await asyncio.to_thread(run.broker.kill)


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
