"""Pinned Go commands (helm, promtool) built from source through the Go module proxy into ``<repo>/.cache/go``.

Only ``go`` is needed (no release tarballs, no package manager): ``go install <package>@<version>`` fetches
the module and its dependencies from the module proxy (``GOPROXY``) with checksum verification, and builds a
static binary. The result is cached per version, so a second install is a no-op.

Layout::

    <cache> (RA_GOTOOL_HOME, default <repo>/.cache/go)
        bin/<name>-<version>/<name>     the binary; written last, by rename, so it is complete if present

Public API::

    TOOLS                                   {name: Tool(package, version)}
    install(name, home=None) -> Installed   build if missing; .path .version .built .duration_s
    installed(name, home=None) -> Path | None
    module_dir(module) -> Path              a pinned module's source tree (``go mod download``), for data
                                            files such as the compose-spec JSON schema

Command line: ``python -m tools.gotool install helm`` (prints the binary's path on its last line).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from services.exitcodes import EXIT_FAILED, EXIT_OK

__all__ = [
    "COMPOSE_SPEC",
    "TOOLS",
    "GoToolError",
    "Installed",
    "Module",
    "Tool",
    "install",
    "installed",
    "main",
    "module_dir",
]

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
HOME_ENV: Final = "RA_GOTOOL_HOME"
_OUTPUT_TAIL_LINES: Final = 30


@dataclasses.dataclass(frozen=True, slots=True)
class Tool:
    """A command to build: ``go install <package>@<version>``."""

    package: str
    version: str

    @property
    def name(self) -> str:
        return self.package.rsplit("/", 1)[-1]


TOOLS: Final[dict[str, Tool]] = {
    # Renders and lints deploy/helm (tests/unit/test_helm_chart.py).
    "helm": Tool("helm.sh/helm/v3/cmd/helm", "v3.22.0"),
    # Checks and unit-tests deploy/alerts.yml (tests/monitoring/test_promtool.py, opt-in: pytest --promtool).
    # v0.316.0 is the Go module version of Prometheus 3.16.0 (Prometheus tags its Go module v0.<3.16 -> 316>).
    "promtool": Tool("github.com/prometheus/prometheus/cmd/promtool", "v0.316.0"),
}


@dataclasses.dataclass(frozen=True, slots=True)
class Module:
    """A Go module read for its files, not built: ``go mod download <path>@<version>``."""

    path: str
    version: str


# The schema `docker compose config` validates against (compose-go's schema/compose-spec.json);
# tests/unit/test_deploy_files.py checks docker-compose.yml with it.
COMPOSE_SPEC: Final = Module("github.com/compose-spec/compose-go/v2", "v2.16.2")


class GoToolError(Exception):
    """``go`` is missing, the tool is unknown, or the build failed (the message ends with go's output tail)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Installed:
    path: Path
    version: str
    built: bool
    """True when this call built the binary, False when the cache already had it."""
    duration_s: float


def default_home() -> Path:
    return Path(os.environ.get(HOME_ENV) or REPO_ROOT / ".cache" / "go")


def _tool(name: str) -> Tool:
    try:
        return TOOLS[name]
    except KeyError:
        raise GoToolError(f"unknown tool {name!r}; known: {', '.join(sorted(TOOLS))}") from None


def _binary(tool: Tool, home: Path) -> Path:
    return home / "bin" / f"{tool.name}-{tool.version}" / tool.name


def installed(name: str, home: Path | None = None) -> Path | None:
    """The cached binary of ``name`` at its pinned version, or None if it is not built yet."""
    path = _binary(_tool(name), home or default_home())
    return path if path.is_file() else None


def install(name: str, home: Path | None = None) -> Installed:
    """Build ``name`` at its pinned version unless the cache has it; return where it is."""
    tool = _tool(name)
    began = time.monotonic()
    target = _binary(tool, home or default_home())
    if target.is_file():
        return Installed(target, tool.version, built=False, duration_s=time.monotonic() - began)
    go = _go()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as scratch:
        # GOTOOLCHAIN=auto (unless set): an older go fetches the Go release the tool's go.mod asks for, even
        # where the distribution's go.env pins GOTOOLCHAIN=local.
        env = {"GOTOOLCHAIN": "auto", **os.environ, "GOBIN": scratch, "CGO_ENABLED": "0"}
        result = subprocess.run(
            [go, "install", f"{tool.package}@{tool.version}"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        built = Path(scratch) / tool.name
        if result.returncode != 0 or not built.is_file():
            raise _failure(f"go install {tool.package}@{tool.version}", result)
        os.replace(built, target)
    return Installed(target, tool.version, built=True, duration_s=time.monotonic() - began)


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise GoToolError(
            "`go` was not found on PATH; it fetches pinned Go modules through the module proxy "
            "(https://go.dev/doc/install, or `apt-get install golang` if recent enough)"
        )
    return go


def _failure(command: str, result: subprocess.CompletedProcess[str]) -> GoToolError:
    tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-_OUTPUT_TAIL_LINES:])
    return GoToolError(
        f"`{command}` failed (exit {result.returncode}); check network access to the Go module proxy "
        f"(GOPROXY={os.environ.get('GOPROXY') or 'default'}):\n{tail}"
    )


def module_dir(module: Module) -> Path:
    """The read-only source tree of ``module`` in Go's module cache, downloaded (checksum-verified) if missing."""
    spec = f"{module.path}@{module.version}"
    result = subprocess.run(
        [_go(), "mod", "download", "-json", spec],
        capture_output=True,
        text=True,
        check=False,
        cwd=tempfile.gettempdir(),
    )
    if result.returncode != 0:
        raise _failure(f"go mod download {spec}", result)
    directory = json.loads(result.stdout).get("Dir")
    if not isinstance(directory, str) or not Path(directory).is_dir():
        raise GoToolError(f"`go mod download {spec}` named no source directory: {result.stdout.strip()[:300]}")
    return Path(directory)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.gotool",
        description="Build pinned Go commands through the Go module proxy into a cache (no-op when cached).",
    )
    parser.add_argument("--home", type=Path, default=None, help=f"cache directory (default: ${HOME_ENV} or .cache/go)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command, text in (("install", "build the tool unless cached"), ("path", "print the cached binary's path")):
        sub = commands.add_parser(command, help=text)
        sub.add_argument("tool", choices=sorted(TOOLS))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the process exit code (0 ok; 1 the build failed, or ``path``: not installed)."""
    args = _build_parser().parse_args(argv)
    try:
        if args.command == "path":
            path = installed(args.tool, args.home)
            if path is None:
                print(
                    f"{args.tool} is not installed: run `python -m tools.gotool install {args.tool}`", file=sys.stderr
                )
                return EXIT_FAILED
            print(path)
            return EXIT_OK
        result = install(args.tool, args.home)
    except GoToolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    verb = "built" if result.built else "already installed"
    print(f"{verb} {args.tool} {result.version} in {result.duration_s:.1f} s", file=sys.stderr)
    print(result.path)
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
