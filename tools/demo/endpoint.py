"""A real loopback stand-in for the analytics endpoint that records everything and fails on demand.

:class:`RecordingEndpoint` is an HTTP/1.1 server (keep-alive) on 127.0.0.1, run on a background thread.
It accepts ``POST /codex/analytics-events/events`` with a ``{"events": [...]}`` body, records every
request (time, headers, parsed events, idempotency key, status returned) and answers according to a
programmable **fault schedule**. Tests use it in-process; the demo runs it as a subprocess::

    python -m tools.demo.endpoint --port 18080 --record-file var/endpoint.jsonl

Faults are evaluated in the order they were added; the first one that fires answers the request, and a
fault with a ``count`` stops firing after answering that many requests. Kinds:

==============  =====================================================================================
``fail``        answer ``status`` (default 503, optional ``Retry-After``): "fail the first N requests"
``unavailable`` 503 with ``Retry-After`` for ``seconds`` from when it was added
``random``      a random 5xx with ``probability``, from a seeded generator (reproducible)
``throttle``    429 with ``Retry-After``
``stall``       record the events as accepted, then wait ``seconds`` before answering 200 (a client with
                a shorter timeout sees a timeout for a batch that was in fact accepted); ``accept=false``
                waits and then answers 503 without accepting
``reset``       close the connection with a TCP reset, without an answer (nothing is accepted)
``reject_rows`` answer ``status`` (400/413/422) to any request holding a row whose
                ``event_params.thread_id`` or ``event_type`` is listed (or, from Python, matches ``where``)
``too_large``   413 for requests with more than ``max_rows`` rows or ``max_bytes`` body bytes
==============  =====================================================================================

Control over HTTP (so a subprocess can be driven): ``POST /_control/faults`` with
``{"faults": [{"kind": "fail", "count": 3}, ...], "append": false}``; ``DELETE /_control/faults``;
``GET /_control/stats``; ``GET /_control/requests``; ``POST /_control/reset`` (forget requests and
faults); ``GET /healthz``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import socket
import ssl
import struct
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Final, Self

import msgspec
import structlog

from schemas.http import EVENTS_PATH

__all__ = [
    "FailRequests",
    "Fault",
    "RandomFailures",
    "RecordedRequest",
    "RecordingEndpoint",
    "RejectRows",
    "ResetConnection",
    "Stall",
    "Throttle",
    "TooLarge",
    "Unavailable",
    "main",
]

Event = dict[str, Any]
RowPredicate = Callable[[Event], bool]

_CONTROL_PREFIX: Final = "/_control/"
_log = structlog.get_logger("tools.demo.endpoint")


# --------------------------------------------------------------------------------------------------------
# Faults: plain data (JSON over the control API), armed with runtime state when added
# --------------------------------------------------------------------------------------------------------


class Fault(msgspec.Struct, kw_only=True, frozen=True, tag_field="kind"):
    """Base of every fault. ``count``: answer at most this many requests, then stop (``None``: no limit)."""

    count: int | None = None


class FailRequests(Fault, tag="fail", frozen=True):
    """Answer ``status`` (with ``Retry-After`` if given)."""

    status: int = 503
    retry_after: str | None = None


class Unavailable(Fault, tag="unavailable", frozen=True):
    """503 with ``Retry-After`` during ``seconds`` from when the fault is added."""

    seconds: float
    retry_after: str = "1"


class RandomFailures(Fault, tag="random", frozen=True):
    """With ``probability``, answer one of ``statuses``; seeded, so a run is reproducible."""

    probability: float
    seed: int = 0
    statuses: tuple[int, ...] = (500, 502, 503, 504)


class Throttle(Fault, tag="throttle", frozen=True):
    """429 Too Many Requests with ``Retry-After``."""

    retry_after: str = "1"


class Stall(Fault, tag="stall", frozen=True):
    """Wait ``seconds`` before answering; with ``accept`` the events are recorded as accepted first."""

    seconds: float
    accept: bool = True


class ResetConnection(Fault, tag="reset", frozen=True):
    """Close the connection with a TCP reset instead of answering."""


class RejectRows(Fault, tag="reject_rows", frozen=True):
    """Answer ``status`` to requests holding a row of a listed thread id or event type."""

    status: int = 400
    thread_ids: frozenset[str] = frozenset()
    event_types: frozenset[str] = frozenset()


class TooLarge(Fault, tag="too_large", frozen=True):
    """413 for requests with more than ``max_rows`` rows or more than ``max_bytes`` body bytes."""

    max_rows: int | None = None
    max_bytes: int | None = None
    status: int = 413


AnyFault = FailRequests | Unavailable | RandomFailures | Throttle | Stall | ResetConnection | RejectRows | TooLarge


class _FaultList(msgspec.Struct, kw_only=True):
    faults: list[AnyFault]
    append: bool = False


@dataclass(slots=True)
class _Decision:
    status: int | None  # None: reset the connection
    retry_after: str | None = None
    stall_s: float = 0.0
    name: str = ""


@dataclass(slots=True)
class _Armed:
    """A fault plus what it needs at run time: requests left, its random generator, when it was added."""

    fault: Fault
    where: RowPredicate | None = None
    remaining: int | None = None
    armed_at: float = field(default_factory=time.monotonic)
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self.remaining = self.fault.count
        if isinstance(self.fault, RandomFailures):
            self.rng = random.Random(self.fault.seed)

    def decide(self, events: Sequence[Event], body_size: int) -> _Decision | None:
        if self.remaining is not None and self.remaining <= 0:
            return None
        decision = self._decide(events, body_size)
        if decision is not None and self.remaining is not None:
            self.remaining -= 1
        return decision

    def _decide(self, events: Sequence[Event], body_size: int) -> _Decision | None:
        fault, kind = self.fault, self.fault.__struct_config__.tag
        match fault:
            case FailRequests(status=status, retry_after=retry_after):
                return _Decision(status, retry_after, name=f"{kind}")
            case Unavailable(seconds=seconds, retry_after=retry_after):
                if time.monotonic() - self.armed_at < seconds:
                    return _Decision(503, retry_after, name=f"{kind}")
                return None
            case RandomFailures(probability=probability, statuses=statuses):
                if self.rng.random() < probability:
                    return _Decision(self.rng.choice(statuses), name=f"{kind}")
                return None
            case Throttle(retry_after=retry_after):
                return _Decision(429, retry_after, name=f"{kind}")
            case Stall(seconds=seconds, accept=accept):
                return _Decision(200 if accept else 503, stall_s=seconds, name=f"{kind}")
            case ResetConnection():
                return _Decision(None, name=f"{kind}")
            case RejectRows(status=status):
                if any(self._rejects(event) for event in events):
                    return _Decision(status, name=f"{kind}")
                return None
            case TooLarge(max_rows=max_rows, max_bytes=max_bytes, status=status):
                if (max_rows is not None and len(events) > max_rows) or (
                    max_bytes is not None and body_size > max_bytes
                ):
                    return _Decision(status, name=f"{kind}")
                return None
        raise TypeError(f"unknown fault {fault!r}")

    def _rejects(self, event: Event) -> bool:
        assert isinstance(self.fault, RejectRows)
        if self.where is not None and self.where(event):
            return True
        if event.get("event_type") in self.fault.event_types:
            return True
        params = event.get("event_params")
        return isinstance(params, dict) and params.get("thread_id") in self.fault.thread_ids


# --------------------------------------------------------------------------------------------------------
# Recorded requests
# --------------------------------------------------------------------------------------------------------


class RecordedRequest(msgspec.Struct, kw_only=True, frozen=True):
    """One request as the endpoint saw it.

    Attributes:
        seq: Arrival number, from 1.
        received_at: Unix time of arrival.
        headers: Header names lower-cased.
        events: The parsed rows (empty if the body was invalid).
        idempotency_key: The ``Idempotency-Key`` header, if sent.
        status: The status answered (or recorded before a stall); ``None`` for a connection reset.
        fault: Kind of the fault that decided the answer, or ``None``.
        peer: The client's ``host:port``; the same port on successive requests means keep-alive worked.
    """

    seq: int
    received_at: float
    method: str
    path: str
    peer: str
    headers: dict[str, str]
    events: list[Event]
    idempotency_key: str | None
    body_bytes: int
    status: int | None
    fault: str | None = None

    @property
    def accepted(self) -> bool:
        """True when the events were accepted (2xx)."""
        return self.status is not None and 200 <= self.status < 300


def _validate(body: bytes) -> list[Event] | str:
    """The events of a valid ``{"events": [...]}`` body, or what is wrong with it."""
    try:
        document = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        return f"body is not JSON: {exc}"
    if not isinstance(document, dict) or set(document) != {"events"} or not isinstance(document["events"], list):
        return 'body must be {"events": [...]}'
    events = document["events"]
    for index, event in enumerate(events):
        if not isinstance(event, dict) or not isinstance(event.get("event_type"), str):
            return f"events[{index}] must be an object with a string event_type"
    return events


# --------------------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    endpoint: RecordingEndpoint


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every answer carries Content-Length
    server: _Server

    def do_GET(self) -> None:
        endpoint = self.server.endpoint
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._json(HTTPStatus.OK, {"ok": True})
        elif path == _CONTROL_PREFIX + "stats":
            self._json(HTTPStatus.OK, endpoint.stats())
        elif path == _CONTROL_PREFIX + "requests":
            self._json(HTTPStatus.OK, endpoint.requests)
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no GET {path}"})

    def do_DELETE(self) -> None:
        if self.path == _CONTROL_PREFIX + "faults":
            self.server.endpoint.clear_faults()
            self._json(HTTPStatus.OK, {"faults": 0})
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no DELETE {self.path}"})

    def do_POST(self) -> None:
        body = self._read_body()
        if body is None:
            return
        endpoint = self.server.endpoint
        if self.path == _CONTROL_PREFIX + "faults":
            try:
                request = msgspec.json.decode(body, type=_FaultList)
            except msgspec.DecodeError as exc:
                self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
                return
            if not request.append:
                endpoint.clear_faults()
            for fault in request.faults:
                endpoint.add_fault(fault)
            self._json(HTTPStatus.OK, {"faults": len(endpoint.faults)})
        elif self.path == _CONTROL_PREFIX + "reset":
            endpoint.reset()
            self._json(HTTPStatus.OK, {"ok": True})
        elif self.path == EVENTS_PATH:
            self._events(body)
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no POST {self.path}; rows go to {EVENTS_PATH}"})

    def _events(self, body: bytes) -> None:
        endpoint = self.server.endpoint
        headers = {name.lower(): value for name, value in self.headers.items()}
        parsed = _validate(body)
        decision: _Decision | None
        events: list[Event] = []
        if endpoint.expected_token is not None and headers.get("authorization") != f"Bearer {endpoint.expected_token}":
            decision = _Decision(401, name="unauthorized")
        elif isinstance(parsed, str):
            decision = _Decision(400, name="invalid_body")
        else:
            events = parsed
            decision = endpoint._decide(events, len(body))
        status = 200 if decision is None else decision.status
        host, port = self.client_address[:2]
        endpoint._record(
            method="POST",
            path=self.path,
            peer=f"{host}:{port}",
            headers=headers,
            events=events,
            body_bytes=len(body),
            status=status,
            fault=None if decision is None else decision.name,
        )
        if decision is not None and decision.status is None:
            self._reset()
            return
        if decision is not None and decision.stall_s:
            time.sleep(decision.stall_s)
        assert status is not None
        answer: dict[str, Any] = {"accepted": len(events)} if status < 300 else {"error": decision and decision.name}
        if isinstance(parsed, str):
            answer["detail"] = parsed
        extra = {"Retry-After": decision.retry_after} if decision is not None and decision.retry_after else {}
        with contextlib.suppress(OSError):  # a client that timed out has gone
            self._json(status, answer, extra)

    def _read_body(self) -> bytes | None:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._json(HTTPStatus.LENGTH_REQUIRED, {"error": "Content-Length required"})
            self.close_connection = True
            return None
        return self.rfile.read(int(length))

    def _reset(self) -> None:
        """Abort the connection: SO_LINGER 0 makes close() send RST instead of FIN."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _json(self, status: int, payload: Any, extra_headers: dict[str, str] | None = None) -> None:
        body = msgspec.json.encode(payload)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are logged by :meth:`RecordingEndpoint._record` (when enabled), not by http.server."""


class RecordingEndpoint:
    """The loopback analytics endpoint: records requests, answers per the fault schedule.

    Use as a context manager (``with RecordingEndpoint() as endpoint:``) or call :meth:`start` and
    :meth:`stop`. All methods are thread-safe: the server answers on its own threads.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        record_file: str | Path | None = None,
        expected_token: str | None = None,
        log_requests: bool = False,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """Args:
        host, port: Where to listen; port 0 picks a free port (see :attr:`url`).
        record_file: Append every request as one JSON line (``Authorization`` masked).
        expected_token: If set, requests without ``Authorization: Bearer <token>`` get 401.
        log_requests: Log one structured line per request (the command line turns it on).
        tls: Serve HTTPS with this server-side context (``verify_mode=CERT_REQUIRED`` for mutual TLS).
        """
        self._address = (host, port)
        self._record_file = Path(record_file) if record_file is not None else None
        self.expected_token = expected_token
        self._log_requests = log_requests
        self._tls = tls
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._faults: list[_Armed] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind and serve on a daemon thread; returns self."""
        server = _Server(self._address, _Handler)
        server.endpoint = self
        if self._tls is not None:
            server.socket = self._tls.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="recording-endpoint", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port (stalled answers are abandoned)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port."""
        if self._server is None:
            raise RuntimeError("the endpoint is not started: call start() first")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL to configure the sender with (``SENDER_ENDPOINT_URL``)."""
        return f"{'https' if self._tls is not None else 'http'}://{self._address[0]}:{self.port}"

    @property
    def events_url(self) -> str:
        """Full URL rows are POSTed to."""
        return self.url + EVENTS_PATH

    # -- what was received -------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request to the events path, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    def accepted_events(self) -> list[Event]:
        """Events of the accepted (2xx) requests, in arrival order; repeats of a batch included."""
        return [event for request in self.requests if request.accepted for event in request.events]

    def unique_accepted_events(self) -> list[Event]:
        """Like :meth:`accepted_events`, but a batch whose idempotency key was accepted before is skipped."""
        seen: set[str] = set()
        events: list[Event] = []
        for request in self.requests:
            if not request.accepted:
                continue
            if request.idempotency_key is not None:
                if request.idempotency_key in seen:
                    continue
                seen.add(request.idempotency_key)
            events.extend(request.events)
        return events

    def event_type_counts(self, *, unique: bool = True) -> dict[str, int]:
        """Accepted events per ``event_type`` (deduplicated by idempotency key unless ``unique=False``)."""
        events = self.unique_accepted_events() if unique else self.accepted_events()
        return dict(Counter(str(event["event_type"]) for event in events))

    def stats(self) -> dict[str, Any]:
        """Counters for ``GET /_control/stats``."""
        requests = self.requests
        statuses = Counter("reset" if r.status is None else str(r.status) for r in requests)
        return {
            "requests": len(requests),
            "statuses": dict(statuses),
            "accepted_requests": sum(r.accepted for r in requests),
            "accepted_events": len(self.accepted_events()),
            "unique_accepted_events": len(self.unique_accepted_events()),
            "event_types": self.event_type_counts(),
            "faults": [msgspec.to_builtins(armed.fault) for armed in self.faults],
        }

    def reset(self) -> None:
        """Forget recorded requests and faults."""
        with self._lock:
            self._requests.clear()
            self._faults.clear()

    # -- fault schedule ----------------------------------------------------------------------------------

    @property
    def faults(self) -> list[_Armed]:
        """The faults still scheduled (a copy)."""
        with self._lock:
            return list(self._faults)

    def add_fault(self, fault: Fault, *, where: RowPredicate | None = None) -> None:
        """Schedule ``fault`` after those already scheduled. ``where`` (``reject_rows`` only): a row predicate."""
        if where is not None and not isinstance(fault, RejectRows):
            raise TypeError("where= applies to RejectRows only")
        with self._lock:
            self._faults.append(_Armed(fault, where=where))

    def clear_faults(self) -> None:
        """Answer every valid request with 200 from now on."""
        with self._lock:
            self._faults.clear()

    def fail_first(self, count: int, *, status: int = 503, retry_after: str | None = None) -> None:
        """Answer the next ``count`` requests with ``status``."""
        self.add_fault(FailRequests(count=count, status=status, retry_after=retry_after))

    def unavailable_for(self, seconds: float, *, retry_after: str = "1") -> None:
        """Answer 503 with ``Retry-After`` for ``seconds`` from now."""
        self.add_fault(Unavailable(seconds=seconds, retry_after=retry_after))

    def fail_randomly(
        self, probability: float, *, seed: int = 0, statuses: Iterable[int] = (500, 502, 503, 504)
    ) -> None:
        """Answer a random 5xx with ``probability`` (seeded)."""
        self.add_fault(RandomFailures(probability=probability, seed=seed, statuses=tuple(statuses)))

    def throttle(self, count: int = 1, *, retry_after: str = "1") -> None:
        """Answer the next ``count`` requests with 429 and ``Retry-After``."""
        self.add_fault(Throttle(count=count, retry_after=retry_after))

    def stall(self, seconds: float, *, count: int = 1, accept: bool = True) -> None:
        """Wait ``seconds`` before answering the next ``count`` requests (accepting them first if ``accept``)."""
        self.add_fault(Stall(count=count, seconds=seconds, accept=accept))

    def reset_connections(self, count: int = 1) -> None:
        """Reset the connection of the next ``count`` requests without answering."""
        self.add_fault(ResetConnection(count=count))

    def reject_rows(
        self,
        status: int = 400,
        *,
        thread_ids: Iterable[str] = (),
        event_types: Iterable[str] = (),
        where: RowPredicate | None = None,
        count: int | None = None,
    ) -> None:
        """Answer ``status`` to every request holding a matching row (by thread id, event type or ``where``)."""
        fault = RejectRows(
            count=count, status=status, thread_ids=frozenset(thread_ids), event_types=frozenset(event_types)
        )
        self.add_fault(fault, where=where)

    def reject_batches_larger_than(
        self, *, max_rows: int | None = None, max_bytes: int | None = None, status: int = 413
    ) -> None:
        """Answer 413 to requests with more than ``max_rows`` rows or ``max_bytes`` body bytes."""
        self.add_fault(TooLarge(max_rows=max_rows, max_bytes=max_bytes, status=status))

    # -- called by the handler ---------------------------------------------------------------------------

    def _decide(self, events: Sequence[Event], body_size: int) -> _Decision | None:
        with self._lock:
            for armed in self._faults:
                decision = armed.decide(events, body_size)
                if decision is not None:
                    return decision
        return None

    def _record(self, **fields: Any) -> RecordedRequest:
        headers: dict[str, str] = fields["headers"]
        with self._lock:
            request = RecordedRequest(
                seq=len(self._requests) + 1,
                received_at=time.time(),
                idempotency_key=headers.get("idempotency-key"),
                **fields,
            )
            self._requests.append(request)
            if self._record_file is not None:
                masked = {**headers, "authorization": "***"} if "authorization" in headers else headers
                line = msgspec.json.encode(msgspec.structs.replace(request, headers=masked))
                with self._record_file.open("ab") as file:
                    file.write(line + b"\n")
        if self._log_requests:
            _log.info(
                "request_recorded",
                seq=request.seq,
                status=request.status,
                rows=len(request.events),
                fault=request.fault,
                idempotency_key=request.idempotency_key,
            )
        return request


# --------------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """``--help`` of ``python -m tools.demo.endpoint``."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.demo.endpoint",
        description="A loopback analytics endpoint that records every request and fails on demand "
        f"(POST {EVENTS_PATH}). Drive its faults over HTTP: POST /_control/faults.",
        epilog="""\
control API:
  POST   /_control/faults    {"faults": [{"kind": "fail", "count": 3, "status": 503}], "append": false}
  DELETE /_control/faults    answer 200 again
  GET    /_control/stats     counts by status and event type, accepted and unique accepted events
  GET    /_control/requests  every recorded request
  POST   /_control/reset     forget requests and faults
fault kinds: fail, unavailable, random, throttle, stall, reset, reject_rows, too_large
  (fields: see tools/demo/endpoint.py)

example:
  python -m tools.demo.endpoint --port 18080 --record-file var/endpoint.jsonl &
  curl -s -XPOST localhost:18080/_control/faults -d '{"faults":[{"kind":"unavailable","seconds":30}]}'""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=18080, help="port to listen on (default: %(default)s)")
    parser.add_argument("--record-file", type=Path, help="append every request as a JSON line to this file")
    parser.add_argument(
        "--expected-token",
        default=os.environ.get("ENDPOINT_EXPECTED_TOKEN") or None,
        help="answer 401 unless 'Authorization: Bearer <token>' matches (env ENDPOINT_EXPECTED_TOKEN; default: "
        "no check)",
    )
    parser.add_argument(
        "--faults",
        type=str,
        help='initial fault schedule as JSON, e.g. \'[{"kind": "random", "probability": 0.1}]\'',
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT."""
    from services.logging import configure_logging

    args = build_parser().parse_args(argv)
    configure_logging("endpoint", args.log_level)
    endpoint = RecordingEndpoint(
        host=args.host,
        port=args.port,
        record_file=args.record_file,
        expected_token=args.expected_token,
        log_requests=True,
    )
    if args.faults:
        for fault in msgspec.json.decode(args.faults, type=list[AnyFault]):
            endpoint.add_fault(fault)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with endpoint:
        _log.info("endpoint_listening", url=endpoint.url, events_path=EVENTS_PATH, record_file=str(args.record_file))
        stop.wait()
    _log.info("endpoint_stopped", **{k: v for k, v in endpoint.stats().items() if k != "faults"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
