"""B8's peer: the same reducer inside a quix-streams application, written the way quix's docs show.

Two applications, each run by ``python -m tools.bench.child quix --app reducer|counter``:

``reducer``
    ``processing_guarantee="exactly-once"``, the family state in quix's RocksDB state store (changelog
    topic on, quix's default), one ``apply(stateful=True, expand=True)`` that decodes the fact, loads the
    fact's family from the state (``state.get``), runs :func:`reducer.reduce`, stores the family back
    (``state.set``) and returns the rows; ``set_headers`` gives each row the processor's ``row-id`` and
    ``event-type`` headers; ``to_topic`` writes them. The state store serializes families with the
    processor's own changelog codec (``RocksDBOptions(dumps=, loads=)``), not quix's JSON default, so the
    state costs what it costs the processor. Differences, all in quix's favour: the partition's
    connection table (written by broadcast ``initialize`` facts, read by every family) lives in process
    memory, not in the store (quix's state is scoped to the message key, so it cannot be shared across
    keys), and there is no idle expiry, no per-family byte budget and no dead-letter topic.
``counter``
    The framework's own ceiling for this shape: a per-key counter in the state store and one output per
    input (the input bytes), exactly-once, same topics, same commit interval.

A monitor thread reports the group's committed offsets of the facts topic (``Consumer.committed`` of a
consumer in the same group that never subscribes) as JSON lines like the processor child's, so the bench
measures both the same way: from the commit of the gated publish to the moment every partition's
committed offset reached its end.

quixstreams is optional (``pip install -e '.[bench]'``); :func:`available` says why B8 is skipped
without it.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any, Final

COMMIT_INTERVAL_S: Final = 0.25
"""quix's ``commit_interval`` for B8 (quix's default is 5 s). Under exactly-once a row is readable only
after the transaction that wrote it commits, so the interval bounds latency from below; 0.25 s keeps
B8's latency comparable with the processor's (which commits as soon as its previous transaction is
done, every ~60 ms under load) and bounds the end-of-run error of a throughput run to 0.25 s."""


def available() -> str | None:
    """``None`` when quixstreams (and its confluent-kafka) are installed; otherwise why B8 is skipped.

    Found without importing them: the bench process itself never runs quix (its children do)."""
    import importlib.util

    missing = [name for name in ("quixstreams", "confluent_kafka") if importlib.util.find_spec(name) is None]
    if missing:
        return f"{' and '.join(missing)} not installed; install the bench extra: pip install -e '.[bench]'"
    return None


def versions() -> dict[str, str]:
    import confluent_kafka
    import quixstreams

    return {
        "quixstreams": quixstreams.__version__,
        "confluent_kafka": confluent_kafka.version(),
        "librdkafka": confluent_kafka.libversion()[0],
    }


def _emit(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def build_reducer_app(application: Any, facts_topic: str, rows_topic: str) -> None:
    """The reducer as a quix StreamingDataFrame pipeline on ``application``."""
    from quixstreams import State, message_context

    from reducer import family_key, initial_state, reduce
    from schemas.codec import decode_fact, encode_row
    from schemas.headers import EVENT_TYPE_HEADER, ROW_ID_HEADER
    from services.processor.partition import event_type_header

    partitions: dict[int, Any] = {}  # the connection table of each input partition (see the module doc)
    facts = application.topic(facts_topic, key_deserializer="bytes", value_deserializer="bytes")
    rows = application.topic(rows_topic, key_serializer="bytes", value_serializer="bytes")

    def reduce_fact(value: bytes, key: bytes | None, timestamp: int, headers: Any, state: State[Any, Any]) -> list[Any]:
        context = message_context()
        partition_state = partitions.get(context.partition)
        if partition_state is None:
            partition_state = partitions[context.partition] = initial_state()
        envelope = decode_fact(value)
        family_id = family_key(envelope)
        families = partition_state.families
        families.clear()
        stored = state.get(b"family") if key is not None else None
        if stored is not None:
            families[family_id] = stored
        _, emitted = reduce(partition_state, envelope)
        family = families.get(family_id)
        if key is not None:
            if family is not None:
                state.set(b"family", family)
            elif stored is not None:
                state.delete(b"family")
        prefix = f"{context.topic}-{context.partition}-{context.offset}-"
        return [
            (
                encode_row(row),
                [(ROW_ID_HEADER, f"{prefix}{nth}".encode()), (EVENT_TYPE_HEADER, event_type_header(type(row)))],
            )
            for nth, row in enumerate(emitted)
        ]

    sdf = application.dataframe(facts)
    sdf = sdf.apply(reduce_fact, stateful=True, expand=True, metadata=True)
    sdf = sdf.set_headers(lambda value, key, timestamp, headers: value[1])
    sdf = sdf.apply(lambda value: value[0])
    sdf.to_topic(rows)


def build_counter_app(application: Any, facts_topic: str, rows_topic: str) -> None:
    """quix's minimal stateful passthrough: a per-key counter, one output (the input) per input.

    The output carries a ``row-id`` header like the reducer's rows, so B3's readers can time it."""
    from quixstreams import State, message_context

    from schemas.headers import ROW_ID_HEADER

    facts = application.topic(facts_topic, key_deserializer="bytes", value_deserializer="bytes")
    rows = application.topic(rows_topic, key_serializer="bytes", value_serializer="bytes")

    def count(value: bytes, state: State[Any, Any]) -> bytes:
        state.set("count", state.get("count", 0) + 1)
        return value

    sdf = application.dataframe(facts)
    sdf = sdf.apply(count, stateful=True)
    sdf = sdf.set_headers(lambda value, key, timestamp, headers: [(ROW_ID_HEADER, _row_id(message_context()))])
    sdf.to_topic(rows)


def _row_id(context: Any) -> bytes:
    return f"{context.topic}-{context.partition}-{context.offset}-0".encode()


def _family_options() -> Any:
    from quixstreams.state.rocksdb import RocksDBOptions

    from schemas.codec import decode_family, encode_family

    return RocksDBOptions(dumps=encode_family, loads=decode_family)


def _monitor(bootstrap: str, group: str, topic: str, partitions: int, stop: threading.Event) -> None:
    """Print ``ready`` once the group is stable with every partition assigned, then committed offsets.

    A broker answers ``NOT_COORDINATOR`` / ``COORDINATOR_LOAD_IN_PROGRESS`` while it loads the group's
    coordinator (a fresh broker, a new group): such answers are retried, like the application does."""
    from confluent_kafka import Consumer, ConsumerGroupState, KafkaException, TopicPartition
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    while not stop.is_set():
        try:
            described = admin.describe_consumer_groups([group])[group].result(timeout=10)
        except KafkaException:
            time.sleep(0.2)
            continue
        assigned = {
            tp.partition
            for member in described.members
            for tp in (member.assignment.topic_partitions if member.assignment else [])
            if tp.topic == topic
        }
        if described.state == ConsumerGroupState.STABLE and assigned == set(range(partitions)):
            break
        time.sleep(0.1)
    _emit({"t": time.monotonic(), "ready": True})
    watcher = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    last: dict[str, int] | None = None
    try:
        while not stop.is_set():
            try:
                committed = watcher.committed(tps, timeout=10)
            except KafkaException:
                time.sleep(0.05)
                continue
            stamp = time.monotonic()
            offsets = {str(tp.partition): max(0, tp.offset) for tp in committed}
            if offsets != last:
                last = offsets
                _emit({"t": stamp, "offsets": offsets})
            time.sleep(0.01)
    finally:
        watcher.close()


def run_child(app: str, bootstrap: str, facts: str, rows: str, group: str, partitions: int, state_dir: str) -> None:
    """The ``quix`` role of :mod:`tools.bench.child`: run one application until ``stop`` (or EOF) on stdin."""
    import logging

    from quixstreams import Application

    options: dict[str, Any] = {}
    if app == "reducer":
        options["rocksdb_options"] = _family_options()
    application = Application(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        processing_guarantee="exactly-once",
        commit_interval=COMMIT_INTERVAL_S,
        state_dir=Path(state_dir),
        loglevel=logging.WARNING,
        **options,
    )
    (build_reducer_app if app == "reducer" else build_counter_app)(application, facts, rows)
    stop = threading.Event()
    monitor = threading.Thread(target=_monitor, args=(bootstrap, group, facts, partitions, stop), daemon=True)

    def commands() -> None:
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        stop.set()
        application.stop()

    threading.Thread(target=commands, daemon=True).start()
    monitor.start()
    application.run()
    stop.set()
    monitor.join(timeout=15)
