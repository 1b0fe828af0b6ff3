"""Reducers and senders as real subprocesses, with their JSON log lines parsed as they arrive.

Every service runs as ``<venv python> -m services.<name>`` in its own session (``start_new_session``),
so a fault or a cleanup signals the whole process group. Configuration is passed the way an operator
would: environment variables (``PROCESSOR_*``, ``SENDER_*``, ``KAFKA_BOOTSTRAP_SERVERS``), metrics
disabled with port 0.

A reader thread per process copies stdout to ``<log dir>/<name>.log`` and parses each JSON line:
``transaction_committed`` counts a reducer commit and becomes a ``commit`` history line;
``batch_sent`` with ``outcome=accepted`` counts a sender delivery and becomes a ``delivery`` line; a few
other events (assignment, fencing, restore, failures) are copied to the history as ``log`` lines.
stderr goes to ``<name>.err`` (a crash point writes its message there).

:class:`Processes` owns every process a test started and kills the survivors' process groups at
teardown, even when the test failed.

Every exit must be one the test caused: :meth:`ServiceProcess.kill9` and :meth:`ServiceProcess.terminate`
mark the exit as expected (only when the process was still running: a process that had already died is
not excused by a later kill), and a test that lets a process stop by itself (a crash point) says so with
:meth:`ServiceProcess.expect_exit`. :meth:`Processes.check_no_unexpected_exit` lists every other exit;
the ``system_run`` fixture fails the test on any (``tests/system/conftest.py``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from tests.system.history import REPO_ROOT, History

INTERESTING_EVENTS = frozenset(
    {
        "processor_started",
        "processor_stopped",
        "partitions_assigned",
        "partitions_revoked",
        "partition_fenced",
        "partition_restored",
        "partition_reset",
        "partition_reset_failed",
        "partition_reclaim",
        "partition_assignment_failed",
        "transaction_failed",
        "negative_control_active",
        "sender_started",
        "sender_stopped",
        "command_failed",
        "row_dead_lettered",
        "commit_refused_partition_moved",
        "revoked_workers_did_not_stop",
        "facts_dropped_by_rules",
        "partition_stalled",
    }
)


class ServiceProcess:
    """One service subprocess; see the module docstring."""

    def __init__(
        self,
        name: str,
        module: str,
        env: Mapping[str, str],
        *,
        history: History,
        log_dir: Path,
        args: Iterable[str] = (),
    ) -> None:
        self.name = name
        self.module = module
        self.env = dict(env)
        self.args = list(args)
        self.history = history
        self.log_path = log_dir / f"{name}.log"
        self.err_path = log_dir / f"{name}.err"
        self.commits = 0
        self.deliveries = 0
        self.rows_delivered = 0
        self.last_commit_at: float | None = None
        self.events: list[dict[str, Any]] = []  # the INTERESTING_EVENTS lines, parsed
        self.returncode: int | None = None
        self.paused = False
        self.exit_expected = False
        """Set when the test itself stops the process (kill -9, SIGTERM, an armed crash point)."""
        self.on_event: Callable[[dict[str, Any]], None] | None = None
        """Called on the reader thread for every INTERESTING_EVENTS line (a fault that must hit a moment)."""
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._cond = threading.Condition()

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> ServiceProcess:
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        err: IO[bytes] = self.err_path.open("ab")
        self._process = subprocess.Popen(
            [sys.executable, "-m", self.module, *self.args],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            start_new_session=True,
        )
        err.close()
        self.history.write(
            "proc_start",
            proc=self.name,
            pid=self._process.pid,
            module=self.module,
            env={k: v for k, v in self.env.items() if "TOKEN" not in k and "PASSWORD" not in k},
        )
        self._reader = threading.Thread(target=self._read, name=f"log-{self.name}", daemon=True)
        self._reader.start()
        return self

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def rss_kib(self) -> int | None:
        """Resident set size of the process (``VmRSS`` of ``/proc/<pid>/status``), ``None`` once it is gone."""
        if self._process is None:
            return None
        try:
            for line in Path(f"/proc/{self._process.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            return None
        return None

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def poll(self) -> int | None:
        if self._process is None:
            return None
        rc = self._process.poll()
        if rc is not None and self.returncode is None:
            self.returncode = rc
            self.history.write("proc_exit", proc=self.name, pid=self._process.pid, rc=rc)
        return rc

    def wait_exit(self, timeout: float) -> int:
        """Wait for the process to exit; raise ``AssertionError`` naming it after ``timeout`` s."""
        assert self._process is not None
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.name} (pid {self.pid}) did not exit within {timeout:.0f} s; log {self.log_path}"
            ) from None
        rc = self.poll()
        assert rc is not None
        if self._reader is not None:
            self._reader.join(5)
        return rc

    def expect_exit(self) -> None:
        """The test caused (or armed) this process's exit: do not report it as unexpected."""
        if self.poll() is None:
            self.exit_expected = True

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the whole process group."""
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signum)

    def kill9(self) -> None:
        self.expect_exit()
        self.signal(signal.SIGKILL)
        if self._process is not None:
            self._process.wait(10)
        self.poll()

    def pause(self) -> None:
        self.signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        self.signal(signal.SIGCONT)
        self.paused = False

    def terminate(self, timeout: float = 45.0) -> int:
        """SIGTERM (clean stop: finish the batch, commit, leave the group); SIGKILL after ``timeout`` s."""
        if not self.alive():
            return self.poll() or 0
        self.expect_exit()
        if self.paused:
            self.resume()
        self.signal(signal.SIGTERM)
        try:
            return self.wait_exit(timeout)
        except AssertionError:
            self.kill9()
            raise

    def cleanup(self) -> None:
        """Kill the process group if anything of it is still running (teardown, any outcome)."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(10)
        else:
            # The leader exited; anything it spawned in its group goes too.
            self.signal(signal.SIGKILL)
        self.poll()
        if self._reader is not None:
            self._reader.join(5)

    # --- progress --------------------------------------------------------------------------------

    def wait_commits(self, count: int, timeout: float) -> None:
        """Wait until this process logged ``count`` committed transactions (reducer) or deliveries (sender)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._progress() < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self.alive():
                    break
                self._cond.wait(min(remaining, 0.5))
            done = self._progress()
        if done < count:
            state = "running" if self.alive() else f"exited rc={self.poll()}"
            raise AssertionError(
                f"{self.name} made {done} of {count} commits within {timeout:.0f} s ({state}); log {self.log_path}"
            )

    def owned_at(self, t: float) -> set[int]:
        """Partitions this reducer held at history time ``t`` (from its assignment/revocation log lines)."""
        owned: set[int] = set()
        for line in self.events:
            if line.get("_t", 0.0) > t:
                break
            if line.get("event") == "partitions_assigned":
                owned = set(line.get("partitions") or ())
            elif line.get("event") == "partitions_revoked":
                owned -= set(line.get("partitions") or ())
        return owned

    @property
    def progress(self) -> int:
        """Commits of a reducer, accepted batches of a sender."""
        return self.commits if self.module == "services.processor" else self.deliveries

    def _progress(self) -> int:
        return self.progress

    def log_tail(self, lines: int = 30) -> str:
        parts = []
        for path in (self.log_path, self.err_path):
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path.name} ---\n" + "\n".join(text))
        return "\n".join(parts)

    # --- log reading -----------------------------------------------------------------------------

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        with self.log_path.open("ab") as log:
            for raw in self._process.stdout:
                log.write(raw)
                log.flush()
                if not raw.startswith(b"{"):
                    continue
                try:
                    line = json.loads(raw)
                except ValueError:
                    continue
                self._on_line(line)
        with self._cond:
            self._cond.notify_all()

    def _on_line(self, line: dict[str, Any]) -> None:
        event = line.get("event")
        if event == "transaction_committed":
            now = self.history.write(
                "commit",
                proc=self.name,
                partition=line.get("partition"),
                offset=line.get("offset"),
                facts=line.get("facts"),
                rows=line.get("rows"),
                dlq=line.get("dead_letters"),
                ms=line.get("duration_ms"),
            )
            with self._cond:
                self.commits += 1
                self.last_commit_at = now
                self._cond.notify_all()
        elif event == "batch_sent":
            outcome = line.get("outcome")
            self.history.write(
                "delivery",
                proc=self.name,
                partition=line.get("partition"),
                rows=line.get("rows"),
                status=line.get("status"),
                outcome=outcome,
                attempt=line.get("attempt"),
                retry_in_s=line.get("retry_in_s"),
                first_offset=line.get("first_offset"),
                key=line.get("idempotency_key"),
            )
            if outcome == "accepted":
                with self._cond:
                    self.deliveries += 1
                    self.rows_delivered += int(line.get("rows") or 0)
                    self.last_commit_at = self.history.now()
                    self._cond.notify_all()
        elif event in INTERESTING_EVENTS:
            fields = {k: v for k, v in line.items() if k not in ("timestamp", "service", "event", "level")}
            line["_t"] = self.history.write("log", proc=self.name, event=event, **fields)
            with self._cond:
                self.events.append(line)
            if self.on_event is not None:
                self.on_event(line)


class Processes:
    """Every subprocess of one test; :meth:`cleanup_all` kills what is left, in reverse start order."""

    def __init__(self, history: History, log_dir: Path) -> None:
        self.history = history
        self.log_dir = log_dir
        self.all: list[ServiceProcess] = []
        self._counts: dict[str, int] = {}

    def start(self, base: str, module: str, env: Mapping[str, str], args: Iterable[str] = ()) -> ServiceProcess:
        """Start ``module`` as ``<base>`` (``<base>.2``, ``.3``... for restarts of the same role)."""
        count = self._counts.get(base, 0) + 1
        self._counts[base] = count
        name = base if count == 1 else f"{base}.{count}"
        process = ServiceProcess(name, module, env, history=self.history, log_dir=self.log_dir, args=args)
        self.all.append(process)
        return process.start()

    def running(self, module: str | None = None) -> list[ServiceProcess]:
        return [p for p in self.all if p.alive() and (module is None or p.module == module)]

    def check_no_unexpected_exit(self) -> list[str]:
        """Processes that exited although the test did not stop them (see the module docstring), with
        their return code and the tail of their logs. Any return code counts, 0 included: a service
        that stops by itself, cleanly or not, has stopped its partitions."""
        return [
            f"{p.name} (pid {p.pid}) exited rc={p.returncode} by itself\n{p.log_tail(20)}"
            for p in self.all
            if p.poll() is not None and not p.exit_expected
        ]

    def cleanup_all(self) -> None:
        for process in reversed(self.all):
            process.cleanup()
