"""V7's witness: a ``read_committed`` consumer that runs for the whole test, as its own process.

``python -m tests.system.watcher --bootstrap HOST:PORT --topic events --out FILE`` assigns every
partition of the topic (no group), reads from the beginning with ``isolation_level=read_committed``,
and appends one JSON line per record it sees::

    {"t": <unix time>, "p": <partition>, "o": <offset>, "k": "<key>", "id": "<row-id header>", "h": "<sha1 of value>"}

and, about once a second, ``{"t": ..., "pos": {"<partition>": <position>, ...}}`` so the harness knows
how far it has read. SIGTERM flushes and exits 0. It is a separate process so a test that blocks its
own event loop (a broker restart, a large read) never makes the witness miss or reorder anything, and
so that what it saw is exactly what a downstream consumer would have seen *while* the faults happened
(including anything that was visible for a moment and is not in the final topic: that would be a V7
failure even if the final read looks right).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import signal
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError


def _header(headers: Any, name: str) -> str | None:
    for key, value in headers or ():
        if key == name:
            return bytes(value).decode("utf-8", "replace")
    return None


async def watch(bootstrap: str, topic: str, out_path: str, partitions: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        client_id="system-test-watcher",
        request_timeout_ms=30_000,
        retry_backoff_ms=200,
    )
    while True:
        try:
            await consumer.start()
            break
        except KafkaError:
            await asyncio.sleep(0.5)
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    last_pos = 0.0
    with open(out_path, "a", encoding="utf-8") as out:  # noqa: ASYNC230 - opened once, before the loop
        try:
            while not stop.is_set():
                try:
                    batch = await consumer.getmany(timeout_ms=200, max_records=5000)
                except KafkaError as error:  # broker restarts: keep trying, positions are kept
                    out.write(json.dumps({"t": time.time(), "error": repr(error)}) + "\n")
                    await asyncio.sleep(0.5)
                    continue
                now = time.time()
                lines = []
                for tp, records in batch.items():
                    for record in records:
                        lines.append(
                            json.dumps(
                                {
                                    "t": now,
                                    "p": tp.partition,
                                    "o": record.offset,
                                    "k": record.key.decode("utf-8", "replace") if record.key is not None else None,
                                    "id": _header(record.headers, "row-id"),
                                    "h": hashlib.sha1(record.value or b"").hexdigest(),
                                },
                                separators=(",", ":"),
                            )
                        )
                if lines:
                    out.write("\n".join(lines) + "\n")
                if now - last_pos >= 1.0 or stop.is_set():
                    last_pos = now
                    positions = {}
                    for tp in tps:
                        with contextlib.suppress(Exception):
                            positions[str(tp.partition)] = await consumer.position(tp)
                    out.write(json.dumps({"t": now, "pos": positions}) + "\n")
                out.flush()
        finally:
            positions = {}
            for tp in tps:
                with contextlib.suppress(Exception):
                    positions[str(tp.partition)] = await consumer.position(tp)
            out.write(json.dumps({"t": time.time(), "pos": positions, "final": True}) + "\n")
            out.flush()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.stop(), 10)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.system.watcher", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    asyncio.run(watch(args.bootstrap, args.topic, args.out, args.partitions))


if __name__ == "__main__":
    main()
