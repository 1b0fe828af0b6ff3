"""The one runner every command shares: parsing, exit codes, the error line, ``--version``, client cleanup.

Every command (``processor``, ``sender``, ``lag``, ``setup-topics``, ``replay-dlq``, ``replay``, ``publish``,
``reset``) is built the same way::

    def build_parser() -> argparse.ArgumentParser:
        parser = command_parser("lag", description=..., epilog=...)   # --version, the exit-code table
        ...

    def main(argv: Sequence[str] | None = None) -> int:
        return run_command("lag", build_parser, _main, argv)

:func:`run` calls the body (a coroutine is run with :func:`asyncio.run`) and turns whatever it raises into
one exit code of :mod:`services.exitcodes` and **one JSON error line** (structlog, on stderr for the tools,
on stdout for the two services, like the rest of their logs)::

    {"timestamp": ..., "level": "error", "service": "lag", "event": "command_failed",
     "error": "...", "error_type": "KafkaConnectionError", "exit_code": 3}

=====================================================  =====  ==============================================
raised                                                 code   examples
=====================================================  =====  ==============================================
:class:`~services.errors.ConfigError` (incl. usage)    2      a bad flag or variable, a port in use
authentication or TLS failure                          4      wrong SASL password, untrusted certificate, ACL
broker unreachable                                     3      connection refused, bootstrap timeout
anything else                                          1      a bug: the line carries the traceback
=====================================================  =====  ==============================================

The table and the one-line messages are :func:`services.kafka_errors.classify_failure`'s; this module only
runs the body and prints what it says.

Bad usage (an unknown flag, ``--partitions abc``) is a :class:`UsageError` raised by :class:`CommandParser`
instead of argparse's own exit, so it gets the same error line and exit code 2; ``--help`` and ``--version``
print and exit 0 as usual.

Kafka clients must be stopped on every path, or aiokafka prints "Unclosed AIOKafkaConsumer" when they are
garbage-collected: create them inside an :class:`contextlib.AsyncExitStack` and start them with
:func:`start_client`, which registers the stop *before* starting (a client whose ``start()`` failed half-way
still holds connections and must be stopped too); a client created now and started later is registered at
once with :func:`stop_on_exit` (aiokafka reports a consumer that was never started as unclosed as well).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import importlib.metadata
import inspect
import io
import os
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, BinaryIO, Final, Literal, NoReturn, Protocol, TextIO, TypeVar, cast

import structlog

from services.errors import ConfigError
from services.exitcodes import EXIT_CODES_HELP, EXIT_FAILED, EXIT_OK, EXIT_USAGE
from services.kafka_errors import classify_failure
from services.logging import configure_logging

__all__ = [
    "CommandParser",
    "UsageError",
    "command_parser",
    "exit_code",
    "port_in_use",
    "run",
    "run_command",
    "start_client",
    "stop_on_exit",
    "version",
]

PACKAGE: Final = "review-analytics"


class UsageError(ConfigError):
    """The command line itself is wrong (unknown flag, a value that does not parse): exit 2."""

    reason = "usage"


def version() -> str:
    """The installed package's version (``pyproject.toml``), or ``0+unknown`` when run from a bare checkout."""
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


class CommandParser(argparse.ArgumentParser):
    """An :class:`argparse.ArgumentParser` whose usage errors raise :class:`UsageError` (see the module doc)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (usage: {self.format_usage().strip().removeprefix('usage: ')})")


def command_parser(name: str, *, description: str, epilog: str | None = None) -> CommandParser:
    """The parser of command ``name``: raw-text help, ``--version``, and the exit-code table in the epilog."""
    parser = CommandParser(
        prog=name,
        description=description,
        epilog=f"{epilog}\n\n{EXIT_CODES_HELP}" if epilog else EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()} (review-analytics)")
    return parser


# --------------------------------------------------------------------------------------------------------
# Exit codes
# --------------------------------------------------------------------------------------------------------


def exit_code(error: BaseException) -> int:
    """The exit code of a command that raised ``error``: :func:`services.kafka_errors.classify_failure`, the
    one table (a usage or configuration error 2, a refused login or certificate 4, nothing answered 3)."""
    return classify_failure(error).exit_code


def port_in_use(error: OSError, *, setting: str, port: int) -> ConfigError:
    """The :class:`ConfigError` for a metrics port the process cannot bind (in use, or privileged)."""
    why = "is already in use" if error.errno == errno.EADDRINUSE else f"cannot be bound ({error.strerror})"
    return ConfigError(f"{setting}={port}: the port {why}; choose another port, or 0 to disable the server")


# --------------------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------------------


def run(
    name: str,
    body: Callable[[], int | Coroutine[Any, Any, int]],
    *,
    log_to: Literal["stdout", "stderr"] = "stderr",
) -> int:
    """Run ``body`` (a coroutine it returns is run with :func:`asyncio.run`) and return the exit code.

    Logging is configured first (JSON lines, level INFO, on ``log_to``); a body may configure it again with
    its own level. A failure becomes one ``command_failed`` line and its exit code (module docstring);
    the traceback is included only for unexpected errors (exit 1). ``SystemExit`` (``--help``,
    ``--version``) passes its code through. Ctrl-C is a failure with exit 1 (``interrupted``) unless the body
    handles it itself (``lag --watch`` does).
    """
    stream = _CurrentStream(log_to)
    configure_logging(name, "INFO", stream=cast(BinaryIO, stream), cache=False)
    try:
        outcome = body()
        if inspect.iscoroutine(outcome):
            outcome = asyncio.run(outcome)
        assert isinstance(outcome, int)
        return outcome
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (EXIT_OK if done.code is None else EXIT_USAGE)
    except KeyboardInterrupt:
        structlog.get_logger(name).error("command_failed", error="interrupted", exit_code=EXIT_FAILED)
        return EXIT_FAILED
    except Exception as error:
        failure = classify_failure(error)
        code = failure.exit_code
        log = structlog.get_logger(name)
        fields: dict[str, Any] = {"error": failure.message, "error_type": type(error).__name__}
        if code == EXIT_FAILED:
            log.error("command_failed", **fields, exit_code=code, exc_info=error)
        else:
            log.error("command_failed", **fields, exit_code=code)
        return code
    finally:
        stream.flush()


CommandBody = Callable[[argparse.Namespace, Mapping[str, str], TextIO], int | Coroutine[Any, Any, int]]
"""A command's body: its parsed flags, the environment and the stream for its output."""


def run_command(
    name: str,
    build_parser: Callable[[], argparse.ArgumentParser],
    body: CommandBody,
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
) -> int:
    """:func:`run` for a tool: parse ``argv`` with ``build_parser()`` (a usage error is the JSON error line
    too), then ``body(args, env, out)``; ``env`` defaults to ``os.environ`` and ``out`` to stdout (tests pass
    their own)."""
    environ = os.environ if env is None else env
    stdout = sys.stdout if out is None else out
    return run(name, lambda: body(build_parser().parse_args(argv), environ, stdout))


class _CurrentStream(io.RawIOBase):
    """The binary buffer of whatever ``sys.stdout``/``sys.stderr`` is at the time of each write (so a
    command run in-process by a test, under output capture, logs into that capture and not into a
    stream closed since)."""

    def __init__(self, name: Literal["stdout", "stderr"]) -> None:
        super().__init__()
        self._name = name

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        target = getattr(sys, self._name)
        target.buffer.write(data)
        return len(data)

    def flush(self) -> None:
        getattr(sys, self._name).flush()


class _Client(Protocol):
    async def start(self) -> None: ...


ClientT = TypeVar("ClientT", bound=_Client)


def stop_on_exit(stack: contextlib.AsyncExitStack, client: ClientT) -> ClientT:
    """Register the stop of an aiokafka client on ``stack``. Do it as soon as the client exists: aiokafka
    reports a consumer as unclosed even when it was never started."""
    stop = getattr(client, "stop", None) or client.close  # type: ignore[attr-defined]  # admin clients close()
    stack.push_async_callback(_quietly, stop)
    return client


async def start_client(stack: contextlib.AsyncExitStack, client: ClientT) -> ClientT:
    """Start an aiokafka consumer, producer or admin client whose stop is registered on ``stack`` first."""
    stop_on_exit(stack, client)
    await client.start()
    return client


async def _quietly(stop: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Stop a client; a failure to stop (broker gone) must not hide the error that got us here."""
    with contextlib.suppress(Exception):
        await stop()
