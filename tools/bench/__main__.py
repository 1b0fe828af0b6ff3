"""``bench`` / ``python -m tools.bench``: run the performance suite and print every case with its ratio."""

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

from tools.bench.common import CaseReport, SystemLoad, cpu_seconds, machine_summary, say
from tools.bench.plan import CASES, Plan, plan_for

DESCRIPTION = """\
Measure every stage of the pipeline against the ceiling of the same work, in one run, on one broker:
B1 pure reducer (and the replay CLI), B2 processor with exactly-once vs raw passthrough, B3 latency at
half of B2's rate, B4 sender vs plain httpx, B5 memory per open thread and RSS flatness, B6 changelog
restore, B7 scaling over partitions and instances, B8 the same reducer in quix-streams (needs the
optional extra: pip install -e '.[bench]'; skipped without it). Each case runs at least 3 times (min and
median); targets are judged on the worst run and printed PASS/MISS (SKIP for a case that cannot run
here), and a missed target comes with a cProfile summary of where the time goes.

Without --bootstrap a private Kafka broker is started on free ports (tools.localkafka) and stopped
at the end."""

EPILOG = """\
examples:
  bench --quick                         about a minute
  bench --quick --smoke                 a few seconds (what the test suite runs)
  bench --json docs/perf/last-run.json --plot docs/perf/last-run.png --markdown docs/perf/last-run.md
  bench --cases B1,B5 --profile         offline cases only, with profiles even where targets hold
  bench --quick --compare docs/perf/last-run.json        a run, then each figure beside the published run's
  bench --compare OLD.json --against NEW.json            two earlier runs side by side, nothing run
  bench --cases B1 --variants pure,compiled             B1 of both reducer builds (python -m tools.compile build first)
docs: docs/performance.md"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench", description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small workload (about 1 minute; B8 without latency runs)")
    parser.add_argument("--smoke", action="store_true", help="tiny workload (a few seconds; implies --quick)")
    parser.add_argument(
        "--cases",
        default=None,
        help=f"comma-separated subset of {','.join(CASES)} (default: all; --smoke leaves out B8)",
    )
    parser.add_argument("--repeats", type=int, default=None, help="runs per case (default 3; at least 3 counts)")
    parser.add_argument("--json", metavar="FILE", help="write every run, ratio and profile as JSON")
    parser.add_argument("--plot", metavar="FILE.png", help="write a PNG plot (needs matplotlib: pip install '.[dev]')")
    parser.add_argument("--markdown", metavar="FILE", help="write the results table as Markdown")
    parser.add_argument("--profile", action="store_true", help="profile every case, not only missed targets")
    parser.add_argument("--bootstrap", metavar="HOST:PORT", help="use this broker instead of starting one")
    parser.add_argument("--broker-pid", type=int, help="pid of that broker (to report its CPU use)")
    parser.add_argument(
        "--compare", metavar="OLD.json", help="print each figure beside the same figure of a previous run's --json"
    )
    parser.add_argument(
        "--against",
        metavar="NEW.json",
        help="with --compare: compare this earlier --json with OLD.json instead of running the bench",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="pin the broker and the bench to CPU 0 and the processes under test to the other CPUs (taskset): "
        "the broker on a core of its own, as on a machine of its own (capacity planning, docs/performance.md)",
    )
    parser.add_argument("--work-dir", metavar="DIR", help="keep logs and profiles here (default: a temp dir)")
    parser.add_argument(
        "--variants",
        metavar="pure,compiled",
        help="B1 only: measure these reducer builds side by side, each repeat in fresh child processes "
        "(RA_COMPILED=0 / 1; the compiled build comes from `python -m tools.compile build`), and their ratio. "
        "Without it B1 measures the build this process runs (RA_COMPILED, see --help of tools.compile)",
    )
    return parser


def _cases(text: str) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(part.strip().upper() for part in text.split(",") if part.strip()))
    unknown = [case for case in chosen if case not in CASES]
    if unknown:
        raise SystemExit(f"bench: unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
    return chosen


def _variants(text: str) -> tuple[str, ...]:
    from schemas.compiled import VARIANT_SETTINGS

    chosen = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    unknown = [name for name in chosen if name not in VARIANT_SETTINGS]
    if unknown or not chosen:
        raise SystemExit(f"bench: unknown build(s) {', '.join(unknown)}; known: {', '.join(VARIANT_SETTINGS)}")
    return chosen


def _child_runner(work: Path, log: str) -> Any:
    """Runs ``python -m tools.bench.child ARGS`` (with extra environment variables, if any), appending its
    stderr to ``work/log``; returns its last JSON line."""

    def run(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
        completed = subprocess.run(
            [sys.executable, "-m", "tools.bench.child", *args],
            capture_output=True,
            check=False,
            cwd=os.getcwd(),
            env={**os.environ, **(env or {})},
        )
        with open(work / log, "ab") as stderr:
            stderr.write(completed.stderr)
        if completed.returncode != 0:
            raise RuntimeError(f"child {args[0]} exited {completed.returncode}: {completed.stderr.decode()[-800:]}")
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
    plan: Plan,
    bootstrap: str,
    broker_pid: int | None,
    work: Path,
    copies: list[Any],
    spare: Any,
    force: bool,
    service_cpus: str | None = None,
) -> list[CaseReport]:
    from tools.bench.kafka import KafkaEnv, run_b2_b3_b7, run_b6
    from tools.bench.peer import skipped

    reports: list[CaseReport] = []
    env = KafkaEnv(bootstrap, broker_pid, work, service_cpus)
    cases = set(plan.cases)
    try:
        peer_skipped = skipped() if "B8" in cases else None
        if peer_skipped is not None:
            reports.append(peer_skipped)
            cases.discard("B8")
        outcome = None
        if cases & {"B2", "B3", "B7", "B8"}:
            started = time.monotonic()
            try:
                outcome = await run_b2_b3_b7(env, plan, copies, spare, force_profile=force)
                reports += outcome.reports
            except Exception as error:
                traceback.print_exc()
                for case in sorted(cases & {"B2", "B3", "B7", "B8"}):
                    reports.append(CaseReport(case, "broker pipeline", error=f"{type(error).__name__}: {error}"))
            say(f"B2/B3/B7 done in {time.monotonic() - started:.1f} s")
        if "B8" in cases and outcome is not None and outcome.b2_runs:
            from tools.bench.peer import run_b8

            started = time.monotonic()
            rate = outcome.b2_rate / 2 if outcome.b2_rate and plan.peer_latency else None
            try:
                reports.append(await run_b8(env, plan, copies, outcome.b2_runs, rate, copies[-1].last_ms + 60_000))
            except Exception as error:
                traceback.print_exc()
                reports.append(CaseReport("B8", "peer: quix-streams", error=f"{type(error).__name__}: {error}"))
            say(f"B8 done in {time.monotonic() - started:.1f} s")
        if "B4" in cases:
            from tools.bench.delivery import run_b4

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
    parser = build_parser()
    args = parser.parse_args(argv)
    old = _load_run(parser, args.compare) if args.compare else None
    if args.against:
        if old is None:
            parser.error("--against needs --compare OLD.json")
        from tools.bench.report import compare

        print(compare(_load_run(parser, args.against), old))
        return 0
    plan = plan_for(
        quick=args.quick or args.smoke,
        smoke=args.smoke,
        cases=_cases(args.cases) if args.cases else None,
        repeats=args.repeats,
    )
    if plan.repeats < 1:
        raise SystemExit("bench: --repeats must be at least 1")
    variants = _variants(args.variants) if args.variants else None
    from schemas.compiled import ENV, requested, variant

    build = variant()  # the reducer build this process (and B2..B8's children, same environment) runs
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
        say(
            f"reducer build: {build} ({ENV}={requested()})"
            + (f"; B1 measures {', '.join(variants)} side by side" if variants else "")
        )
        from tools.bench.workload import describe, make_copies

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
            if variants:
                from tools.bench.offline import run_b1_variants

                runner = _child_runner(work, "child.stderr")
                report = _guard("B1", "reducer", reports, run_b1_variants, plan, copies[0], variants, runner)
            else:
                from tools.bench.offline import run_b1

                report = _guard("B1", "reducer", reports, run_b1, plan, copies[0], force_profile=args.profile)
            if report is not None:
                reports.append(report)
        if "B5" in plan.cases:
            from tools.bench.offline import run_b5

            report = _guard("B5", "memory", reports, run_b5, plan, _child_runner(work, "memory.stderr"))
            if report is not None:
                reports.append(report)
        broker_info: dict[str, Any] = {}
        broker_pid: int | None = None
        if set(plan.cases) & {"B2", "B3", "B4", "B6", "B7", "B8"}:
            bootstrap, broker_pid = args.bootstrap, args.broker_pid
            if bootstrap is None:
                broker = _start_broker(work)
                stack.callback(broker.stop)
                bootstrap, broker_pid = broker.bootstrap, broker.pid
                broker_info = {"broker": "private (tools.localkafka)", "bootstrap": bootstrap}
            else:
                broker_info = {"broker": "given", "bootstrap": bootstrap}
            service_cpus = _pin(broker_pid) if args.pin else None
            reports += asyncio.run(
                _kafka_cases(plan, bootstrap, broker_pid, work, copies, spare, args.profile, service_cpus)
            )
        reports.sort(key=lambda report: CASES.index(report.case))
        from tools.bench.report import details, table, to_json

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
            "variant": build,
            "variants_b1": list(variants) if variants else None,
            **broker_info,
        }
        print(table(reports))
        print()
        print(details(reports))
        missing = [case for case in plan.cases if case not in {report.case for report in reports}]
        document = to_json(reports, meta)
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(document, separators=(",", ":")) + "\n")
        if old is not None:
            from tools.bench.report import compare

            print()
            print(f"compared with {args.compare} ({old.get('mode', '?')} run of {old.get('started', '?')}):")
            print(compare(document, old))
        if args.markdown:
            Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
            Path(args.markdown).write_text(table(reports, markdown=True) + "\n")
        if args.plot:
            try:
                from tools.bench.report import plot

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


def _pin(broker_pid: int | None) -> str:
    """Broker (every thread) and this process on CPU 0; returns the CPU list for the processes under test."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit("bench: --pin needs at least 2 CPUs")
    if broker_pid is None:
        raise SystemExit("bench: --pin needs the broker's pid (--broker-pid with --bootstrap)")
    first, rest = cpus[0], ",".join(str(cpu) for cpu in cpus[1:])
    subprocess.run(["taskset", "-a", "-p", "-c", str(first), str(broker_pid)], check=True, capture_output=True)
    os.sched_setaffinity(0, {first})
    say(f"pinned: broker (pid {broker_pid}) and the bench on CPU {first}; processes under test on CPU(s) {rest}")
    return rest


def _load_run(parser: argparse.ArgumentParser, path: str) -> dict[str, Any]:
    """A run written by ``--json``; a missing or unreadable file is a usage error (exit 2)."""
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        parser.error(f"cannot read {path}: {error}")
    if not isinstance(document, dict) or not isinstance(document.get("cases"), list):
        parser.error(f"{path} is not a bench --json run (no 'cases')")
    return document


def _start_broker(work: Path) -> Any:
    from tools.localkafka import start_on_free_ports

    broker = start_on_free_ports(work / "kafka", ready_timeout=120)
    say(f"started a private Kafka broker on {broker.bootstrap}")
    return broker


if __name__ == "__main__":
    sys.exit(main())
