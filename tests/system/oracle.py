"""The oracle: what the pipeline must have produced, computed offline from the facts topic itself.

After a run, the facts topic is read from the start (``read_committed``) and each partition is run
through the pure reducer in offset order, exactly as one reducer instance that never failed would:

- expected rows: for the fact at (partition P, offset O), the i-th row ``reduce`` emits has row id
  ``<facts topic>-P-O-i``, record key = the fact's family key, value = ``encode_row(row)``;
- expected dead letters: facts whose bytes do not decode (reason = the decode error's ``reason``) or
  that the reducer raises on (``reducer_error``), by (P, O);
- expected final state per partition: after the last fact, caps enforced and idle / empty families
  expired (``reducer.enforce_caps`` / ``reducer.expire`` with the run's idle TTL), then
  ``reducer.snapshot`` -> ``{changelog key: value}``.

This is independent of the service's batching, retries and restores: only the pure reducer and the
order of the facts in each partition are shared. (Expiry is by fact time and the watermark only
grows, so evicting at batch ends or once at the end gives the same final state for these workloads;
a difference would show up as a V3/V4 failure and be worth a finding.)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from reducer import enforce_caps, expire, family_key, initial_state, reduce, snapshot
from schemas.codec import FactDecodeError, decode_fact, encode_row


@dataclass
class Oracle:
    facts_topic: str
    partitions: int
    rows_by_family: dict[str, list[tuple[str, bytes]]] = field(default_factory=dict)
    """family key -> [(row id, row bytes)] in the order the rows must appear."""
    row_family: dict[str, str] = field(default_factory=dict)
    """row id -> family key."""
    dead_letters: dict[tuple[int, int], str] = field(default_factory=dict)
    """(partition, offset) -> expected ``dlq.reason``."""
    dead_letter_values: dict[tuple[int, int], bytes] = field(default_factory=dict)
    """(partition, offset) -> the fact's bytes (a dead letter carries them, or a prefix and their digest)."""
    states: dict[int, dict[str, bytes]] = field(default_factory=dict)
    """partition -> snapshot of the final state ({changelog key: value})."""
    facts: int = 0
    facts_end: dict[int, int] = field(default_factory=dict)
    """partition -> offset after the last fact record (the committed offset the reducer must reach)."""

    @property
    def total_rows(self) -> int:
        return len(self.row_family)


def build_oracle(facts_topic: str, partitions: int, records: Sequence[Any], *, idle_ttl_ms: int) -> Oracle:
    """``records``: every record of the facts topic, as ``read_topic`` returns them (any order)."""
    oracle = Oracle(facts_topic=facts_topic, partitions=partitions)
    by_partition: dict[int, list[Any]] = defaultdict(list)
    for record in records:
        by_partition[record.partition].append(record)
    rows: dict[str, list[tuple[str, bytes]]] = defaultdict(list)
    for partition in range(partitions):
        state = initial_state()
        ordered = sorted(by_partition.get(partition, []), key=lambda r: r.offset)
        prefix = f"{facts_topic}-{partition}-"
        for record in ordered:
            oracle.facts += 1
            offset = record.offset
            raw = record.value
            try:
                if raw is None:
                    raise FactDecodeError("record has no value (tombstone)")
                envelope = decode_fact(raw)
            except FactDecodeError as error:
                oracle.dead_letters[(partition, offset)] = error.reason
                oracle.dead_letter_values[(partition, offset)] = raw or b""
                continue
            try:
                state, emitted = reduce(state, envelope)
            except Exception:
                oracle.dead_letters[(partition, offset)] = "reducer_error"
                oracle.dead_letter_values[(partition, offset)] = raw
                continue
            if emitted:
                family = family_key(envelope)
                for index, row in enumerate(emitted):
                    row_id = f"{prefix}{offset}-{index}"
                    rows[family].append((row_id, encode_row(row)))
                    oracle.row_family[row_id] = family
        if ordered:
            oracle.facts_end[partition] = ordered[-1].offset + 1
        enforce_caps(state, list(state.families))
        expire(state, idle_ttl_ms)
        oracle.states[partition] = snapshot(state)
    oracle.rows_by_family = dict(rows)
    return oracle
