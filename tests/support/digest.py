"""The refactoring guard: one digest of every row and changelog record the processor's batch path produces
for the bench workload (:mod:`tools.bench.workload`).

Facts are routed as the publisher routes them (a keyed fact to one partition, a key-less broadcast to every
partition), each partition's records go through :meth:`services.processor.partition.PartitionWorker.reduce_batch`
in batches, and the SHA-256 covers, in order, every row's key, value and headers and every changelog record's
key and value. A change that keeps the digest produces the same bytes on ``events`` and on the changelog.

``python -m tests.support.digest [--threads N]`` prints the digest of a larger workload.
"""

from __future__ import annotations

import argparse
import hashlib
import zlib
from collections import Counter
from dataclasses import replace
from typing import Any

from aiokafka.structs import ConsumerRecord

from reducer.boundary import PartitionReducer
from services.processor.partition import PartitionWorker
from tools.bench.plan import SMOKE
from tools.bench.workload import make_copies

PARTITIONS = 3
BATCH = 250
IDLE_TTL_MS = 10 * 60 * 1000
"""Short enough that families of the first copy expire during the second (tombstones in the changelog)."""
GARBAGE_EVERY = 97
"""Every so many facts of a partition, an undecodable record is inserted (dead letters are covered too)."""


def _frame(hasher: Any, *parts: bytes | None) -> None:
    for part in parts:
        if part is None:
            hasher.update(b"\xff")
        else:
            hasher.update(len(part).to_bytes(8, "big"))
            hasher.update(part)


def _with_garbage(values: list[bytes]) -> list[bytes]:
    out: list[bytes] = []
    for index, value in enumerate(values):
        if index % GARBAGE_EVERY == GARBAGE_EVERY - 1:
            out.append(b'{"not": "a fact"')
        out.append(value)
    return out


def workload_digest(*, threads: int = SMOKE.threads, copies: int = 2, counts: Counter[str] | None = None) -> str:
    """SHA-256 (hex) of the rows and changelog records of ``copies`` bench workload copies."""
    plan = replace(SMOKE, threads=threads)
    by_partition: list[list[bytes]] = [[] for _ in range(PARTITIONS)]
    for copy in make_copies(plan, copies):
        for key, value in copy.facts:
            if key is None:
                for values in by_partition:
                    values.append(value)
            else:
                by_partition[zlib.crc32(key) % PARTITIONS].append(value)
    hasher = hashlib.sha256()
    counts = Counter() if counts is None else counts
    for partition, values in enumerate(by_partition):
        worker = PartitionWorker(
            topic="facts",
            partition=partition,
            producer=None,  # the batch path never produces
            reducer=PartitionReducer(idle_ttl_ms=IDLE_TTL_MS),
            next_offset=0,
        )
        records = [
            ConsumerRecord("facts", partition, offset, 0, 0, None, raw, None, 0, len(raw), ())
            for offset, raw in enumerate(_with_garbage(values))
        ]
        for start in range(0, len(records), BATCH):
            out = worker.reduce_batch(records[start : start + BATCH])
            assert out.next_offset is not None
            worker.next_offset = out.next_offset
            for key, row, headers in out.rows:
                _frame(hasher, b"row", key, row, *(part for name, data in headers for part in (name.encode(), data)))
            for name_bytes, record, _ in out.changelog:
                _frame(hasher, b"changelog", name_bytes, record)
            for dead in out.dead_letters:
                _frame(hasher, b"dead", repr(dead).encode())
            counts["rows"] += len(out.rows)
            counts["changelog"] += len(out.changelog)
            counts["tombstones"] += sum(1 for _, record, _ in out.changelog if record is None)
            counts["dead_letters"] += len(out.dead_letters)
    return hasher.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=SMOKE.threads)
    parser.add_argument("--copies", type=int, default=2)
    args = parser.parse_args()
    counts: Counter[str] = Counter()
    print(workload_digest(threads=args.threads, copies=args.copies, counts=counts), dict(counts))


if __name__ == "__main__":
    main()
