"""The only encoders and decoders of the project: decode once at the edge, typed objects inside.

* Facts travel as JSON (``FactEnvelope``): the same bytes on Kafka and in replay files.
* Rows travel as JSON in the exact wire shape the analytics endpoint expects.
* State travels as MessagePack (compact changelog values): families, connections and the partition's
  clock.

Decode failures are data, not crashes: :func:`decode_fact` raises only :class:`FactDecodeError`
subclasses, whatever the bytes, whose ``reason`` is a stable label for metrics and dead-letter headers
and whose message carries msgspec's ``$.path`` of the offending field. The bounds a fact must respect
(integer range, string lengths, free-form values, nesting) are declared in :mod:`schemas.bounds`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Final

import msgspec

from schemas.bounds import FreeFormTooDeep
from schemas.events import Row
from schemas.facts import SCHEMA_VERSION, EnvelopeHeader, FactEnvelope
from schemas.state import ConnectionState, FamilyState

MAX_FACT_BYTES: Final = 1024 * 1024
"""Facts larger than this are refused before decoding (dead-lettered as ``oversized``)."""


class FactDecodeError(ValueError):
    """A fact's bytes cannot become a :class:`FactEnvelope`. ``reason`` labels why."""

    reason: ClassVar[str] = "undecodable"
    """A class attribute (``ClassVar``: the mypyc build keeps it on the class, as CPython does)."""


class UndecodableFact(FactDecodeError):
    """Not JSON, or JSON whose envelope is unreadable."""

    reason = "undecodable"


class UnsupportedSchemaVersion(FactDecodeError):
    """The envelope is readable but its version is one this reducer does not know."""

    reason = "unsupported_version"


class InvalidFact(FactDecodeError):
    """Valid JSON and a known version, but a field has the wrong type, value or tag, or breaks a bound
    of :mod:`schemas.bounds` (an integer outside signed 64 bits, a string or free-form value too long)."""

    reason = "invalid"


class TooDeepFact(FactDecodeError):
    """Nested deeper than a bound: a free-form value deeper than ``schemas.bounds.MAX_FREE_FORM_DEPTH``,
    or a document too deep for the decoder's recursion at all."""

    reason = "too_deep"


class OversizedFact(FactDecodeError):
    """Larger than :data:`MAX_FACT_BYTES`."""

    reason = "oversized"


_TOO_DEEP: Final = "nested too deeply to decode (deeper than the decoder's recursion limit)"
_fact_decoder: Final = msgspec.json.Decoder(FactEnvelope)
_header_decoder: Final = msgspec.json.Decoder(EnvelopeHeader)
_json_encoder: Final = msgspec.json.Encoder()
_family_decoder: Final = msgspec.msgpack.Decoder(FamilyState)
_connection_decoder: Final = msgspec.msgpack.Decoder(ConnectionState)
_msgpack_encoder: Final = msgspec.msgpack.Encoder()


def decode_fact(raw: bytes | memoryview) -> FactEnvelope:
    """Decode one fact, or raise a :class:`FactDecodeError` that says why; never any other exception."""
    if len(raw) > MAX_FACT_BYTES:
        raise OversizedFact(f"fact of {len(raw)} bytes exceeds the {MAX_FACT_BYTES}-byte limit")
    try:
        envelope = _fact_decoder.decode(raw)
    except Exception as exc:  # the one slow path: explain, or refuse whatever went wrong
        raise _refusal(raw, exc) from None
    if envelope.v != SCHEMA_VERSION:
        raise UnsupportedSchemaVersion(f"envelope version {envelope.v} (this reducer reads {SCHEMA_VERSION})")
    return envelope


def _refusal(raw: bytes | memoryview, exc: Exception) -> FactDecodeError:
    """The :class:`FactDecodeError` for a failed decode; its own failures are refusals too."""
    try:
        return _explain(raw, exc)
    except RecursionError:  # the header of a document too deep to decode
        return TooDeepFact(_TOO_DEEP)
    except Exception as unexpected:  # a backstop: a decoder failure nothing above foresaw
        return UndecodableFact(f"{type(unexpected).__name__}: {unexpected}")


def _explain(raw: bytes | memoryview, exc: Exception) -> FactDecodeError:
    if isinstance(exc, RecursionError):
        return TooDeepFact(_TOO_DEEP)
    if isinstance(exc, UnicodeDecodeError):  # invalid UTF-8 inside a JSON string
        return UndecodableFact(f"invalid UTF-8: {exc}")
    if not isinstance(exc, msgspec.DecodeError):
        return UndecodableFact(f"{type(exc).__name__}: {exc}")
    try:
        header = _header_decoder.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return UndecodableFact(str(exc))
    if header.v != SCHEMA_VERSION:
        return UnsupportedSchemaVersion(f"envelope version {header.v} (this reducer reads {SCHEMA_VERSION})")
    if isinstance(exc.__cause__, FreeFormTooDeep):
        return TooDeepFact(str(exc))
    if isinstance(exc, msgspec.ValidationError):
        return InvalidFact(str(exc))
    return UndecodableFact(str(exc))


def encode_fact(envelope: FactEnvelope) -> bytes:
    return _json_encoder.encode(envelope)


def fact_from_fields(fields: Mapping[str, Any]) -> FactEnvelope:
    """The typed envelope of one given as plain JSON-able fields (``{"v", "producer", ..., "fact": {...}}``,
    what a publisher assembles from app-server messages), by the processor's own rule: the fields are encoded
    as JSON and read by :func:`decode_fact`, so a fact the processor would refuse raises the same
    :class:`FactDecodeError` (same ``reason``) here.

    Raises ``TypeError``, ``ValueError`` or ``OverflowError`` (not a :class:`FactDecodeError`) when the
    fields cannot be encoded as JSON at all (an object, a lone surrogate)."""
    return decode_fact(_json_encoder.encode(fields))


def encode_row(row: Row) -> bytes:
    return _json_encoder.encode(row)


def row_encoder() -> Callable[[Row], bytes]:
    """:func:`encode_row` as a bound method, for hot loops (no wrapper call per row)."""
    return _json_encoder.encode


def encode_rows(rows: Sequence[Row]) -> list[bytes]:
    encode = _json_encoder.encode
    return [encode(row) for row in rows]


def encode_family(family: FamilyState) -> bytes:
    return _msgpack_encoder.encode(family)


def decode_family(raw: bytes) -> FamilyState:
    return _family_decoder.decode(raw)


def encode_connection(connection: ConnectionState) -> bytes:
    return _msgpack_encoder.encode(connection)


def decode_connection(raw: bytes) -> ConnectionState:
    return _connection_decoder.decode(raw)


ClockValue = int | list[int]
"""The partition clock's changelog value: ``[watermark, run, run minimum]``, or a bare watermark (older)."""
_clock_decoder: Final[msgspec.msgpack.Decoder[ClockValue]] = msgspec.msgpack.Decoder(ClockValue)


def encode_clock(value: ClockValue) -> bytes:
    return _msgpack_encoder.encode(value)


def decode_clock(raw: bytes) -> ClockValue:
    return _clock_decoder.decode(raw)
