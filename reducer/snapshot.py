"""Reducer state as changelog records, and back.

One input partition's :class:`PartitionState` is stored in its changelog partition (a compacted topic)
as one record per family, one per connection and one for the watermark:

=====================  ============================================  ===================================
record key             value                                         tombstone (``None``) means
=====================  ============================================  ===================================
``t:<family key>``     :func:`schemas.codec.encode_family` (msgpack)  the family expired or emptied
``c:<connection key>`` :func:`schemas.codec.encode_connection`       the connection is gone
``w:``                 the clock (:func:`encode_clock`) as msgpack    watermark back to 0
=====================  ============================================  ===================================

``state.drops`` is runtime diagnostics and is never stored. :func:`restore` applies records in order
(later records for a key win, tombstones delete), exactly what a compacted topic read from the start
gives; ``restore(snapshot(s).items())`` equals ``s`` apart from ``drops``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from schemas.codec import decode_clock, decode_connection, decode_family, encode_connection, encode_family
from schemas.codec import encode_clock as encode_clock_value
from schemas.state import PartitionState

__all__ = [
    "CONNECTION_PREFIX",
    "FAMILY_PREFIX",
    "WATERMARK_KEY",
    "changelog_records",
    "encode_clock",
    "keep_latest",
    "restore",
    "restore_values",
    "snapshot",
]

FAMILY_PREFIX: Final = "t:"
CONNECTION_PREFIX: Final = "c:"
WATERMARK_KEY: Final = "w:"

ChangelogRecord = tuple[str, bytes | None]



def encode_clock(state: PartitionState) -> bytes:
    """The ``w:`` value: the watermark as an int, or ``[watermark, ahead_run, ahead_min_ms]`` while a run of
    facts too far ahead is open (``reducer.clock``). Changelogs written before the run existed hold the int."""
    if state.ahead_run:
        return encode_clock_value([state.watermark_ms, state.ahead_run, state.ahead_min_ms])
    return encode_clock_value(state.watermark_ms)


def _decode_clock(state: PartitionState, value: bytes | None) -> None:
    decoded = 0 if value is None else decode_clock(value)
    if isinstance(decoded, int):
        state.watermark_ms, state.ahead_run, state.ahead_min_ms = decoded, 0, 0
    elif len(decoded) == 3:
        state.watermark_ms, state.ahead_run, state.ahead_min_ms = decoded
    else:
        raise ValueError(f"clock record {decoded!r} is neither an int nor [watermark, run, run minimum]")


def snapshot(state: PartitionState) -> dict[str, bytes]:
    """Every record needed to rebuild ``state``: families, then connections, then the watermark."""
    records: dict[str, bytes] = {FAMILY_PREFIX + key: encode_family(family) for key, family in state.families.items()}
    for key, connection in state.connections.items():
        records[CONNECTION_PREFIX + key] = encode_connection(connection)
    records[WATERMARK_KEY] = encode_clock(state)
    return records


def changelog_records(
    state: PartitionState, family_keys: Iterable[str], connection_keys: Iterable[str]
) -> list[ChangelogRecord]:
    """Records for the changed subset: current value, or ``None`` for keys no longer in ``state``.

    The watermark record is always appended last, so a restore sees the watermark of the last batch.
    """
    records: list[ChangelogRecord] = []
    for key in family_keys:
        family = state.families.get(key)
        records.append((FAMILY_PREFIX + key, None if family is None else encode_family(family)))
    for key in connection_keys:
        connection = state.connections.get(key)
        records.append((CONNECTION_PREFIX + key, None if connection is None else encode_connection(connection)))
    records.append((WATERMARK_KEY, encode_clock(state)))
    return records


def restore(records: Iterable[tuple[str, bytes | None]]) -> PartitionState:
    """Rebuild a partition's state from its changelog records, read in offset order.

    Raises ``ValueError`` on a key with an unknown prefix (a changelog written by a newer version)
    and ``msgspec.DecodeError`` on a value that does not decode: a state we cannot read must stop the
    restore rather than silently lose families.
    """
    return restore_values(records)[0]


def keep_latest(latest: dict[str, bytes | None], key: str, value: bytes | None) -> None:
    """Fold one changelog record into ``latest`` as compaction would: the last value of a key wins.

    A reader folds records as they arrive, so what it holds is bounded by the keys, not by the length of
    the log (a changelog's active segment is never compacted). Folding an already folded mapping again
    changes nothing, so :func:`restore_values` accepts either. ``ValueError`` on a key with an unknown prefix.
    """
    if not key.startswith((FAMILY_PREFIX, CONNECTION_PREFIX)) and key != WATERMARK_KEY:
        raise ValueError(f"changelog record key {key!r} has no known prefix ('t:', 'c:', 'w:')")
    if value is None:
        latest.pop(key, None)  # a key written again after its tombstone comes last, as a new one
    latest[key] = value


def restore_values(records: Iterable[tuple[str, bytes | None]]) -> tuple[PartitionState, dict[str, bytes]]:
    """:func:`restore`, also returning the live records' values (``{changelog key: value}``, no tombstones).

    Only the last record of each key is decoded, as a compacted topic read from the start would hold it.
    """
    latest: dict[str, bytes | None] = {}
    for key, value in records:
        keep_latest(latest, key, value)
    state = PartitionState()
    families = state.families
    connections = state.connections
    values: dict[str, bytes] = {}
    for key, value in latest.items():
        if key == WATERMARK_KEY:
            _decode_clock(state, value)
            continue
        if value is None:
            continue
        values[key] = value
        if key.startswith(FAMILY_PREFIX):
            families[key[len(FAMILY_PREFIX) :]] = decode_family(value)
        else:
            connections[key[len(CONNECTION_PREFIX) :]] = decode_connection(value)
    return state, values
