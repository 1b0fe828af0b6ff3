"""Wire schemas: facts in (``facts``, ``protocol``), rows out (``events``), reducer state (``state``),
and the one place that encodes and decodes them (``codec``).

``compiled`` is the switch between the pure-Python reducer and its optional mypyc build (``RA_COMPILED``);
it is applied here, before any module it may compile is looked up."""

from schemas import compiled  # noqa: F401  (first: importing it applies the switch)

# isort: split
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
