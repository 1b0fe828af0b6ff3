"""How rows are grouped into HTTP requests: one pure function, no I/O.

This is codex's ``track_event_request_batches`` (``client.rs``) with two additions the Rust client does
not need because it sends a handful of rows per fact: a cap on rows and a cap on body bytes per request.

Rules, applied while walking the rows once, in order:

1. A row for which ``is_isolated(row)`` is true (``codex_accepted_line_fingerprints``, see
   :data:`schemas.events.ISOLATED_EVENT_TYPES`) travels alone: the batch being built is closed first,
   then the row becomes a batch of one. Nothing is ever put in the same batch after it.
2. Any other row is appended to the current batch, unless that would take the batch past ``max_rows``
   rows or its request body past ``max_bytes`` bytes; then the current batch is closed first.
3. A row whose body alone exceeds ``max_bytes`` still becomes a batch (of one): a row is never split or
   dropped here. Whether the endpoint accepts it is the sender's business (it answers 413, the sender
   dead-letters it).

Order is preserved: concatenating the batches gives back the input. The byte cap counts the exact body
the sender sends, :func:`schemas.http.request_body`: ``{"events":[`` + rows joined by ``,`` + ``]}``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from schemas.events import ISOLATED_EVENT_TYPES
from schemas.http import BODY_OVERHEAD, SEPARATOR

__all__ = [
    "is_isolated_event_type",
    "split_batches",
]

T = TypeVar("T")


def is_isolated_event_type(event_type: str) -> bool:
    """True for event types codex sends alone (``should_send_in_isolated_request``)."""
    return event_type in ISOLATED_EVENT_TYPES


def split_batches(
    rows: Iterable[T],
    is_isolated: Callable[[T], bool],
    max_rows: int | None = None,
    max_bytes: int | None = None,
    *,
    size_of: Callable[[T], int] | None = None,
) -> list[list[T]]:
    """Group ``rows`` into request batches, in order (see the module docstring for the rules).

    Args:
        rows: The rows, in the order they must be delivered.
        is_isolated: Whether a row must travel alone in its own request.
        max_rows: At most this many rows per batch; ``None`` for no cap (codex has none).
        max_bytes: At most this many bytes of request body per batch (prefix, rows, commas, suffix);
            ``None`` for no cap. Needs ``size_of``.
        size_of: The encoded size of one row in bytes (``len`` for rows that are ``bytes``).

    Raises:
        ValueError: if a cap is below 1, or ``max_bytes`` is given without ``size_of``.

    >>> split_batches(["a", "b", "ALF", "c"], is_isolated=lambda r: r == "ALF")
    [['a', 'b'], ['ALF'], ['c']]
    """
    if max_rows is not None and max_rows < 1:
        raise ValueError(f"max_rows must be at least 1, got {max_rows}")
    if max_bytes is not None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be at least 1, got {max_bytes}")
        if size_of is None:
            raise ValueError("max_bytes needs size_of, the function that gives a row's encoded size")

    batches: list[list[T]] = []
    current: list[T] = []
    current_bytes = BODY_OVERHEAD  # body size of `current` if it were sent now

    for row in rows:
        if is_isolated(row):
            if current:
                batches.append(current)
                current, current_bytes = [], BODY_OVERHEAD
            batches.append([row])
            continue

        added_bytes = 0
        if max_bytes is not None and size_of is not None:
            added_bytes = size_of(row) + (len(SEPARATOR) if current else 0)
        full = current and (
            (max_rows is not None and len(current) >= max_rows)
            or (max_bytes is not None and current_bytes + added_bytes > max_bytes)
        )
        if full:
            batches.append(current)
            current, current_bytes = [], BODY_OVERHEAD
            if size_of is not None and max_bytes is not None:
                added_bytes = size_of(row)  # first row of the new batch: no comma
        current.append(row)
        current_bytes += added_bytes

    if current:
        batches.append(current)
    return batches
