"""The rows digest: one SHA-256 over everything the processor's batch path writes for a workload.

A lever (a faster decode, a compiled reducer, fewer objects) must leave the rows byte-identical; the
digest over the bench workload says whether it did. It covers every row (key, value, headers), every
changelog record and every dead letter's key and value, in order, through
:meth:`services.processor.partition.PartitionWorker.reduce_batch` in batches of ``batch`` facts (no Kafka).
Two runs of the same mode (same workload) must print the same digest; ``bench --compare`` shows both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from tools.bench.offline import fake_records, offline_worker


def _feed(hasher: Any, records: Iterable[tuple[Any, ...]]) -> None:
    for record in records:
        for part in record:
            if isinstance(part, list):  # headers: (name, value) pairs
                for name, value in part:
                    hasher.update(b"h%d:%s=%d:%s" % (len(name), name.encode(), len(value), value))
            elif part is None:
                hasher.update(b"-")
            else:
                hasher.update(b"%d:%s" % (len(part), part))
        hasher.update(b"\n")


def rows_digest(values: list[bytes], *, batch: int = 1000, idle_ttl_ms: int = 24 * 3600 * 1000) -> str:
    hasher = hashlib.sha256()
    worker = offline_worker(idle_ttl_ms)
    records = fake_records(values)
    for start in range(0, len(records), batch):
        out = worker.reduce_batch(records[start : start + batch])
        worker.next_offset = out.next_offset or worker.next_offset
        _feed(hasher, out.rows)
        _feed(hasher, out.changelog)
        _feed(hasher, ((letter.key, letter.value) for letter in out.dead_letters))
    return hasher.hexdigest()
