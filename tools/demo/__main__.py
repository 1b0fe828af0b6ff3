"""``python -m tools.demo`` (``scripts/demo``): the whole pipeline end to end on this machine.

1. install and start a local Kafka broker (KRaft, 127.0.0.1, fresh data directory);
2. create the topics (``setup-topics``);
3. start a recording analytics endpoint on loopback;
4. start the reducer service and the sender as real subprocesses;
5. publish a seeded, realistic fact stream for many threads through the producer library;
6. wait until the endpoint has every row the offline reducer predicts, showing progress;
7. print a summary (facts sent, rows received by type against the prediction, dead letters,
   consumer lag per group) and shut everything down cleanly (SIGTERM, then the broker).

Exit status 0 when every fact was reduced and every row delivered, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from reducer.boundary import PartitionReducer
from schemas.events import event_type
from services.config import KafkaSettings, ProcessorConfig
from services.lag import LagReader
from services.producer import BROADCAST, FactPublisher
from services.setup_topics import SetupArgs, setup
from tools.demo.endpoint import RecordingEndpoint
from tools.demo.generator import Workload
from tools.localkafka import BrokerHandle, install, start

GROUPS = {"review-analytics-reducer": "facts", "review-analytics-sender": "events"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.demo",
        description="Run the pipeline end to end locally: broker, topics, endpoint, reducer, sender, a fact stream.",
        epilog="Everything runs on 127.0.0.1 and is stopped at the end; logs of the services go to --log-dir.",
    )
    parser.add_argument("--threads", type=int, default=300, help="Thread families to simulate (default 300).")
    parser.add_argument("--seed", type=int, default=7, help="Seed of the fact stream (default 7).")
    parser.add_argument("--partitions", type=int, default=4, help="Partitions of facts/events (default 4).")
    parser.add_argument("--port", type=int, default=19092, help="Broker port (default 19092; controller +1).")
    parser.add_argument("--timeout", type=float, default=180.0, help="Seconds to wait for every row (default 180).")
    parser.add_argument("--log-dir", type=Path, default=None, help="Where service logs go (default: a temp dir).")
    return parser


def _say(message: str) -> None:
    print(message, flush=True)


def _spawn(module: str, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    log = log_path.open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", module], env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
    )


def _stop(process: subprocess.Popen[bytes], name: str) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    _say(f"  {name:8} stopped (exit {process.returncode})")


async def _publish(bootstrap: str, workload: Workload) -> tuple[int, Counter[str], Counter[str]]:
    """Publish the stream; return (facts, facts by kind, predicted rows by type)."""
    publisher = FactPublisher(
        kafka=KafkaSettings(bootstrap_servers=bootstrap), topic="facts", producer_id="demo", buffer_size=10**7
    )
    await publisher.start()
    kinds: Counter[str] = Counter()
    values: list[bytes] = []
    for fact in workload.facts():
        publisher.publish_encoded(BROADCAST if fact.key is None else fact.key.encode(), fact.value)
        kinds[fact.kind] += 1
        values.append(fact.value)
    await publisher.close()
    predicted: Counter[str] = Counter()
    reducer = PartitionReducer(idle_ttl_ms=ProcessorConfig().idle_ttl_ms)  # the processor's path, one partition
    for result in reducer.run_all(values):
        predicted.update(event_type(row.cls) for row in result.rows)
    return len(values), kinds, predicted


async def _lag(bootstrap: str) -> dict[str, int]:
    async with LagReader(KafkaSettings(bootstrap_servers=bootstrap)) as reader:
        groups = await reader.read({group: [topic] for group, topic in GROUPS.items()})
    return {group.group: group.total for group in groups}


async def run(args: argparse.Namespace, bootstrap: str, log_dir: Path) -> int:
    started = time.monotonic()
    processes: list[tuple[str, subprocess.Popen[bytes]]] = []
    endpoint = RecordingEndpoint().start()
    try:
        _say("2. topics:")
        outcome = await setup(
            ProcessorConfig(kafka=KafkaSettings(bootstrap_servers=bootstrap)), SetupArgs(args.partitions)
        )
        for name, what in sorted(outcome.items()):
            _say(f"   {what:8} {name}")
        _say(f"3. endpoint recording at {endpoint.events_url}")
        common = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap}
        reducer = _spawn("services.processor", {**common, "PROCESSOR_METRICS_PORT": "0"}, log_dir / "reducer.log")
        sender = _spawn(
            "services.sender",
            {**common, "SENDER_ENDPOINT_URL": endpoint.url, "SENDER_METRICS_PORT": "0"},
            log_dir / "sender.log",
        )
        processes = [("reducer", reducer), ("sender", sender)]
        _say(f"4. reducer (pid {reducer.pid}) and sender (pid {sender.pid}) started; logs in {log_dir}")
        workload = Workload(seed=args.seed, threads=args.threads)
        sent, kinds, predicted = await _publish(bootstrap, workload)
        expected = sum(predicted.values())
        _say(f"5. published {sent} facts for {args.threads} thread families; the reducer predicts {expected} rows")
        deadline = time.monotonic() + args.timeout
        received = 0
        last_report = 0.0
        while time.monotonic() < deadline:
            received = len(endpoint.unique_accepted_events())
            if received >= expected:
                break
            for name, process in processes:
                if process.poll() is not None:
                    _say(f"   {name} exited early with {process.returncode}; see {log_dir / (name + '.log')}")
                    return 1
            if time.monotonic() - last_report > 2:
                last_report = time.monotonic()
                _say(f"   ... {received}/{expected} rows delivered")
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # let the last offsets commit before reading lag
        lag = await _lag(bootstrap)
        counts = endpoint.event_type_counts()
        _say("6. summary")
        _say(f"   facts sent:          {sent}  ({', '.join(f'{k} {v}' for k, v in kinds.most_common(6))}, ...)")
        _say(f"   rows delivered:      {sum(counts.values())} of {expected} predicted by the offline reducer")
        for event_type in sorted(set(predicted) | set(counts)):
            mark = "ok" if counts.get(event_type, 0) == predicted[event_type] else "MISMATCH"
            _say(f"     {event_type:40} {counts.get(event_type, 0):6}  predicted {predicted[event_type]:6}  {mark}")
        _say(f"   HTTP requests:       {len(endpoint.requests)}")
        for group, value in lag.items():
            _say(f"   lag at end:          {group} = {value}")
        ok = counts == predicted and all(value == 0 for value in lag.values())
        _say(f"   result:              {'every fact reduced, every row delivered' if ok else 'INCOMPLETE'}")
        _say(f"   took {time.monotonic() - started:.1f} s")
        return 0 if ok else 1
    finally:
        _say("7. shutting down")
        for name, process in reversed(processes):
            _stop(process, name)
        endpoint.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    log_dir: Path = args.log_dir or Path(tempfile.mkdtemp(prefix="review-analytics-demo-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix="review-analytics-demo-kafka-"))
    _say("1. Kafka: installing (Maven Central, cached after the first run) and starting on 127.0.0.1 ...")
    install()
    broker: BrokerHandle = start(port=args.port, controller_port=args.port + 1, data_dir=data_dir)
    _say(f"   broker at {broker.bootstrap} (pid {broker.pid})")
    try:
        return asyncio.run(run(args, broker.bootstrap, log_dir))
    finally:
        broker.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
        _say("   broker stopped")


if __name__ == "__main__":
    sys.exit(main())
