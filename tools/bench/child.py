"""Processes the bench starts, one per role: ``python -m tools.bench.child <role> [options]``.

Roles:

``processor``
    The reducer service (:class:`services.processor.service.Processor`, exactly as the service runs it)
    plus a monitor that prints one JSON line on stdout whenever the assignment or a partition's committed
    offset changes: ``{"t": <monotonic>, "ready": bool, "assigned": [...], "offsets": {"p": next}}``.
    ``time.monotonic`` is the system-wide CLOCK_MONOTONIC on Linux, so the bench compares these stamps
    with its own. Logs (JSON, INFO, as in production) go to ``--log``.
``passthrough``
    The B2 baseline: raw aiokafka consume -> produce of the same records, no transactions, no decode;
    ``--mode batch`` (record batches, the ceiling) or ``--mode send`` (one ``send()`` per record).
    Prints ``{"t": ..., "ready": true, "done": <records acknowledged>}`` on change.
``endpoint``
    A minimal HTTP/1.1 keep-alive server for B4 that parses each body as JSON and answers 200
    ``{"accepted": n}``: the smallest honest endpoint, so the sender/httpx ratio shows the client side.
``reader``
    B3's row reader: a ``read_committed`` consumer of every ``events`` partition, from its end at start,
    that stamps (``time.monotonic``) the first time each fact's rows become readable, keyed by the fact's
    ``row-id`` (``<partition>:<offset>``). ``drain`` reads to the current last stable offsets and
    prints ``{"drained": true}``; on ``stop`` it writes the stamps as JSON to ``--out``. In its own
    process so that the load generator never delays a stamp.
``quix``
    B8's peer: a quix-streams application (``--app reducer`` or ``counter``, see :mod:`tools.bench.quixapp`)
    plus a thread printing ``{"t": ..., "ready": true}`` then the group's committed offsets
    (``{"t": ..., "offsets": {"p": next}}``); ``stop`` on stdin (or EOF) stops it.
``memory``
    B5 in a clean process (see :func:`tools.bench.offline.memory_child`); prints one JSON result.
``b1``
    One B1 repeat of the build ``RA_COMPILED`` selects (``bench --variants``; see
    :func:`tools.bench.offline.b1_child`); prints one JSON result.

Commands on stdin (processor and passthrough): ``pause`` / ``resume`` pause and resume the consumer's
assigned partitions (the bench publishes a repeat's facts while paused, and starts its clock at
``resume``), ``prof-on`` starts cProfile, ``prof-off <path>`` stops it and dumps the stats to ``path``,
``gc <n>`` prints the garbage collector's pauses since the previous ``gc`` (``{"gc": ..., "gc_seq": n}``),
``stop`` (or EOF / SIGTERM) shuts down cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO

import msgspec


def _emit(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload, separators=(",", ":")) + "\n")
    sys.stdout.flush()


class _GcWatch:
    """Pauses of the cyclic garbage collector, per generation, since the last ``gc`` command."""

    def __init__(self) -> None:
        self.started = 0.0
        self.stats: dict[int, list[float]] = {}
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
        else:
            self.stats.setdefault(info["generation"], []).append(time.perf_counter() - self.started)

    def take(self) -> dict[str, Any]:
        stats, self.stats = self.stats, {}
        return {
            str(generation): {"count": len(pauses), "total_ms": 1000 * sum(pauses), "max_ms": 1000 * max(pauses)}
            for generation, pauses in sorted(stats.items())
        }


class _Control:
    """stdin commands and SIGTERM -> a stop event; cProfile on demand."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.profiler: cProfile.Profile | None = None
        self.consumer: Any = None
        """The consumer that ``pause`` / ``resume`` act on (all its assigned partitions)."""
        self.gc = _GcWatch()
        self.drain: Callable[[], Any] | None = None
        """What ``drain`` runs (a coroutine function), for the reader."""

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop.set)
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while not self.stop.is_set():
            line = await reader.readline()
            if not line:
                self.stop.set()
                break
            command, _, argument = line.decode().strip().partition(" ")
            if command == "stop":
                self.stop.set()
            elif command == "pause" and self.consumer is not None:
                self.consumer.pause(*self.consumer.assignment())
                _emit({"t": time.monotonic(), "paused": True})
            elif command == "resume" and self.consumer is not None:
                resumed_at = time.monotonic()
                self.consumer.resume(*self.consumer.paused())
                _emit({"t": time.monotonic(), "paused": False, "resumed_at": resumed_at})
            elif command == "drain" and self.drain is not None:
                await self.drain()
                _emit({"t": time.monotonic(), "drained": True})
            elif command == "gc":
                _emit({"t": time.monotonic(), "gc": self.gc.take(), "gc_seq": argument})
            elif command == "prof-on":
                self.profiler = cProfile.Profile()
                self.profiler.enable()
                _emit({"t": time.monotonic(), "profiling": True})
            elif command == "prof-off" and self.profiler is not None:
                self.profiler.disable()
                self.profiler.dump_stats(argument)
                self.profiler = None
                _emit({"t": time.monotonic(), "profiling": False, "path": argument})


async def _monitor(control: _Control, snapshot: Callable[[], dict[str, Any]], interval: float = 0.005) -> None:
    last: dict[str, Any] | None = None
    while not control.stop.is_set():
        current = snapshot()
        if current != last:
            last = current
            _emit({"t": time.monotonic(), **current})
        await asyncio.sleep(interval)


# --------------------------------------------------------------------------------------------------------
# processor
# --------------------------------------------------------------------------------------------------------


async def _processor(config_json: str, log_stream: BinaryIO, client_id: str) -> None:
    from prometheus_client import CollectorRegistry

    from services.config import ProcessorConfig
    from services.gc_tuning import tune_gc
    from services.logging import configure_logging
    from services.metrics import ProcessorMetrics
    from services.processor.service import Processor

    config = msgspec.convert(json.loads(config_json), ProcessorConfig)
    configure_logging("processor", config.log_level, stream=log_stream)
    control = _Control()
    processor = Processor(config, metrics=ProcessorMetrics(CollectorRegistry()), client_id=client_id)
    tune_gc()  # as services.processor.__main__ does

    def snapshot() -> dict[str, Any]:
        assigned = sorted(tp.partition for tp in processor.assigned)
        workers = {tp.partition: worker.next_offset for tp, worker in processor.workers.items()}
        ready = bool(assigned) and set(assigned) == set(workers) and not processor.restoring
        return {"ready": ready, "assigned": assigned, "offsets": {str(p): o for p, o in sorted(workers.items())}}

    run = asyncio.create_task(processor.run(control.stop))

    async def attach_consumer() -> None:
        # The harness pauses and resumes the service's own consumer (gating a repeat); nothing else.
        while getattr(processor, "_consumer", None) is None and not run.done():  # noqa: ASYNC110 - no event to wait on
            await asyncio.sleep(0.005)
        control.consumer = getattr(processor, "_consumer", None)

    await attach_consumer()
    tasks = [asyncio.create_task(control.serve()), asyncio.create_task(_monitor(control, snapshot)), run]
    await control.stop.wait()
    await run
    for task in tasks[:2]:
        task.cancel()
    log_stream.flush()


# --------------------------------------------------------------------------------------------------------
# passthrough (B2 baseline)
# --------------------------------------------------------------------------------------------------------


async def _passthrough(bootstrap: str, source: str, dest: str, max_records: int, mode: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    from services.processor.transaction import by_key_partition, send_batched

    control = _Control()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id="bench-passthrough",
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
    )
    # The processor's transactional producers use the same batching settings (services.processor.service).
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="bench-passthrough",
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        max_batch_size=512 * 1024,
    )
    await consumer.start()
    await producer.start()
    partitions = sorted(await producer.partitions_for(source))
    tps = [TopicPartition(source, p) for p in partitions]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    control.consumer = consumer
    done = 0

    dest_partitions = sorted(await producer.partitions_for(dest))

    async def pump() -> None:
        # "batch": the fastest plain way aiokafka offers, record batches per destination partition (the
        # processor produces the same way, services.processor.transaction); "send": one send() per
        # record, the naive way. Either way acknowledged before the next poll.
        nonlocal done
        while not control.stop.is_set():
            batch = await consumer.getmany(timeout_ms=100, max_records=max_records)
            records = [(record.key, record.value, None) for part in batch.values() for record in part]
            if not records:
                continue
            pending = []
            if mode == "send":
                for key, value, _headers in records:
                    pending.append(await producer.send(dest, value, key=key))
            else:
                for partition, group in by_key_partition(records, dest_partitions).items():
                    pending += await send_batched(producer, dest, partition, group)
            await asyncio.gather(*pending)
            done += len(records)

    tasks = [
        asyncio.create_task(control.serve()),
        asyncio.create_task(_monitor(control, lambda: {"ready": True, "done": done})),
        asyncio.create_task(pump()),
    ]
    await control.stop.wait()
    for task in tasks:
        task.cancel()
    await producer.stop()
    await consumer.stop()


# --------------------------------------------------------------------------------------------------------
# endpoint (B4)
# --------------------------------------------------------------------------------------------------------


class _Batch(msgspec.Struct):
    events: list[msgspec.Raw]


_batch_decoder = msgspec.json.Decoder(_Batch)


class _HttpProtocol(asyncio.Protocol):
    stats: dict[str, int] = {"requests": 0, "events": 0, "bytes": 0}

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            self._answer(head[0], body)

    def _answer(self, request_line: str, body: bytes) -> None:
        assert self.transport is not None
        status, payload = "200 OK", b'{"ok":true}'
        if request_line.startswith("POST "):
            try:
                events = len(_batch_decoder.decode(body).events)
            except msgspec.DecodeError:
                status, payload = "400 Bad Request", b'{"error":"invalid body"}'
            else:
                payload = b'{"accepted":%d}' % events
                self.stats["requests"] += 1
                self.stats["events"] += events
                self.stats["bytes"] += len(body)
        self.transport.write(
            b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (status.encode(), len(payload), payload)
        )


async def _endpoint(port: int) -> None:
    loop = asyncio.get_running_loop()
    control = _Control()
    server = await loop.create_server(_HttpProtocol, "127.0.0.1", port, backlog=256)
    commands = asyncio.create_task(control.serve())
    _emit({"t": time.monotonic(), "ready": True, "port": port})
    await control.stop.wait()
    commands.cancel()
    server.close()
    _emit({"t": time.monotonic(), "stats": _HttpProtocol.stats})


# --------------------------------------------------------------------------------------------------------
# reader (B3)
# --------------------------------------------------------------------------------------------------------


async def _reader(bootstrap: str, topic: str, partitions: list[int], fetch_max_wait_ms: int, out: str) -> None:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from schemas.headers import ROW_ID_HEADER

    control = _Control()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id=f"bench-latency-reader-{fetch_max_wait_ms}",
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        fetch_max_wait_ms=fetch_max_wait_ms,
    )
    await consumer.start()
    tps = [TopicPartition(topic, p) for p in partitions]
    consumer.assign(tps)
    await consumer.seek_to_end(*tps)
    for tp in tps:
        await consumer.position(tp)
    first_seen: dict[str, float] = {}

    async def read() -> None:
        while not control.stop.is_set():
            batch = await consumer.getmany(timeout_ms=20)
            now = time.monotonic()
            for records in batch.values():
                for record in records:
                    for key, value in record.headers:
                        if key == ROW_ID_HEADER:
                            _topic, partition, offset, _index = value.decode().rsplit("-", 3)
                            first_seen.setdefault(f"{partition}:{offset}", now)
                            break

    async def drain() -> None:
        end = await consumer.end_offsets(tps)
        while True:
            positions = [await consumer.position(tp) for tp in tps]
            if all(position >= end[tp] for position, tp in zip(positions, tps, strict=True)):
                return
            await asyncio.sleep(0.01)  # the read task moves the positions

    control.drain = drain
    tasks = [asyncio.create_task(control.serve()), asyncio.create_task(read())]
    _emit({"t": time.monotonic(), "ready": True})
    await control.stop.wait()
    for task in tasks:
        task.cancel()
    with open(out, "w") as sink:  # noqa: ASYNC230 - once, at exit, after reading stopped
        json.dump(first_seen, sink)
    _emit({"t": time.monotonic(), "rows_seen": len(first_seen)})
    await consumer.stop()


# --------------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.child", description=__doc__.split("\n\n")[0])
    roles = parser.add_subparsers(dest="role", required=True)
    proc = roles.add_parser("processor")
    proc.add_argument("--config", required=True, help="ProcessorConfig as JSON")
    proc.add_argument("--log", required=True)
    proc.add_argument("--client-id", default="bench-processor")
    passthrough = roles.add_parser("passthrough")
    passthrough.add_argument("--bootstrap", required=True)
    passthrough.add_argument("--source", required=True)
    passthrough.add_argument("--dest", required=True)
    passthrough.add_argument("--max-records", type=int, default=4000)
    passthrough.add_argument("--mode", choices=("batch", "send"), default="batch", help="record batches or send()")
    endpoint = roles.add_parser("endpoint")
    endpoint.add_argument("--port", type=int, required=True)
    reader = roles.add_parser("reader")
    reader.add_argument("--bootstrap", required=True)
    reader.add_argument("--topic", required=True)
    reader.add_argument("--partitions", required=True, help="comma-separated partition ids to read")
    reader.add_argument("--fetch-max-wait-ms", type=int, required=True)
    reader.add_argument("--out", required=True, help="file for the first-seen stamps (JSON)")
    quix = roles.add_parser("quix")
    quix.add_argument("--app", choices=("reducer", "counter"), required=True)
    quix.add_argument("--bootstrap", required=True)
    quix.add_argument("--facts", required=True)
    quix.add_argument("--rows", required=True)
    quix.add_argument("--group", required=True)
    quix.add_argument("--partitions", type=int, required=True)
    quix.add_argument("--state-dir", required=True)
    memory = roles.add_parser("memory")
    memory.add_argument("--plan", required=True, help="tools.bench.plan.Plan fields as JSON")
    b1 = roles.add_parser("b1")
    b1.add_argument("--values", required=True, help="the workload copy: a msgpack list of the facts' bytes")
    b1.add_argument("--digest", action="store_true", help="also compute the rows digest")
    args = parser.parse_args(argv)
    if args.role == "processor":
        with open(args.log, "ab") as log_stream:
            asyncio.run(_processor(args.config, log_stream, args.client_id))
    elif args.role == "passthrough":
        asyncio.run(_passthrough(args.bootstrap, args.source, args.dest, args.max_records, args.mode))
    elif args.role == "endpoint":
        asyncio.run(_endpoint(args.port))
    elif args.role == "reader":
        partitions = [int(p) for p in args.partitions.split(",")]
        asyncio.run(_reader(args.bootstrap, args.topic, partitions, args.fetch_max_wait_ms, args.out))
    elif args.role == "quix":
        from tools.bench.quixapp import run_child

        run_child(args.app, args.bootstrap, args.facts, args.rows, args.group, args.partitions, args.state_dir)
    elif args.role == "memory":
        from tools.bench.offline import memory_child

        _emit(memory_child(json.loads(args.plan)))
    elif args.role == "b1":
        from tools.bench.offline import b1_child

        _emit(b1_child(args.values, digest=args.digest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
