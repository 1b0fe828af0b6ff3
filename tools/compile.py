"""``python -m tools.compile build|clean|status``: the optional mypyc build of the reducer (issue 16).

``build`` compiles the modules of :data:`schemas.compiled.MODULES` with mypyc, in place (a ``.so`` next to
each source, the shared library and a manifest at the repository root; C sources under ``build/mypyc``).
``clean`` removes all of it. ``status`` says whether a build is present, fresh or stale, and which variant a
fresh process would run under the current ``RA_COMPILED`` (see :mod:`schemas.compiled` for the switch).

Pure Python stays the default: nothing needs this step. It needs mypy's ``mypyc`` (in the ``dev`` extra), a
C compiler and the Python headers. Exit status: 0 done, 1 the build failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence

# This process never runs compiled modules: a broken or stale build must stay cleanable. The user's setting is
# kept for `status`, which asks a fresh process.
_SETTING = os.environ.get("RA_COMPILED")
os.environ["RA_COMPILED"] = "0"

from schemas.compiled import (  # noqa: E402
    ENV,
    GROUP,
    MANIFEST,
    MODULES,
    ROOT,
    build_state,
    built_files,
    source_path,
    sources_digest,
)

BUILD_DIR = ROOT / "build" / "mypyc"


def build(*, opt_level: str = "3", jobs: int = 1, verbose: bool = False) -> int:
    """Compile :data:`MODULES` in place; returns an exit status."""
    clean(quiet=True)
    started = time.monotonic()
    digest = sources_digest()
    # In a child interpreter: setuptools and mypyc keep global state, and the build must not see this
    # process's imports (RA_COMPILED does not matter to mypyc, which reads the sources).
    script = (
        "import sys\n"
        "from mypyc.build import mypycify\n"
        "from setuptools import setup\n"
        "paths, opt, target, group, jobs = sys.argv[1].split(','), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]\n"
        "extensions = mypycify(paths, opt_level=opt, target_dir=target, group_name=group)\n"
        "setup(name='ra-native', ext_modules=extensions, script_args=['-q', 'build_ext', '--inplace', "
        "'--build-temp', target + '/tmp', '--build-lib', target + '/lib', '-j', jobs])\n"
    )
    paths = [str(source_path(module).relative_to(ROOT)) for module in MODULES]
    command = [sys.executable, "-c", script, ",".join(paths), opt_level, str(BUILD_DIR.relative_to(ROOT)), GROUP]
    command.append(str(jobs))
    print(f"compile: mypyc -O{opt_level} on {len(MODULES)} modules ({', '.join(MODULES)})", flush=True)
    env = {key: value for key, value in os.environ.items() if key != ENV}
    completed = subprocess.run(command, cwd=ROOT, env=env, check=False, capture_output=not verbose, text=True)
    took = time.monotonic() - started
    if completed.returncode != 0:
        if not verbose:
            sys.stderr.write(completed.stdout[-4000:] + completed.stderr[-4000:])
        print(f"compile: build failed after {took:.0f} s (exit {completed.returncode})", file=sys.stderr)
        clean(quiet=True)
        return 1
    if sources_digest() != digest:
        print("compile: sources changed during the build; not marking it fresh", file=sys.stderr)
        return 1
    MANIFEST.write_text(
        json.dumps(
            {
                "modules": list(MODULES),
                "sources": digest,
                "opt_level": opt_level,
                "python": sys.version.split()[0],
                "built_in_seconds": round(took, 1),
            },
            indent=2,
        )
        + "\n"
    )
    print(f"compile: built {len(MODULES)} modules in {took:.0f} s; state {build_state()}")
    return 0


def clean(*, quiet: bool = False) -> int:
    """Remove every built file (and ``build/mypyc``)."""
    removed = built_files()
    for path in removed:
        path.unlink()
    if BUILD_DIR.exists():
        shutil.rmtree(BUILD_DIR)
    if not quiet:
        print(f"compile: removed {len(removed)} built file(s); pure Python from now on")
    return 0


def status() -> int:
    state = build_state()
    wanted = _SETTING or "auto"
    files = built_files()
    print(f"compile: build {state} ({len(files)} file(s)); {ENV}={wanted}")
    if MANIFEST.exists():
        print(f"manifest: {MANIFEST.read_text().strip()}")
    # Which variant a fresh process runs under the current setting (an ImportError when RA_COMPILED=1 cannot be met).
    env = {key: value for key, value in os.environ.items() if key != ENV}
    if _SETTING is not None:
        env[ENV] = _SETTING
    probe = subprocess.run(
        [sys.executable, "-c", "from schemas.compiled import variant; print(variant())"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    answer = probe.stdout.strip() or probe.stderr.strip().splitlines()[-1]
    print(f"a new process runs: {answer}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.compile",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog=f"The switch: {ENV}=auto (default: a fresh build if present), 0 (pure Python), 1 (compiled, required). "
        "See docs/performance.md, 'Compiled reducer (mypyc)'.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    build_parser = sub.add_parser("build", help="compile the reducer in place with mypyc")
    build_parser.add_argument("--opt-level", default="3", choices=["0", "1", "2", "3"], help="C optimisation level")
    build_parser.add_argument("-j", "--jobs", type=int, default=1, help="parallel C compiler jobs (default 1)")
    build_parser.add_argument("-v", "--verbose", action="store_true", help="show mypyc's and the compiler's output")
    sub.add_parser("clean", help="remove the compiled modules (pure Python from then on)")
    sub.add_parser("status", help="is a build present and fresh, and which variant runs")
    args = parser.parse_args(argv)
    if args.command == "build":
        return build(opt_level=args.opt_level, jobs=args.jobs, verbose=args.verbose)
    if args.command == "clean":
        return clean()
    return status()


if __name__ == "__main__":
    sys.exit(main())
