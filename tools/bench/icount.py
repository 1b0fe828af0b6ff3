"""Instructions per fact of B1's paths, pure against compiled, under valgrind: a figure foreign load cannot move.

``python -m tools.bench.icount [--facts N] [--variants pure,compiled]`` generates the quick workload's first copy
(the first ``N`` facts), then for every build and path runs ``valgrind --tool=cachegrind --cache-sim=no`` on a
child that loads the facts, warms up on 1,000 of them and runs the path once; the same child without the
path is the start-up to subtract. Prints instructions per fact for each, and the compiled/pure ratio. Needs
valgrind; takes a few minutes (valgrind runs the interpreter about 50 times slower).

Paths: ``reducer`` (B1's headline: ``PartitionReducer.run_all``, decode + reduce + encode rows and state),
``worker`` (``PartitionWorker.reduce_batch`` in batches of 1,000: B1's second figure) and ``ceiling``
(msgspec's typed decode + encode of the same bytes).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import msgspec

from schemas.compiled import ENV, VARIANT_SETTINGS
from tools.bench.plan import QUICK

PATHS = ("reducer", "worker", "ceiling")


def _child(values_file: str, path: str) -> None:
    from schemas.compiled import variant
    from tools.bench.offline import codec_ceiling, reduce_all, worker_all

    values = msgspec.msgpack.decode(Path(values_file).read_bytes(), type=list[bytes])
    variant()  # import every module of the build
    reduce_all(values[:1000])
    worker_all(values[:1000])
    codec_ceiling(values[:1000])
    if path == "reducer":
        reduce_all(values)
    elif path == "worker":
        worker_all(values)
    elif path == "ceiling":
        codec_ceiling(values)


def _instructions(values_file: str, path: str, setting: str, work: Path) -> int:
    out = work / f"cg.{path}.{setting}.out"
    command = ["valgrind", "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={out}"]
    command += [sys.executable, "-m", "tools.bench.icount", "--child", values_file, path]
    env = {**os.environ, ENV: setting}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    match = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"valgrind {path} {ENV}={setting}: {done.stderr[-2000:]}")
    return int(match.group(1).replace(",", ""))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.icount", description=__doc__.split("\n\n")[0])
    parser.add_argument("--facts", type=int, default=20_000, help="facts of the quick workload's first copy")
    parser.add_argument("--variants", default="pure,compiled")
    parser.add_argument("--child", nargs=2, metavar=("VALUES", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child[0], args.child[1])
        return 0
    from tools.bench.workload import make_copies

    variants = [name.strip() for name in args.variants.split(",") if name.strip()]
    values = make_copies(replace(QUICK, repeats=1), 1)[0].values[: args.facts]
    print(f"icount: {len(values):,} facts of the quick workload's first copy; builds {', '.join(variants)}", flush=True)
    results: dict[tuple[str, str], float] = {}
    with tempfile.TemporaryDirectory(prefix="icount-") as tmp:
        work = Path(tmp)
        values_file = str(work / "values.msgpack")
        Path(values_file).write_bytes(msgspec.msgpack.encode(values))
        for name in variants:
            base = _instructions(values_file, "none", VARIANT_SETTINGS[name], work)
            for path in PATHS:
                total = _instructions(values_file, path, VARIANT_SETTINGS[name], work)
                results[name, path] = (total - base) / len(values)
                print(f"{name:9} {path:8} {results[name, path]:10,.0f} instructions per fact", flush=True)
    for path in PATHS:
        if ("pure", path) in results and ("compiled", path) in results:
            print(f"{path}: compiled/pure instructions {results['compiled', path] / results['pure', path]:.1%}")
    for name in variants:
        if (name, "ceiling") in results:
            for path in ("reducer", "worker"):
                ratio = results[name, "ceiling"] / results[name, path]
                print(f"{name}: ceiling/{path} instructions {ratio:.1%} (B1's ratio, counted in instructions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
