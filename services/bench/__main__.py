"""``bench`` / ``python -m services.bench``: run the performance suite and print every case with its ratio."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.bench.common import CaseReport, SystemLoad, cpu_seconds, machine_summary, say
from services.bench.plan import CASES, Plan, plan_for

DESCRIPTION = """\
Measure every stage of the pipeline against the ceiling of the same work, in one run, on one broker:
B1 pure reducer (and the replay CLI), B2 processor with exactly-once vs raw passthrough, B3 latency at
half of B2's rate, B4 sender vs plain httpx, B5 memory per open thread and RSS flatness, B6 changelog
restore, B7 scaling over partitions and instances. Each case runs at least 3 times (min and median);
targets are printed PASS/MISS, and a missed target comes with a cProfile summary of where the time goes.

Without --bootstrap a private Kafka broker is started on free ports (services.localkafka) and stopped
at the end."""

EPILOG = """\
examples:
  bench --quick                         about a minute
  bench --quick --smoke                 a few seconds (what the test suite runs)
  bench --json docs/perf/last-run.json --plot docs/perf/last-run.png --markdown docs/perf/last-run.md
  bench --cases B1,B5 --profile         offline cases only, with profiles even where targets hold
docs: docs/performance.md"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench", description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small workload (about 1 minute)")
    parser.add_argument("--smoke", action="store_true", help="tiny workload (a few seconds; implies --quick)")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {','.join(CASES)}")
    parser.add_argument("--repeats", type=int, default=None, help="runs per case (default 3; at least 3 counts)")
    parser.add_argument("--json", metavar="FILE", help="write every run, ratio and profile as JSON")
    parser.add_argument("--plot", metavar="FILE.png", help="write a PNG plot (needs matplotlib: pip install '.[dev]')")
    parser.add_argument("--markdown", metavar="FILE", help="write the results table as Markdown")
    parser.add_argument("--profile", action="store_true", help="profile every case, not only missed targets")
    parser.add_argument("--bootstrap", metavar="HOST:PORT", help="use this broker instead of starting one")
    parser.add_argument("--broker-pid", type=int, help="pid of that broker (to report its CPU use)")
    parser.add_argument("--work-dir", metavar="DIR", help="keep logs and profiles here (default: a temp dir)")
    return parser


def _cases(text: str) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(part.strip().upper() for part in text.split(",") if part.strip()))
    unknown = [case for case in chosen if case not in CASES]
    if unknown:
        raise SystemExit(f"bench: unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
    return chosen


def _memory_runner(work: Path) -> Any:
    def run(args: list[str]) -> dict[str, Any]:
        completed = subprocess.run(
            [sys.executable, "-m", "services.bench.child", *args], capture_output=True, check=False, cwd=os.getcwd()
        )
        with open(work / "memory.stderr", "ab") as stderr:
            stderr.write(completed.stderr)
        if completed.returncode != 0:
            raise RuntimeError(f"memory child exited {completed.returncode}: {completed.stderr.decode()[-800:]}")
        result: dict[str, Any] = json.loads(completed.stdout.decode().strip().splitlines()[-1])
        return result

    return run


def _guard(case: str, title: str, reports: list[CaseReport], function: Any, *args: Any, **kwargs: Any) -> Any:
    started = time.monotonic()
    try:
        outcome = function(*args, **kwargs)
    except Exception as error:  # one case failing must not hide the others
        traceback.print_exc()
        reports.append(CaseReport(case, title, error=f"{type(error).__name__}: {error}"))
        return None
    say(f"{case} done in {time.monotonic() - started:.1f} s")
    return outcome


async def _kafka_cases(
    plan: Plan, bootstrap: str, broker_pid: int | None, work: Path, copies: list[Any], spare: Any, force: bool
) -> list[CaseReport]:
    from services.bench.kafka import KafkaEnv, run_b2_b3_b7, run_b6

    reports: list[CaseReport] = []
    env = KafkaEnv(bootstrap, broker_pid, work)
    cases = set(plan.cases)
    try:
        if cases & {"B2", "B3", "B7"}:
            started = time.monotonic()
            try:
                outcome = await run_b2_b3_b7(env, plan, copies, spare, force_profile=force)
                reports += outcome.reports
            except Exception as error:
                traceback.print_exc()
                for case in sorted(cases & {"B2", "B3", "B7"}):
                    reports.append(CaseReport(case, "broker pipeline", error=f"{type(error).__name__}: {error}"))
            say(f"B2/B3/B7 done in {time.monotonic() - started:.1f} s")
        if "B4" in cases:
            from services.bench.delivery import run_b4

            started = time.monotonic()
            try:
                reports.append(await run_b4(env, plan, copies, spare, force_profile=force))
            except Exception as error:
                traceback.print_exc()
                reports.append(CaseReport("B4", "sender", error=f"{type(error).__name__}: {error}"))
            say(f"B4 done in {time.monotonic() - started:.1f} s")
        if "B6" in cases:
            started = time.monotonic()
            try:
                reports.append(await run_b6(env, plan, copies[0], force_profile=force))
            except Exception as error:
                traceback.print_exc()
                reports.append(CaseReport("B6", "restore", error=f"{type(error).__name__}: {error}"))
            say(f"B6 done in {time.monotonic() - started:.1f} s")
    finally:
        await env.close()
    return reports


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    plan = plan_for(quick=args.quick or args.smoke, smoke=args.smoke, cases=_cases(args.cases), repeats=args.repeats)
    if plan.repeats < 1:
        raise SystemExit("bench: --repeats must be at least 1")
    started_at = datetime.now(UTC)
    started = time.monotonic()
    load = SystemLoad()
    given_broker_cpu = cpu_seconds(args.broker_pid) if args.broker_pid else 0.0
    with ExitStack() as stack:
        if args.work_dir:
            work = Path(args.work_dir)
            work.mkdir(parents=True, exist_ok=True)
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        from services.logging import configure_logging

        log_stream = stack.enter_context(open(work / "bench.log", "ab"))
        configure_logging("bench", "INFO", stream=log_stream)
        say(f"bench {plan.mode}: cases {','.join(plan.cases)}, {plan.repeats} runs each; work dir {work}")
        from services.bench.workload import describe, make_copies

        generated = time.monotonic()
        copies = make_copies(plan, plan.repeats + 1)
        copies, spare = copies[:-1], copies[-1]
        # The bench's own data (the workload copies) must not tax the code under test: a real processor or
        # sender does not hold it. Freeze it out of the cyclic GC (it is never freed before exit anyway).
        gc.collect()
        gc.freeze()
        workload = describe(copies[0], plan)
        took = time.monotonic() - generated
        say(f"workload: {workload['facts']:,} facts per copy ({plan.threads} threads), {took:.1f} s to generate")
        reports: list[CaseReport] = []
        if "B1" in plan.cases:
            from services.bench.offline import run_b1

            report = _guard("B1", "reducer", reports, run_b1, plan, copies[0], force_profile=args.profile)
            if report is not None:
                reports.append(report)
        if "B5" in plan.cases:
            from services.bench.offline import run_b5

            report = _guard("B5", "memory", reports, run_b5, plan, _memory_runner(work))
            if report is not None:
                reports.append(report)
        broker_info: dict[str, Any] = {}
        broker_pid: int | None = None
        if set(plan.cases) & {"B2", "B3", "B4", "B6", "B7"}:
            bootstrap, broker_pid = args.bootstrap, args.broker_pid
            if bootstrap is None:
                broker = _start_broker(work)
                stack.callback(broker.stop)
                bootstrap, broker_pid = broker.bootstrap, broker.pid
                broker_info = {"broker": "private (services.localkafka)", "bootstrap": bootstrap}
            else:
                broker_info = {"broker": "given", "bootstrap": bootstrap}
            reports += asyncio.run(_kafka_cases(plan, bootstrap, broker_pid, work, copies, spare, args.profile))
        reports.sort(key=lambda report: CASES.index(report.case))
        from services.bench.report import details, table, to_json

        broker_pids = [broker_pid] if broker_info and broker_pid else []
        machine_load = load.stop(broker_pids, given_broker_cpu if args.bootstrap else 0.0)

        meta = {
            "mode": plan.mode,
            "repeats": plan.repeats,
            "started": started_at.strftime("%Y-%m-%d %H:%M UTC"),
            "seconds": round(time.monotonic() - started, 1),
            "machine": machine_summary(),
            "workload": workload,
            "plan": asdict(plan),
            "load": machine_load,
            **broker_info,
        }
        print(table(reports))
        print()
        print(details(reports))
        missing = [case for case in plan.cases if case not in {report.case for report in reports}]
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(to_json(reports, meta), separators=(",", ":")) + "\n")
        if args.markdown:
            Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
            Path(args.markdown).write_text(table(reports, markdown=True) + "\n")
        if args.plot:
            try:
                from services.bench.report import plot

                Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
                plot(reports, args.plot, meta)
            except ImportError:
                say("bench: --plot needs matplotlib (pip install -e '.[dev]'); no plot written")
        say(
            f"machine load during the run: {machine_load['machine_busy_cores']} busy cores, of which the bench "
            f"{machine_load['bench_cores']} and other processes {machine_load['foreign_cores']} "
            f"(load average {machine_load['loadavg_start']} at start, {machine_load['loadavg_end']} at end)"
        )
        errors = [report for report in reports if report.error]
        missed = [f"{row.case} {row.name}" for report in reports for row in report.missed]
        say(
            f"bench {plan.mode} finished in {time.monotonic() - started:.0f} s: "
            f"{len(missed)} target(s) missed, {len(errors)} case error(s)"
            + (f", cases not reported: {missing}" if missing else "")
        )
        return 1 if errors or missing else 0


def _start_broker(work: Path) -> Any:
    from services.localkafka import start_on_free_ports

    broker = start_on_free_ports(work / "kafka", ready_timeout=120)
    say(f"started a private Kafka broker on {broker.bootstrap}")
    return broker


if __name__ == "__main__":
    sys.exit(main())
