"""Reducer state as changelog records, and back.

One input partition's :class:`PartitionState` is stored in its changelog partition (a compacted topic)
as one record per family, one per connection and one for the watermark:

=====================  ============================================  ===================================
record key             value                                         tombstone (``None``) means
=====================  ============================================  ===================================
``t:<family key>``     :func:`schemas.codec.encode_family` (msgpack)  the family expired or emptied
``c:<connection key>`` :func:`schemas.codec.encode_connection`       the connection is gone
``w:``                 the watermark (``observed_at_ms``) as msgpack  watermark back to 0
=====================  ============================================  ===================================

``state.drops`` is runtime diagnostics and is never stored. :func:`restore` applies records in order
(later records for a key win, tombstones delete), exactly what a compacted topic read from the start
gives; ``restore(snapshot(s).items())`` equals ``s`` apart from ``drops``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import msgspec

from schemas.codec import decode_connection, decode_family, encode_connection, encode_family
from schemas.state import PartitionState

__all__ = [
    "CONNECTION_PREFIX",
    "FAMILY_PREFIX",
    "WATERMARK_KEY",
    "changelog_records",
    "restore",
    "snapshot",
]

FAMILY_PREFIX: Final = "t:"
CONNECTION_PREFIX: Final = "c:"
WATERMARK_KEY: Final = "w:"

ChangelogRecord = tuple[str, bytes | None]

_watermark_encoder: Final = msgspec.msgpack.Encoder()
_watermark_decoder: Final = msgspec.msgpack.Decoder(int)


def snapshot(state: PartitionState) -> dict[str, bytes]:
    """Every record needed to rebuild ``state``: families, then connections, then the watermark."""
    records: dict[str, bytes] = {FAMILY_PREFIX + key: encode_family(family) for key, family in state.families.items()}
    for key, connection in state.connections.items():
        records[CONNECTION_PREFIX + key] = encode_connection(connection)
    records[WATERMARK_KEY] = _watermark_encoder.encode(state.watermark_ms)
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
    records.append((WATERMARK_KEY, _watermark_encoder.encode(state.watermark_ms)))
    return records


def restore(records: Iterable[tuple[str, bytes | None]]) -> PartitionState:
    """Rebuild a partition's state from its changelog records, read in offset order.

    Raises ``ValueError`` on a key with an unknown prefix (a changelog written by a newer version)
    and ``msgspec.DecodeError`` on a value that does not decode: a state we cannot read must stop the
    restore rather than silently lose families.
    """
    state = PartitionState()
    families = state.families
    connections = state.connections
    for key, value in records:
        if key.startswith(FAMILY_PREFIX):
            name = key[len(FAMILY_PREFIX) :]
            if value is None:
                families.pop(name, None)
            else:
                families[name] = decode_family(value)
        elif key.startswith(CONNECTION_PREFIX):
            name = key[len(CONNECTION_PREFIX) :]
            if value is None:
                connections.pop(name, None)
            else:
                connections[name] = decode_connection(value)
        elif key == WATERMARK_KEY:
            state.watermark_ms = 0 if value is None else _watermark_decoder.decode(value)
        else:
            raise ValueError(f"changelog record key {key!r} has no known prefix ('t:', 'c:', 'w:')")
    return state
