"""The oracle: what the pipeline must have produced, computed offline from the facts topic itself.

After a run, the facts topic is read from the start (``read_committed``) and each partition is run, in
offset order and as one batch, through the same containment boundary the processor uses
(:class:`reducer.boundary.PartitionReducer`), exactly as one reducer instance that never failed would:

- expected rows: for the fact at (partition P, offset O), the i-th row it emits has row id
  ``<facts topic>-P-O-i``, record key = the fact's family key, value = the encoded row;
- expected dead letters: the facts the boundary refuses (undecodable bytes, reducer errors, rows or
  state over the record limit, ...), by (P, O), with the boundary's ``reason``;
- expected drops per partition, by reason;
- expected final state per partition: caps, idle expiry and the byte budget applied at the end, then
  ``reducer.snapshot`` -> ``{changelog key: value}``.

This is independent of the service's batching, retries and restores: only the boundary and the order of
the facts in each partition are shared. (Caps, expiry and the budget apply at batch ends; the watermark
only grows, so evicting at batch ends or once at the end gives the same final state for these workloads;
a difference would show up as a V3/V4 failure and be worth a finding.)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from reducer.boundary import PartitionReducer
from reducer.limits import DEFAULT_LIMITS, Limits
from reducer.snapshot import snapshot


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
    drops: dict[int, dict[str, int]] = field(default_factory=dict)
    """partition -> what the rules dropped, by reason (a fact counted as dropped is one of these)."""
    facts_end: dict[int, int] = field(default_factory=dict)
    """partition -> offset after the last fact record (the committed offset the reducer must reach)."""

    @property
    def total_rows(self) -> int:
        return len(self.row_family)


def build_oracle(
    facts_topic: str, partitions: int, records: Sequence[Any], *, idle_ttl_ms: int, limits: Limits = DEFAULT_LIMITS
) -> Oracle:
    """``records``: every record of the facts topic, as ``read_topic`` returns them (any order).

    ``limits``: the bounds the processors of the run were given (``PROCESSOR_*`` settings)."""
    oracle = Oracle(facts_topic=facts_topic, partitions=partitions)
    by_partition: dict[int, list[Any]] = defaultdict(list)
    for record in records:
        by_partition[record.partition].append(record)
    rows: dict[str, list[tuple[str, bytes]]] = defaultdict(list)
    for partition in range(partitions):
        reducer = PartitionReducer(idle_ttl_ms=idle_ttl_ms, limits=limits)
        ordered = sorted(by_partition.get(partition, []), key=lambda r: r.offset)
        prefix = f"{facts_topic}-{partition}-"
        result = reducer.run([record.value for record in ordered])
        oracle.facts += len(ordered)
        for refusal in result.refused:
            record = ordered[refusal.position]
            oracle.dead_letters[(partition, record.offset)] = refusal.reason
            oracle.dead_letter_values[(partition, record.offset)] = record.value or b""
        for row in result.rows:
            row_id = f"{prefix}{ordered[row.position].offset}-{row.nth}"
            rows[row.family].append((row_id, row.value))
            oracle.row_family[row_id] = row.family
        oracle.drops[partition] = dict(reducer.state.drops)
        if ordered:
            oracle.facts_end[partition] = ordered[-1].offset + 1
        oracle.states[partition] = snapshot(reducer.state)
    oracle.rows_by_family = dict(rows)
    return oracle
