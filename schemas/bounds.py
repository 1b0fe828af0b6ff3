"""Bounds at the decode edge: every limit a fact must respect to become a ``FactEnvelope``, in one place.

A fact that breaks one of them is refused by :func:`schemas.codec.decode_fact` with a stable reason
(dead-lettered by the processor, reported by ``replay``, refused at ``track_*`` time by the publisher),
never a crash. Each default is far above what a real app-server sends, and small enough that one fact
cannot make a row or a family record approach Kafka's 1 MiB record limit. ``docs/reliability.md``
("Bounds at the decode edge") lists them with their reasons.

* Integers: every ``int`` of the schema is :data:`Int64` (signed 64 bits: what MessagePack, the
  changelog, and the Rust reducer hold). msgspec decodes JSON integers of any size; outside the range
  they are ``invalid``.
* Strings: :data:`Id`, :data:`Name`, :data:`Path`, :data:`Text` (``max_length`` in characters);
  ``invalid`` with msgspec's ``$.path``. Lists copied verbatim into a row are :data:`IdList`; lists of
  which each item becomes a row have at most :data:`MAX_LIST_ITEMS` items too.
* Free-form JSON (``Any`` fields the reducer keeps or tests for presence): :func:`check_free_form`, run
  by the owning struct's ``__post_init__``, bounds depth (``too_deep``), size and integers (``invalid``).
* Nesting: nothing a decoded fact holds nests deeper than :data:`MAX_NESTING_DEPTH`. The typed schema
  nests a fixed number of levels (8; a test keeps it plus :data:`MAX_FREE_FORM_DEPTH` under the bound),
  free-form values are bounded here (``too_deep``), and fields the schema does not declare are skipped
  by msgspec without being built. A document too deep for msgspec's recursion at all (about 1,000 levels
  anywhere, declared or not) raises ``RecursionError`` inside msgspec, refused as ``too_deep``. There
  is no scan of the raw bytes before decoding: counting brackets costs about 80 % of msgspec's whole
  typed decode of a typical fact (instruction counts, docs/reliability.md), and the rules above already
  bound what is built.
* The JSON-RPC ``diff`` of ``turn/diff/updated`` is bounded only by the fact size
  (``schemas.codec.MAX_FACT_BYTES``): a real diff can be large, and the reducer keeps only its line counts.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import msgspec

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
MAX_ID_CHARS: Final = 256
"""Thread, turn, item, request, review, session, connector ids, and the envelope's ``producer``."""
MAX_NAME_CHARS: Final = 1024
"""Names and short labels: models, clients, versions, tools, servers, hosts, plugin and skill names."""
MAX_PATH_CHARS: Final = 4096
"""File paths and repository URLs (Linux ``PATH_MAX``)."""
MAX_TEXT_CHARS: Final = 64 * 1024
"""Free text: error messages, prompts, search queries."""
MAX_LIST_ITEMS: Final = 256
"""Items of a list the reducer copies into a row (receiver thread ids, connector ids), or makes one row of
each (skill invocations, app mentions). Lists the reducer only counts are bounded by the fact size."""
MAX_FREE_FORM_DEPTH: Final = 32
"""Nesting of one free-form JSON value (``[]`` and ``{}`` are depth 1, a scalar 0)."""
MAX_NESTING_DEPTH: Final = 64
"""Nesting of anything a decoded fact holds, from the envelope down (half of serde_json's default 128, so
a row built from it stays readable by a Rust consumer)."""
MAX_FREE_FORM_SIZE: Final = 64 * 1024
"""Size of one free-form JSON value, counted as its compact JSON would be (string characters, about 20
per number, 1 per separator), without encoding it."""

Int64 = Annotated[int, msgspec.Meta(ge=INT64_MIN, le=INT64_MAX)]
Id = Annotated[str, msgspec.Meta(max_length=MAX_ID_CHARS)]
Name = Annotated[str, msgspec.Meta(max_length=MAX_NAME_CHARS)]
Path = Annotated[str, msgspec.Meta(max_length=MAX_PATH_CHARS)]
Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT_CHARS)]
IdList = Annotated[list[Id], msgspec.Meta(max_length=MAX_LIST_ITEMS)]


class FreeFormTooDeep(ValueError):
    """A free-form value nests deeper than :data:`MAX_FREE_FORM_DEPTH`.

    Raised inside a struct's ``__post_init__``: msgspec turns it into a ``ValidationError`` carrying the
    ``$.path`` and keeps this as its ``__cause__``, which ``decode_fact`` reports as ``too_deep``.
    """


_NUMBER_SIZE: Final = 20
"""What one scalar other than a string counts towards :data:`MAX_FREE_FORM_SIZE` (an int64 has 20 digits)."""


def check_free_form(value: Any, name: str) -> None:
    """Refuse a free-form JSON value (as msgspec decodes it) that a row or the changelog must not hold.

    Iterative, and stops as soon as a bound is crossed, so its cost is bounded by the bounds, not by
    the value. Raises :class:`FreeFormTooDeep`, or ``ValueError`` for size and integers; ``name`` is
    the field's wire name, for the message.
    """
    if value is None or (type(value) is str and len(value) <= MAX_FREE_FORM_SIZE):
        return  # the common forms (absent, an enum-like string), without building the walk
    size = 0
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        kind = type(item)
        if kind is dict or kind is list:
            if depth >= MAX_FREE_FORM_DEPTH:
                raise FreeFormTooDeep(f"`{name}` nests deeper than {MAX_FREE_FORM_DEPTH} levels")
            size += 2 + len(item)
        elif kind is str:
            size += 2 + len(item)
        elif kind is int and not INT64_MIN <= item <= INT64_MAX:
            raise ValueError(f"`{name}` holds an integer outside signed 64 bits")
        else:
            size += _NUMBER_SIZE
        if size > MAX_FREE_FORM_SIZE:
            raise ValueError(f"`{name}` is larger than {MAX_FREE_FORM_SIZE} characters of JSON")
        if kind is dict:
            for key, inner in item.items():
                size += len(key) + 2
                pending.append((inner, depth + 1))
        elif kind is list:
            pending.extend((inner, depth + 1) for inner in item)
