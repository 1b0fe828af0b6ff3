"""promtool, Prometheus' rule checker, built from the Go module proxy into ``.cache/promtool/<version>/``.

``python -m tools.promtool install`` runs ``go install github.com/prometheus/prometheus/cmd/promtool@<v>``
once with ``GOBIN`` in the cache (Go's own module and build caches make a second install on the same
machine take seconds); ``python -m tools.promtool path`` prints where the binary is (or would be).
``RA_PROMTOOL`` names another promtool binary to use instead.

The tests that run it (``tests/monitoring/test_promtool.py``) are opt-in with ``pytest --promtool``:
the first build compiles Prometheus' whole dependency tree (see docs/operations.md, "Alert rule tests").
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

__all__ = ["MODULE", "VERSION", "PromtoolUnavailable", "install", "promtool_path"]

MODULE: Final = "github.com/prometheus/prometheus/cmd/promtool"
VERSION: Final = "v0.316.0"
"""The Go module version of Prometheus 3.16.0 (Prometheus tags its Go module v0.<minor*100+...>)."""
ROOT: Final = Path(__file__).resolve().parents[1]


class PromtoolUnavailable(RuntimeError):
    """promtool is not installed and cannot be built here (no ``go``, or the build failed)."""


def promtool_path() -> Path:
    """``$RA_PROMTOOL``, else ``<repo>/.cache/promtool/<VERSION>/promtool``."""
    override = os.environ.get("RA_PROMTOOL")
    return Path(override) if override else ROOT / ".cache" / "promtool" / VERSION / "promtool"


def install(*, timeout_s: float = 3600.0) -> Path:
    """Build promtool into :func:`promtool_path` unless it is there; returns its path."""
    target = promtool_path()
    if target.exists():
        return target
    go = shutil.which("go")
    if go is None:
        raise PromtoolUnavailable("`go` is not on PATH: install Go 1.24+ to build promtool")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as bin_dir:
        env = {**os.environ, "GOBIN": bin_dir, "CGO_ENABLED": "0"}
        started = time.monotonic()
        done = subprocess.run(
            [go, "install", f"{MODULE}@{VERSION}"], env=env, capture_output=True, text=True, timeout=timeout_s
        )
        if done.returncode != 0:
            raise PromtoolUnavailable(f"go install {MODULE}@{VERSION} failed:\n{done.stderr[-4000:]}")
        os.replace(Path(bin_dir) / "promtool", target)  # atomic: a half-built binary is never found
    print(f"built promtool {VERSION} in {time.monotonic() - started:.0f} s: {target}", file=sys.stderr)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.promtool", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("install", help="build promtool into the cache unless it is there")
    commands.add_parser("path", help="print where promtool is (or would be) installed")
    args = parser.parse_args(argv)
    if args.command == "path":
        print(promtool_path())
        return 0
    try:
        print(install())
    except (PromtoolUnavailable, subprocess.TimeoutExpired) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
