"""``bench --smoke``: the performance suite runs end to end on the session broker and reports every case.

Only completion is asserted (every case of the smoke plan, B1..B7, reported, with measured runs and no
error); the figures of a smoke run are far too small to judge targets. The full run is ``bench`` (docs/performance.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tools.bench.plan import SMOKE
from tools.localkafka import BrokerHandle

pytestmark = pytest.mark.kafka

REPO = Path(__file__).resolve().parents[2]


def test_bench_smoke_reports_every_case(kafka_broker: BrokerHandle, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    command = [
        sys.executable,
        "-m",
        "tools.bench",
        "--smoke",
        "--bootstrap",
        kafka_broker.bootstrap,
        "--broker-pid",
        str(kafka_broker.pid),
        "--json",
        str(out),
        "--work-dir",
        str(tmp_path / "work"),
    ]
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=150, check=False)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]

    document = json.loads(out.read_text())
    reported = {case["case"]: case for case in document["cases"]}
    assert sorted(reported) == sorted(SMOKE.cases)
    for name, case in reported.items():
        assert case["error"] is None, f"{name}: {case['error']}"
        assert case["rows"], f"{name} reported no measurement"
        for row in case["rows"]:
            assert len(row["runs"]) >= 3, f"{name} {row['name']}: {row['runs']}"
            if row["target"] is not None:
                assert row["passed"] in (True, False)
    for line in ("B1", "B7"):
        assert line in completed.stdout
