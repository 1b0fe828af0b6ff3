"""One system-test run: its topics, processes, publisher, witness, faults and final verification.

A test gets a :class:`Run` from the ``system_run`` fixture (``tests/system/conftest.py``), then:

1. ``await run.setup()`` creates uniquely named topics (``<test>-facts-<hex>`` ...) with
   ``services.processor.topics.pipeline_topics`` and starts the witness consumer (V7);
2. starts reducers / senders as subprocesses (:meth:`Run.start_reducer`, :meth:`Run.start_sender`),
   publishes generated facts (``run.publisher``), injects faults (``tests.system.faults``), every
   fault recorded in the history and in :attr:`Run.last_fault_end`;
3. ``verdict = await run.verify(...)`` waits for the drain (V8), reads everything back, runs the oracle
   and every check, writes them to the history, and ``run.assert_ok(verdict)`` fails with the seed
   and the history path.

Processor settings used by every run (``SETTINGS``; documented in ``docs/reliability.md``): session
timeout 6 s (the broker's minimum, so a killed reducer's partitions move quickly), transaction
timeout 5 s (below it, as kafka-notes §1 requires), idle TTL 120 s of fact time (so expiry and
tombstones happen during a run), 500 facts per poll (many transactions per run).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import re
import time
from collections import Counter, defaultdict
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any

import msgspec
from aiokafka.admin import AIOKafkaAdminClient

from reducer.limits import DEFAULT_LIMITS, Limits
from schemas.topics import changelog_topic, dead_letter_topic, pipeline_topics
from services.errors import ConfigError
from services.processor.broker_limits import BATCH_OVERHEAD_BYTES
from services.processor.hooks import HOOKS_ENV
from services.processor.topics import ensure_topics, transactional_id
from tests.support.kafka import random_topic_name, wait_until
from tests.support.processor_hooks import PROCESSOR_HOOKS
from tests.system import kafkaview
from tests.system.history import History
from tests.system.oracle import Oracle, build_oracle
from tests.system.procs import Processes, ServiceProcess
from tests.system.verifier import (
    Check,
    Verdict,
    check_changelog,
    check_dead_letters,
    check_lag,
    check_ledger,
    check_open_transactions,
    check_processor_offsets,
    check_rows,
    check_sender_offsets,
    rows_from_records,
    rows_from_watcher,
)
from tests.system.workload import BIG_REQUEST_BYTES, Publisher
from tools.demo.endpoint import RecordingEndpoint
from tools.kafkacluster import ClusterHandle
from tools.localkafka import BrokerHandle


@dataclasses.dataclass(frozen=True)
class Settings:
    session_timeout_ms: int = 6_000
    transaction_timeout_ms: int = 5_000
    idle_ttl_ms: int = 120_000
    max_batch_records: int = 500
    poll_timeout_ms: int = 50
    state_budget_bytes: int | None = None
    """``PROCESSOR_STATE_BUDGET_BYTES`` (``None``: the processor's default)."""
    max_connections: int | None = None
    """``PROCESSOR_MAX_CONNECTIONS`` (``None``: the processor's default)."""
    stall_after_s: float | None = None
    """``PROCESSOR_STALL_AFTER_S`` (``None``: the processor's default)."""
    max_message_bytes: int | None = None
    """``max.message.bytes`` of the run's events and changelog topics (``None``: the broker's default). The
    processor reads it at start and keeps every record under it less the batch overhead."""

    def limits(self) -> Limits:
        """The containment bounds the run's processors have (what the oracle must use too)."""
        record = None if self.max_message_bytes is None else self.max_message_bytes - BATCH_OVERHEAD_BYTES
        bounds = {
            "state_budget_bytes": self.state_budget_bytes,
            "max_connections": self.max_connections,
            "max_record_bytes": record,
        }
        return msgspec.structs.replace(DEFAULT_LIMITS, **{k: v for k, v in bounds.items() if v is not None})

    def bounds_env(self) -> dict[str, str]:
        """The bounds set for this run, as processor environment variables."""
        env = {
            "PROCESSOR_STATE_BUDGET_BYTES": self.state_budget_bytes,
            "PROCESSOR_MAX_CONNECTIONS": self.max_connections,
            "PROCESSOR_STALL_AFTER_S": self.stall_after_s,
        }
        return {name: str(value) for name, value in env.items() if value is not None}


SETTINGS = Settings()
SENDER_ENV = {
    "SENDER_REQUEST_TIMEOUT_S": "2",
    "SENDER_BACKOFF_BASE_S": "0.1",
    "SENDER_BACKOFF_CAP_S": "2",
    "SENDER_RETRY_AFTER_CAP_S": "10",
    "SENDER_MAX_BATCH_ROWS": "200",
}
"""Sender settings of the system tests: short timeouts and back-off, so faults resolve within a run."""
DRAIN_LIMIT_S = 60.0
"""V8: lag must reach 0 this long after the last fault (and the last publish)."""


class Run:
    """See the module docstring."""

    def __init__(
        self,
        *,
        name: str,
        bootstrap: str,
        history: History,
        log_dir: Path,
        partitions: int = 4,
        broker: BrokerHandle | None = None,
        cluster: ClusterHandle | None = None,
        settings: Settings = SETTINGS,
    ) -> None:
        self.name = name
        self.bootstrap = bootstrap
        self.history = history
        self.seed = history.seed
        self.log_dir = log_dir
        self.partitions = partitions
        self.broker = broker
        self.cluster = cluster
        self.replication_factor = min(3, len(cluster.nodes)) if cluster is not None else 1
        """Of every pipeline topic (with ``min.insync.replicas`` 2 at 3), as ``setup-topics`` creates them."""
        self.settings = settings
        self.procs = Processes(history, log_dir)
        self.facts = random_topic_name(f"{name}-facts")
        self.events = random_topic_name(f"{name}-events")
        self.group = random_topic_name(f"{name}-reducers")
        self.sender_group = random_topic_name(f"{name}-senders")
        self.changelog = changelog_topic(self.group, self.facts)
        self.facts_dlq = dead_letter_topic(self.facts)
        self.events_dlq = dead_letter_topic(self.events)
        self.publisher = Publisher(bootstrap, self.facts, partitions, history)
        self.watcher: ServiceProcess | None = None
        self.watch_path = log_dir / "witness.jsonl"
        self.last_fault_end: float = 0.0
        self.broker_commit_mark = 0
        self.max_stall_s = 0.0
        self.faults: list[dict[str, Any]] = []
        self.verdict: Verdict | None = None
        self._background: list[asyncio.Task[Any]] = []
        self.witness_lines: list[dict[str, Any]] = []
        self.endpoints: list[RecordingEndpoint] = []
        self.oracle: Oracle | None = None
        self.rows_lost: int | None = None
        """Set by :meth:`verify`: oracle rows missing from the events topic, and extra copies of rows in it."""
        self.rows_duplicated: int | None = None

    # --- setup -----------------------------------------------------------------------------------

    async def setup(self, *, big_facts: bool = False, witness: bool = True) -> None:
        """Create the topics (facts allow 4 MiB records when ``big_facts``) and start the witness."""
        specs = pipeline_topics(
            facts_topic=self.facts,
            events_topic=self.events,
            group_id=self.group,
            partitions=self.partitions,
            replication_factor=self.replication_factor,
        )
        if big_facts:
            big = {"max.message.bytes": str(BIG_REQUEST_BYTES)}
            specs = [dataclasses.replace(s, configs={**s.configs, **big}) if s.name == self.facts else s for s in specs]
        if self.settings.max_message_bytes is not None:
            small = {"max.message.bytes": str(self.settings.max_message_bytes)}
            outputs = (self.events, self.changelog)
            specs = [dataclasses.replace(s, configs={**s.configs, **small}) if s.name in outputs else s for s in specs]
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            for attempt in range(1, 11):
                try:
                    await ensure_topics(admin, specs)
                    break
                except ConfigError as error:
                    # ensure_topics describes the topics right after creating them; on a busy broker the
                    # metadata may not show them yet ("has None partitions"). It is idempotent: try again.
                    if "None partitions" not in str(error) or attempt == 10:
                        raise
                    self.history.write("ensure_topics_retry", attempt=attempt, error=str(error)[:200])
                    await asyncio.sleep(0.5)

            async def leaders() -> bool:
                described = await admin.describe_topics([s.name for s in specs])
                return all(
                    t["error_code"] == 0 and t["partitions"] and all(p["leader"] >= 0 for p in t["partitions"])
                    for t in described
                )

            await wait_until(leaders, timeout=30, message="partition leaders of the run's topics")
        finally:
            await admin.close()
        self.history.write(
            "topics",
            facts=self.facts,
            events=self.events,
            group=self.group,
            sender_group=self.sender_group,
            changelog=self.changelog,
            partitions=self.partitions,
            settings=dataclasses.asdict(self.settings),
        )
        await self.publisher.start()
        if witness:
            self.watcher = self.procs.start(
                "witness",
                "tests.system.watcher",
                {},
                args=[
                    "--bootstrap",
                    self.bootstrap,
                    "--topic",
                    self.events,
                    "--partitions",
                    str(self.partitions),
                    "--out",
                    str(self.watch_path),
                ],
            )

    def publish_in_background(self, facts: Any, *, rate: float | None = None, label: str = "") -> asyncio.Task[None]:
        """Publish while the test goes on; :meth:`verify` waits for it, :meth:`close` cancels it."""
        return self.in_background(self.publisher.publish(facts, rate=rate, label=label))

    def in_background(self, publishing: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run a publishing coroutine while the test goes on; :meth:`verify` waits for it, :meth:`close` cancels it."""
        task = asyncio.get_running_loop().create_task(publishing)
        self._background.append(task)
        return task

    async def publishing_done(self, within_s: float = 300.0) -> None:
        pending = [t for t in self._background if not t.done()]
        if pending:
            await asyncio.wait_for(asyncio.gather(*pending), within_s)
        for task in self._background:
            task.result()  # re-raise a publisher failure

    # --- processes -------------------------------------------------------------------------------

    def reducer_env(self, *, crash: str | None = None, negative: str | None = None, **extra: str) -> dict[str, str]:
        s = self.settings
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "PROCESSOR_FACTS_TOPIC": self.facts,
            "PROCESSOR_EVENTS_TOPIC": self.events,
            "PROCESSOR_GROUP_ID": self.group,
            "PROCESSOR_TRANSACTIONAL_ID_PREFIX": self.group,
            "PROCESSOR_METRICS_PORT": "0",
            "PROCESSOR_POLL_TIMEOUT_MS": str(s.poll_timeout_ms),
            "PROCESSOR_SESSION_TIMEOUT_MS": str(s.session_timeout_ms),
            "PROCESSOR_TRANSACTION_TIMEOUT_MS": str(s.transaction_timeout_ms),
            "PROCESSOR_IDLE_TTL_MS": str(s.idle_ttl_ms),
            "PROCESSOR_MAX_BATCH_RECORDS": str(s.max_batch_records),
            "PROCESSOR_LOG_LEVEL": "INFO",
            "RA_CRASH_AT": crash or "",
            "RA_NEGATIVE_CONTROL": negative or "",
            HOOKS_ENV: PROCESSOR_HOOKS if crash or negative else "",
            **s.bounds_env(),
        }
        env.update(extra)
        return env

    def transactional_ids(self) -> list[str]:
        """The reducers' transactional ids, one per facts partition (``services.processor.topics.transactional_id``,
        the prefix being :meth:`reducer_env`'s ``PROCESSOR_TRANSACTIONAL_ID_PREFIX``)."""
        prefix = self.reducer_env()["PROCESSOR_TRANSACTIONAL_ID_PREFIX"]
        return [transactional_id(prefix, self.facts, p) for p in range(self.partitions)]

    def start_reducer(
        self, base: str = "reducer", *, crash: str | None = None, negative: str | None = None, **extra: str
    ) -> ServiceProcess:
        return self.procs.start(base, "services.processor", self.reducer_env(crash=crash, negative=negative, **extra))

    def start_endpoint(self) -> RecordingEndpoint:
        """The loopback endpoint, in this process, recording every request to ``<log dir>/endpoint.jsonl``."""
        endpoint = RecordingEndpoint(record_file=self.log_dir / "endpoint.jsonl").start()
        self.endpoints.append(endpoint)
        self.history.write("endpoint_start", url=endpoint.url, record_file=str(self.log_dir / "endpoint.jsonl"))
        return endpoint

    def sender_env(self, endpoint_url: str, **extra: str) -> dict[str, str]:
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "SENDER_EVENTS_TOPIC": self.events,
            "SENDER_DLQ_TOPIC": self.events_dlq,
            "SENDER_GROUP_ID": self.sender_group,
            "SENDER_ENDPOINT_URL": endpoint_url,
            "SENDER_METRICS_PORT": "0",
            "SENDER_LOG_LEVEL": "INFO",
        }
        env.update(extra)
        return env

    def start_sender(self, endpoint_url: str, base: str = "sender", **extra: str) -> ServiceProcess:
        return self.procs.start(base, "services.sender", self.sender_env(endpoint_url, **extra))

    def sender_interruptions(self) -> list[float]:
        """Unix times at which a sender lost partitions (kill -9, SIGTERM, or a rebalance revoking them):
        a batch resent after one of these comes from another owner, who does not know the old one's wait."""
        start = self.history.started_unix
        senders = {p.name for p in self.procs.all if p.module == "services.sender"}
        times = [start + f["t"] for f in self.faults if f["target"] in senders]
        for proc in self.procs.all:
            if proc.module == "services.sender":
                times += [
                    start + e["_t"]
                    for e in proc.events
                    if e.get("event") == "partitions_revoked" and e.get("partitions")
                ]
        return sorted(times)

    def reducers(self) -> list[ServiceProcess]:
        return self.procs.running("services.processor")

    # --- faults bookkeeping (used by tests.system.faults) ----------------------------------------

    def fault_started(self, kind: str, target: str, **details: Any) -> float:
        t = self.history.write("fault", kind=kind, target=target, **details)
        self.faults.append({"t": t, "kind": kind, "target": target, **details})
        return t

    def fault_ended(self, kind: str, target: str, **details: Any) -> float:
        t = self.history.write("fault_end", kind=kind, target=target, **details)
        self.last_fault_end = max(self.last_fault_end, t)
        return t

    # --- waiting ---------------------------------------------------------------------------------

    async def wait_progress(self, proc: ServiceProcess, commits: int = 3, within_s: float = 60.0) -> None:
        """Wait until ``proc`` logged ``commits`` commits (reducer) or accepted batches (sender) since it started."""
        await asyncio.to_thread(proc.wait_commits, commits, within_s)

    async def wait_exit(self, proc: ServiceProcess, within_s: float) -> int:
        return await asyncio.to_thread(proc.wait_exit, within_s)

    async def lag(self, *, sender: bool = False) -> int:
        lag = await kafkaview.processor_lag(self.bootstrap, self.group, self.facts)
        if sender and lag == 0:
            lag += await kafkaview.sender_lag(self.bootstrap, self.sender_group, self.events)
        return lag

    async def wait_drained(self, within_s: float, *, sender: bool = False) -> float | None:
        """Poll the lag until 0; return the history time it was first seen at 0 (``None`` on timeout)."""
        deadline = time.monotonic() + within_s
        while True:
            try:
                if await self.lag(sender=sender) == 0:
                    return self.history.write("drained", sender=sender)
            except Exception as error:  # a broker still restarting: not drained yet
                self.history.write("lag_error", error=repr(error))
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.5)

    # --- verification ----------------------------------------------------------------------------

    async def verify(
        self,
        *,
        sender: bool = False,
        v8: bool = False,
        drain_timeout: float = 120.0,
        expect_dead_letters: bool = True,
    ) -> Verdict:
        """Drain, then run every check; see ``tests.system.verifier`` for what each one means.

        ``v8``: require lag 0 within 60 s of the last fault / last publish (otherwise the drain only
        gets ``drain_timeout``). ``sender``: also the sender group's offsets and lag.
        """
        await self.publishing_done()
        verdict = Verdict()
        start = max(self.last_fault_end, self.publisher.done_at or 0.0)
        limit = DRAIN_LIMIT_S if v8 else drain_timeout
        remaining = max(5.0, start + limit - self.history.now())
        drained_at = await self.wait_drained(remaining, sender=sender)
        drain_s = None if drained_at is None else max(0.0, drained_at - start)
        self.history.figure("drain_s", None if drain_s is None else round(drain_s, 2), "s")
        if v8:
            verdict.add(check_lag(drain_s))
        elif drained_at is None:
            verdict.add(Check("drain", False, f"lag not 0 within {drain_timeout:.0f} s of the last fault/publish"))

        # V6: stable end == end on every transactional output, within 2 x the transaction timeout.
        v6_deadline = self.last_fault_end + 2 * self.settings.transaction_timeout_ms / 1000
        waited_from = self.history.now()
        while True:
            ends = {}
            for topic in (self.events, self.changelog, self.facts_dlq):
                ends[topic] = (
                    await kafkaview.end_offsets(self.bootstrap, topic, "read_committed"),
                    await kafkaview.end_offsets(self.bootstrap, topic, "read_uncommitted"),
                )
            v6 = check_open_transactions(ends, self.history.now() - waited_from)
            if v6.ok or self.history.now() >= v6_deadline:
                break
            await asyncio.sleep(0.5)
        verdict.add(v6)

        facts_records = await kafkaview.read_all(self.bootstrap, self.facts)
        self.oracle = oracle = build_oracle(
            self.facts,
            self.partitions,
            facts_records,
            idle_ttl_ms=self.settings.idle_ttl_ms,
            limits=self.settings.limits(),
        )
        verdict.add(check_ledger(self.publisher.ledger, facts_records))
        del facts_records
        events_records = await kafkaview.read_all(self.bootstrap, self.events)
        rows = rows_from_records(events_records)
        del events_records
        seen = Counter(row.row_id for row in rows)
        self.rows_lost = len(set(oracle.row_family) - set(seen))
        self.rows_duplicated = sum(n - 1 for n in seen.values())
        self.history.figure("rows_lost", self.rows_lost)
        self.history.figure("rows_duplicated", self.rows_duplicated)
        for check in check_rows(oracle, rows):
            verdict.add(check)
        verdict.add(check_changelog(oracle, await kafkaview.read_all(self.bootstrap, self.changelog)))
        facts_end = await kafkaview.end_offsets(self.bootstrap, self.facts)
        committed = await kafkaview.committed_offsets(self.bootstrap, self.group, self.facts)
        verdict.add(check_processor_offsets(committed, facts_end, oracle))
        if sender:
            sent = await kafkaview.committed_offsets(self.bootstrap, self.sender_group, self.events)
            verdict.add(check_sender_offsets(sent, rows))
        dlq = await kafkaview.read_all(self.bootstrap, self.facts_dlq)
        verdict.add(
            check_dead_letters(
                oracle, dlq, facts_topic=self.facts, ledger=self.publisher.ledger if expect_dead_letters else None
            )
        )
        if self.watcher is not None:
            witness = await self.stop_witness({p: end for p, end in ends[self.events][0].items()})
            self.witness_lines = witness
            for check in check_rows(oracle, rows_from_watcher(witness), prefix="V7 witness: "):
                verdict.add(check)
            self.record_stalls()
        verdict.add(self.check_no_unexpected_exit())
        for check in verdict.checks:
            self.history.write("check", name=check.name, ok=check.ok, detail=check.detail)
        self.history.figure("facts", oracle.facts)
        self.history.figure("rows", oracle.total_rows)
        self.history.figure("dead_letters", len(oracle.dead_letters))
        self.history.figure("faults", len(self.faults))
        self.history.figure("commits", sum(p.commits for p in self.procs.all))
        self.verdict = verdict
        return verdict

    def check_no_unexpected_exit(self) -> Check:
        """X: no process of the run exited unless the test stopped it (``Processes.check_no_unexpected_exit``)."""
        unexpected = self.procs.check_no_unexpected_exit()
        return Check(
            "X no process exited that the test did not stop",
            not unexpected,
            "\n".join(unexpected) if unexpected else f"{len(self.procs.all)} processes, every exit caused by the test",
        )

    async def stop_witness(self, ends: Mapping[int, int], within_s: float = 60.0) -> list[dict[str, Any]]:
        """Wait until the witness has read up to ``ends`` (stable offsets), stop it, return its lines."""
        assert self.watcher is not None

        def positions() -> dict[int, int]:
            found: dict[int, int] = {}
            if self.watch_path.exists():
                for line in self.watch_path.read_text().splitlines()[-200:]:
                    if '"pos"' in line:
                        found = {int(k): v for k, v in json.loads(line)["pos"].items()}
            return found

        def caught_up() -> bool:
            pos = positions()
            return all(pos.get(p, -1) >= end for p, end in ends.items())

        if self.watcher.alive():
            try:
                await wait_until(caught_up, timeout=within_s, interval=0.5, message="the witness to reach the end")
            finally:
                await asyncio.to_thread(self.watcher.terminate, 20)
        return [json.loads(line) for line in self.watch_path.read_text().splitlines() if line.strip()]

    def record_stalls(self) -> None:
        """Figures from the witness: per source partition, the longest gap between rows becoming visible."""
        gaps = {}
        for partition, times in sorted(self.row_times().items()):
            gaps[partition] = max((b - a for a, b in itertools.pairwise(times)), default=0.0)
        self.max_stall_s = max(gaps.values(), default=0.0)
        self.history.write("stalls", per_partition={str(p): round(g, 2) for p, g in gaps.items()})
        self.history.figure("max_stall_s", round(self.max_stall_s, 2), "s")

    def row_times(self) -> dict[int, list[float]]:
        """Per source (facts) partition, the history times at which the witness first saw each row."""
        seen: dict[int, list[float]] = defaultdict(list)
        for line in self.witness_lines:
            row_id = line.get("id")
            if "p" not in line or not row_id:
                continue
            match = re.search(r"-(\d+)-(\d+)-(\d+)$", row_id)
            if match:
                seen[int(match.group(1))].append(self.history.from_unix(line["t"]))
        for times in seen.values():
            times.sort()
        return seen

    def resume_after_faults(self, kinds: tuple[str, ...] = ("kill9",)) -> list[dict[str, Any]]:
        """For each fault of ``kinds`` on a reducer: seconds until each partition it held shows a new row.

        ``resume_s`` is ``None`` when no row of that partition became visible after the fault at all.
        Figures ``resume_s`` entries go to the history (``resume`` lines).
        """
        times = self.row_times()
        by_name = {p.name: p for p in self.procs.all}
        results = []
        for fault in self.faults:
            if fault["kind"] not in kinds or fault["target"] not in by_name:
                continue
            t = fault["t"]
            for partition in sorted(by_name[fault["target"]].owned_at(t)):
                later = [x for x in times.get(partition, []) if x > t]
                resume = round(later[0] - t, 2) if later else None
                entry = {"fault_t": t, "target": fault["target"], "partition": partition, "resume_s": resume}
                self.history.write("resume", **entry)
                results.append(entry)
        return results

    def resume_s(self, t: float) -> float | None:
        """Seconds from history time ``t`` until every facts partition had a new row visible (witness, after
        :meth:`verify`); ``None`` if one never had."""
        later = [[x for x in times if x > t] for times in self.row_times().values()]
        if not later or not all(later):
            return None
        return round(max(times[0] for times in later) - t, 2)

    def assert_ok(self, verdict: Verdict) -> None:
        ok = verdict.ok
        self.history.write("run_end", ok=ok, failed=verdict.failed)
        if not ok:
            tails = "\n".join(p.log_tail(15) for p in self.procs.all if p.module != "tests.system.watcher")
            raise AssertionError(
                f"verifier failed ({', '.join(verdict.failed)}) -- {self.history.describe()}\n{verdict}\n{tails}"
            )

    async def close(self) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self.procs.cleanup_all()
        for endpoint in self.endpoints:
            endpoint.stop()
        try:
            await asyncio.wait_for(self.publisher.close(), 30)
        except Exception as error:
            self.history.write("publisher_close_failed", error=repr(error))
        self.history.close()
