"""The JSON-lines history of one system-test run: what happened, when, so a failure can be replayed.

One file per run, ``var/system-history/<test>-<utc time>-<seed>.jsonl`` (override the directory with
``RA_HISTORY_DIR``). Every line is one JSON object with at least::

    {"t": <seconds since the run started, monotonic>, "ev": "<event name>", ...}

Events written by the harness (see ``docs/reliability.md`` for the full list):

- ``run_start``: ``seed``, ``test``, ``workload`` options; always the first line.
- ``proc_start`` / ``proc_exit``: a reducer or sender subprocess (``proc``, ``pid``, ``env``; ``rc``).
- ``commit``: a reducer's committed transaction (``proc``, ``partition``, ``offset``, ``facts``, ``rows``).
- ``delivery``: a sender's accepted batch (``proc``, ``partition``, ``rows``, ``status``...).
- ``fault`` / ``fault_end``: ``kind`` (kill9, sigstop, sigterm, broker_kill, broker_restart, ...),
  ``target``, plus details.
- ``publish`` / ``publish_done``: facts handed to the publisher, and when the last one was acknowledged.
- ``check``: one verifier check (``name``, ``ok``, ``detail``).
- ``figure``: a measured figure (``name``, ``value``, ``unit``) for ``python -m tests.system.report``.
- ``run_end``: ``ok`` and the failed check names.

Writes are thread-safe (log-reader threads of the subprocesses append ``commit`` lines) and flushed
line by line, so the file is useful even when the test process is killed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import threading
import time
from pathlib import Path
from typing import IO, Any

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIR = REPO_ROOT / "var" / "system-history"
SESSION_MARKER = ".last-session"
"""File in the history directory holding the unix start time of the last pytest session of the suite."""


def history_dir() -> Path:
    path = Path(os.environ.get("RA_HISTORY_DIR") or DEFAULT_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


class History:
    """Append-only JSON-lines log of one run; ``t`` is seconds since :attr:`started` (monotonic)."""

    def __init__(self, path: Path, *, seed: int, test: str, **details: Any) -> None:
        self.path = path
        self.seed = seed
        self.test = test
        self.started = time.monotonic()
        self.started_unix = time.time()
        self._lock = threading.Lock()
        self._file: IO[str] | None = path.open("a", encoding="utf-8")
        self.write(
            "run_start",
            seed=seed,
            test=test,
            wall=dt.datetime.now(dt.UTC).isoformat(),
            unix=self.started_unix,
            **details,
        )

    @classmethod
    def create(cls, test: str, seed: int, **details: Any) -> History:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        clean = re.sub(r"[^A-Za-z0-9_.-]+", "-", test).strip("-")[:120]
        return cls(history_dir() / f"{clean}-{stamp}-{seed}.jsonl", seed=seed, test=test, **details)

    def now(self) -> float:
        return time.monotonic() - self.started

    def from_unix(self, unix: float) -> float:
        """A wall-clock time (e.g. the witness's) as seconds since the run started."""
        return unix - self.started_unix

    def write(self, ev: str, *, t: float | None = None, **fields: Any) -> float:
        stamp = self.now() if t is None else t
        line = json.dumps({"t": round(stamp, 3), "ev": ev, **fields}, default=str, separators=(",", ":"))
        with self._lock:
            if self._file is not None:
                self._file.write(line + "\n")
                self._file.flush()
        return stamp

    def figure(self, name: str, value: float | int | None, unit: str = "") -> None:
        self.write("figure", name=name, value=value, unit=unit)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def describe(self) -> str:
        return f"seed={self.seed} history={self.path} (replay: RA_SEED={self.seed} pytest -k '{self.test}')"


def read_history(path: Path) -> list[dict[str, Any]]:
    events = []
    with path.open(encoding="utf-8") as file:
        for line in file:
            line = line.strip()
            if line:
                events.append(json.loads(line))
    return events
