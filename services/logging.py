"""Structured JSON logs, configured once per process with :func:`configure_logging`.

The chain is structlog's production recipe (``docs/performance.md``): merge contextvars, filter by level
in the bound logger itself, add level and a UTC ISO timestamp, render JSON bytes straight into
``BytesLoggerFactory`` (stdout). Two additions:

* :func:`redact_secrets` replaces every :class:`~services.config.Secret` value and every value whose
  key looks sensitive (``token``, ``password``, ``authorization``, ...) with ``***``, at any depth, and
  masks the password of every URL inside a string (``https://user:***@host``, :mod:`services.redact`).
  Tracebacks are rendered as text without local variables, so a secret held in a local cannot leak
  through an exception either.
* JSON is encoded with msgspec. structlog's ``JSONRenderer`` always passes ``default=`` to its
  serializer (msgspec calls that hook ``enc_hook`` and fixes it at construction), so the serializer is
  a small wrapper that ignores ``default`` and uses our own hook; it never raises, whatever was logged.

Standard-library loggers (aiokafka, httpx) go through the same processors via
``structlog.stdlib.ProcessorFormatter``, so every line on stdout is one JSON object.

Stable keys: ``timestamp``, ``level``, ``service``, ``event`` first, then the event's fields. Services bind
``group``, ``topic``, ``partition``, ``offset`` and ``thread_id`` with ``structlog.contextvars`` where they
apply. Events are ``snake_case`` names (``batch_sent``), never formatted messages.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import IO, Any, BinaryIO, Final

import msgspec
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from services.config import Secret
from services.redact import mask_url_credentials

__all__ = ["REDACTED", "configure_logging", "redact_secrets"]

REDACTED: Final = "***"

_SENSITIVE_KEY: Final = re.compile(r"token|password|passwd|secret|authorization|api[-_]?key|cookie", re.IGNORECASE)
_FIRST_KEYS: Final = ("timestamp", "level", "service", "event")
_QUIET_LIBRARIES: Final = ("httpx", "httpcore")  # one INFO line per request: the sender logs its own


_PLAIN_TYPES: Final = frozenset({str, int, float, type(None), bytes})
"""Exact types that can be neither a :class:`Secret` nor a container: only their key can make them secret."""
_KEY_VERDICTS_MAX: Final = 4096
_key_verdicts: dict[str, bool] = {}
"""Whether a key looks sensitive, per key seen (keys are a small fixed set: event field names)."""


def _sensitive_key(key: str) -> bool:
    verdict = _key_verdicts.get(key)
    if verdict is None:
        verdict = _SENSITIVE_KEY.search(key) is not None
        if len(_key_verdicts) < _KEY_VERDICTS_MAX:
            _key_verdicts[key] = verdict
    return verdict


def _redact(key: object, value: Any) -> Any:
    if type(value) in _PLAIN_TYPES:  # the common case, decided without isinstance checks or a regex search
        if value is not None and isinstance(key, str) and _sensitive_key(key):
            return REDACTED
        if type(value) is str and "@" in value:  # only then can it hold https://user:pw@host
            return mask_url_credentials(value)
        return value
    if isinstance(value, Secret):
        return REDACTED
    if isinstance(key, str) and _SENSITIVE_KEY.search(key) and value is not None and not isinstance(value, bool):
        return REDACTED
    if isinstance(value, Mapping):
        return {k: _redact(k, v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact(None, v) for v in value]
    return value


def redact_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: hide secrets (by type and by key name) anywhere in the event."""
    return {key: _redact(key, value) for key, value in event_dict.items()}


def _first_keys_first(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    ordered = {key: event_dict.pop(key) for key in _FIRST_KEYS if key in event_dict}
    ordered.update(event_dict)
    return ordered


def _add_service(service: str) -> Processor:
    def add_service(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("service", service)
        return event_dict

    return add_service


def _fallback(value: Any) -> Any:
    """msgspec ``enc_hook``: anything msgspec cannot encode natively is logged as its ``repr``."""
    if isinstance(value, Secret):
        return REDACTED
    return repr(value)


_encoder: Final = msgspec.json.Encoder(enc_hook=_fallback)


def _plain(value: Any) -> Any:
    """Last resort for objects msgspec refuses even with the hook (e.g. dicts with non-string keys)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return _fallback(value)


def _dumps(event_dict: EventDict, **_ignored: Any) -> bytes:
    """JSON serializer for ``JSONRenderer``; ``default=`` (always passed by structlog) is ignored."""
    try:
        return _encoder.encode(event_dict)
    except (TypeError, ValueError, msgspec.EncodeError):
        return _encoder.encode(_plain(event_dict))


def _dumps_text(event_dict: EventDict, **_ignored: Any) -> str:
    return _dumps(event_dict).decode()


def configure_logging(service: str, level: str = "INFO", *, stream: BinaryIO | None = None, cache: bool = True) -> None:
    """Send JSON logs of ``level`` and above to ``stream`` (default: stdout), each line tagged ``service``.

    Args:
        service: Value of the ``service`` key on every line (``sender``, ``processor``, ``endpoint``).
        level: ``DEBUG``, ``INFO``, ``WARNING`` or ``ERROR``.
        stream: A binary stream; tests pass a ``BytesIO``.
        cache: Cache loggers on first use (fast). Tests that reconfigure logging pass ``False``.
    """
    level_no = logging.getLevelNamesMapping()[level.upper()]
    output: BinaryIO = stream if stream is not None else sys.stdout.buffer
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        _add_service(service),
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,  # text traceback, no locals (dict_tracebacks would show them)
        redact_secrets,
        _first_keys_first,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.JSONRenderer(serializer=_dumps)],
        wrapper_class=structlog.make_filtering_bound_logger(level_no),
        logger_factory=structlog.BytesLoggerFactory(output),
        cache_logger_on_first_use=cache,
    )

    handler = logging.StreamHandler(_TextOver(output))
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared[:-2], structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                redact_secrets,
                _first_keys_first,
                structlog.processors.JSONRenderer(serializer=_dumps_text),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level_no)
    for name in _QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(level_no, logging.WARNING))


class _TextOver:
    """A minimal text stream over the binary ``output`` so stdlib lines land in the same byte stream."""

    def __init__(self, output: IO[bytes]) -> None:
        self._output = output

    def write(self, text: str) -> int:
        self._output.write(text.encode())
        return len(text)

    def flush(self) -> None:
        self._output.flush()
