"""Wire schemas: facts in (``facts``, ``protocol``), rows out (``events``), reducer state (``state``),
and the one place that encodes and decodes them (``codec``)."""

from schemas.codec import (
    FactDecodeError,
    InvalidFact,
    OversizedFact,
    TooDeepFact,
    UndecodableFact,
    UnsupportedSchemaVersion,
    decode_fact,
    encode_fact,
    encode_row,
    encode_rows,
)
from schemas.events import ISOLATED_EVENT_TYPES, Row
from schemas.facts import SCHEMA_VERSION, FactEnvelope

__all__ = [
    "ISOLATED_EVENT_TYPES",
    "SCHEMA_VERSION",
    "FactDecodeError",
    "FactEnvelope",
    "InvalidFact",
    "OversizedFact",
    "Row",
    "TooDeepFact",
    "UndecodableFact",
    "UnsupportedSchemaVersion",
    "decode_fact",
    "encode_fact",
    "encode_row",
    "encode_rows",
]
