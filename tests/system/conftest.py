"""Fixtures of the reliability suite (issue 6); see ``docs/reliability.md``.

- ``--soak``: run the tests marked ``soak`` (long; never in CI). Without it they are deselected (pytest
  reports them as deselected), so a CI run has no skipped test.
- ``--cluster-all``: also run the cluster scenarios marked ``cluster_extra`` (deselected likewise).
- ``system_run``: a factory ``await system_run(partitions=4, broker=None)`` -> :class:`Run` with a seed
  (``RA_SEED`` to replay one, else random), a history file and unique topics; every process it
  started is killed at teardown, whatever the outcome. On failure the report gets a "system run"
  section with the seed and the history path. Any process that exited without the test stopping it
  (``Processes.check_no_unexpected_exit``) fails the test at teardown, whatever the test checked.
- ``private_broker``: a broker of the test's own (for broker kill/restart), stopped at teardown.
- ``cluster``: the session's 3-node cluster (``kafka_cluster``), every node running again after the test.
  ``system_run(cluster=cluster)`` points the run at it and creates its topics with replication factor 3.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.kafka import start_broker_on_free_ports
from tests.support.optin import deselect_unless_opted_in
from tests.system.history import SESSION_MARKER, History, history_dir
from tests.system.scenario import Run, Settings
from tools.kafkacluster import ClusterHandle
from tools.localkafka import BrokerHandle


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak",
        action="store_true",
        default=False,
        help="run the reliability soak (tests/system, marked 'soak'; about 30 minutes, not for CI)",
    )
    parser.addoption(
        "--cluster-all",
        action="store_true",
        default=False,
        help="also run the cluster scenarios marked 'cluster_extra' (node SIGSTOP, rolling restart; about "
        "2.5 minutes each, kept out of CI's 30-minute budget)",
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    """Mark the session's start, so ``python -m tests.system.report`` summarises this session's histories."""
    if not hasattr(session.config, "workerinput"):
        (history_dir() / SESSION_MARKER).write_text(f"{time.time()}\n")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without ``--soak`` the soak is deselected (not collected as a skip), and so are the extra cluster
    scenarios without ``--cluster-all``: CI runs no skipped test."""
    deselect_unless_opted_in(config, items, "soak", "--soak")
    deselect_unless_opted_in(config, items, "cluster_extra", "--cluster-all")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    runs: list[Run] = getattr(item, "_system_runs", [])
    if report.when == "call" or (report.when == "setup" and report.failed):
        for run in runs:
            run.history.write("pytest", outcome=report.outcome, when=report.when)
    if report.failed and runs:
        text = "\n".join(run.history.describe() for run in runs)
        report.sections.append(("system run (seed and history)", text))
    return report


def seed_for_run() -> int:
    given = os.environ.get("RA_SEED")
    return int(given) if given else random.SystemRandom().randrange(1, 2**31)


@pytest.fixture
async def system_run(
    request: pytest.FixtureRequest, kafka_broker: BrokerHandle
) -> AsyncIterator[Callable[..., Awaitable[Run]]]:
    runs: list[Run] = []
    request.node._system_runs = runs  # type: ignore[attr-defined]

    async def make(
        *,
        partitions: int = 4,
        broker: BrokerHandle | None = None,
        cluster: ClusterHandle | None = None,
        settings: Settings | None = None,
        **details: Any,
    ) -> Run:
        name = request.node.name
        short = name.removeprefix("test_")[:40]
        seed = seed_for_run()
        history = History.create(name, seed, partitions=partitions, **details)
        log_dir = history.path.with_suffix(".logs")
        log_dir.mkdir(parents=True, exist_ok=True)
        run = Run(
            name=short,
            bootstrap=cluster.bootstrap if cluster is not None else (broker or kafka_broker).bootstrap,
            history=history,
            log_dir=log_dir,
            partitions=partitions,
            broker=broker,
            cluster=cluster,
            **({"settings": settings} if settings else {}),
        )
        runs.append(run)
        print(f"system run: {history.describe()}")
        return run

    unexpected: list[str] = []
    try:
        yield make
        # Before the cleanup kills the survivors: every exit so far must be one the test caused.
        unexpected = [line for run in runs for line in run.procs.check_no_unexpected_exit()]
    finally:
        for run in reversed(runs):
            await run.close()
    if unexpected:
        pytest.fail("processes exited that the test did not stop:\n" + "\n".join(unexpected), pytrace=False)


@pytest.fixture
def cluster(kafka_cluster: ClusterHandle) -> Iterator[ClusterHandle]:
    """The session's 3-node cluster (``kafka_cluster``) for one fault test: every node runs when the test
    starts, and whatever the test leaves killed, stopped or paused is running again after it."""
    kafka_cluster.ensure_all_running()
    try:
        yield kafka_cluster
    finally:
        kafka_cluster.ensure_all_running()


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[BrokerHandle]:
    broker = start_broker_on_free_ports(tmp_path / "broker")
    try:
        yield broker
    finally:
        broker.stop()
