"""The sender against the real broker and the real loopback endpoint: delivery, retries, dead letters, commits.

Input rows are produced to a fresh ``events`` topic with a plain aiokafka producer, following the record
contract the reducer writes: key = thread id, value = the row's JSON, headers ``row-id`` and ``event-type``.
Each row carries ``event_params.seq`` (its index in the test's input) so tests can tell rows apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from services.config import KafkaSettings, Secret, SenderConfig
from services.dlq_replay import EXIT_OK
from services.dlq_replay import main as replay_main
from services.errors import ConfigError
from services.lag import LagReader
from services.sender.client import EXCERPT_LIMIT, idempotency_key
from tests.support.kafka import create_topics, random_topic_name, wait_until
from tests.support.pipeline import RunningSender
from tests.support.pipeline import running_sender as start_sender
from tools.demo.endpoint import RecordingEndpoint

pytestmark = pytest.mark.kafka

TOKEN = "tok-integration-Hh42"
ALF = "codex_accepted_line_fingerprints"
REVIEW = "codex_review_event"


# --------------------------------------------------------------------------------------------------------
# Input rows
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputRow:
    seq: int
    partition: int
    thread_id: str
    event_type: str = REVIEW
    padding: int = 0

    @property
    def row_id(self) -> str:
        return f"facts-{self.partition}-{self.seq}-0"

    @property
    def value(self) -> bytes:
        params: dict[str, object] = {"thread_id": self.thread_id, "seq": self.seq}
        if self.padding:
            params["padding"] = "x" * self.padding
        return msgspec.json.encode({"event_type": self.event_type, "event_params": params})


def rows_over(partitions: int, count: int, *, alf_every: int = 0) -> list[InputRow]:
    """``count`` rows spread round-robin over ``partitions``; every ``alf_every``-th is accepted-line fingerprints."""
    return [
        InputRow(
            seq=i,
            partition=i % partitions,
            thread_id=f"thread-{i % partitions}",
            event_type=ALF if alf_every and i % alf_every == alf_every - 1 else REVIEW,
        )
        for i in range(count)
    ]


async def produce(bootstrap: str, topic: str, rows: Sequence[InputRow]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for row in rows:
            await producer.send_and_wait(
                topic,
                value=row.value,
                key=row.thread_id.encode(),
                partition=row.partition,
                headers=[("row-id", row.row_id.encode()), ("event-type", row.event_type.encode())],
            )
    finally:
        await producer.stop()


def seqs(events: Sequence[dict[str, object]]) -> list[int]:
    return [int(event["event_params"]["seq"]) for event in events]  # type: ignore[index]


# --------------------------------------------------------------------------------------------------------
# A sender under test
# --------------------------------------------------------------------------------------------------------


@dataclass
class Topics:
    events: str
    dlq: str
    group: str
    partitions: int


async def make_topics(bootstrap: str, name: str, partitions: int) -> Topics:
    events, dlq = random_topic_name(f"{name}-events"), random_topic_name(f"{name}-dlq")
    await create_topics(bootstrap, [events], partitions)
    await create_topics(bootstrap, [dlq], 1)
    return Topics(events=events, dlq=dlq, group=random_topic_name(f"{name}-group"), partitions=partitions)


@contextlib.asynccontextmanager
async def running_sender(
    bootstrap: str, topics: Topics, endpoint: RecordingEndpoint, **overrides: object
) -> AsyncIterator[RunningSender]:
    """A Sender with real clients against ``endpoint``, running until the block ends."""
    settings: dict[str, object] = {
        "kafka": KafkaSettings(bootstrap_servers=bootstrap),
        "events_topic": topics.events,
        "dlq_topic": topics.dlq,
        "group_id": topics.group,
        "endpoint_url": endpoint.url,
        "auth_token": Secret(TOKEN),
        "allow_token_over_http": True,  # the recording endpoint is plain http on loopback
        "account_id": "acct-1",
        "request_timeout_s": 2.0,
        "backoff_base_s": 0.01,
        "backoff_cap_s": 0.1,
        "retry_after_cap_s": 0.2,
        "metrics_port": 0,
    }
    config = SenderConfig(**(settings | overrides))  # type: ignore[arg-type]
    async with start_sender(config) as running:
        yield running


async def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int | None]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    found = {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}
    return {p: (found.get(p) if found.get(p, -1) >= 0 else None) for p in range(partitions)}


async def progress(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    """Rows committed past per partition (0 when the group committed nothing, or only a tail-batch
    announcement at the first offset, which moves nothing)."""
    return {p: offset or 0 for p, offset in (await committed(bootstrap, group, topic, partitions)).items()}


def expected_ends(rows: Sequence[InputRow], partitions: int) -> dict[int, int | None]:
    """Committed offset per partition once everything is done (no transactions: offsets are contiguous)."""
    return {p: sum(1 for r in rows if r.partition == p) or None for p in range(partitions)}


async def read_all(bootstrap: str, topic: str, count: int) -> list[object]:
    """The first ``count`` records of ``topic`` (fails after 20 s if there are fewer)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    records: list[object] = []
    try:
        async with asyncio.timeout(20):
            while len(records) < count:
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    records.extend(batch)
    finally:
        await consumer.stop()
    return records


def sample_sum(registry: CollectorRegistry, name: str) -> float:
    """Sum of a metric's samples over all label values."""
    return sum(sample.value for metric in registry.collect() for sample in metric.samples if sample.name == name)


async def replay_dlq(*argv: str) -> dict[str, Any]:
    """``replay-dlq`` (``services.dlq_replay``) as an operator runs it; its JSON counts."""
    out = io.StringIO()
    code = await asyncio.to_thread(replay_main, [*argv, "--json"], env={}, out=out)
    assert code == EXIT_OK
    counts: dict[str, Any] = json.loads(out.getvalue())
    return counts


def headers_of(record: object) -> dict[str, str]:
    return {key: value.decode() for key, value in record.headers}  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------------------


async def test_sender_delivers_every_row_in_partition_order_batched_and_commits_past_the_last_row(
    kafka_bootstrap: str, recording_endpoint: RecordingEndpoint
) -> None:
    topics = await make_topics(kafka_bootstrap, "delivers-in-order", partitions=3)
    rows = rows_over(3, 90, alf_every=10)
    await produce(kafka_bootstrap, topics.events, rows)

    with capture_logs() as logs:
        async with running_sender(kafka_bootstrap, topics, recording_endpoint, max_batch_rows=7) as running:

            async def everything_committed() -> bool:
                return await committed(kafka_bootstrap, topics.group, topics.events, 3) == expected_ends(rows, 3)

            await wait_until(everything_committed, timeout=30, message="offsets committed past every row")
            assert running.sender.is_ready()

    events = recording_endpoint.accepted_events()
    assert sorted(seqs(events)) == [row.seq for row in rows]  # each row exactly once, none lost
    for partition in range(3):  # order per partition is the order on the topic
        delivered = [s for s in seqs(events) if s % 3 == partition]
        assert delivered == sorted(delivered)

    requests = recording_endpoint.requests
    by_seq = {row.seq: row for row in rows}
    for request in requests:
        batch = [by_seq[s] for s in seqs(request.events)]
        assert len(batch) <= 7
        assert len({row.partition for row in batch}) == 1
        if any(row.event_type == ALF for row in batch):
            assert len(batch) == 1  # accepted-line fingerprints travel alone
        assert request.idempotency_key == idempotency_key(row.row_id for row in batch)
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert request.headers["chatgpt-account-id"] == "acct-1"
        assert request.headers["content-type"] == "application/json"

    sent = [entry for entry in logs if entry["event"] == "batch_sent"]
    assert len(sent) == len(requests)
    assert all({"rows", "bytes", "status", "attempt", "latency_ms"} <= entry.keys() for entry in sent)
    assert TOKEN not in repr(logs)
    assert running.registry.get_sample_value("review_analytics_sender_rows_delivered_total") == len(rows)
    # Committed past the transaction markers that follow the last rows: a caught-up group has lag 0.
    async with LagReader(KafkaSettings(bootstrap_servers=kafka_bootstrap)) as reader:
        (group,) = await reader.read({topics.group: [topics.events]})
    assert group.total == 0, group.partitions


async def test_many_small_chunks_fetched_while_earlier_ones_are_delivered_keep_order_and_commit_everything(
    kafka_bootstrap: str, recording_endpoint: RecordingEndpoint
) -> None:
    # Tiny polls: each partition's next chunk is fetched (and held) while its worker delivers the current one.
    topics = await make_topics(kafka_bootstrap, "prefetched-chunks", partitions=2)
    rows = rows_over(2, 240, alf_every=9)
    await produce(kafka_bootstrap, topics.events, rows)

    async with running_sender(kafka_bootstrap, topics, recording_endpoint, max_poll_records=7, max_batch_rows=3):

        async def everything_committed() -> bool:
            return await committed(kafka_bootstrap, topics.group, topics.events, 2) == expected_ends(rows, 2)

        await wait_until(everything_committed, timeout=30, message="offsets committed past every row")

    events = recording_endpoint.accepted_events()
    assert sorted(seqs(events)) == [row.seq for row in rows]  # each row exactly once, none lost
    for partition in range(2):
        delivered = [s for s in seqs(events) if s % 2 == partition]
        assert delivered == sorted(delivered)
    for request in recording_endpoint.requests:
        assert len({s % 2 for s in seqs(request.events)}) == 1
        assert len(request.events) <= 3


async def test_sender_sends_row_bytes_unchanged_in_the_request_body(
    kafka_bootstrap: str, recording_endpoint: RecordingEndpoint
) -> None:
    topics = await make_topics(kafka_bootstrap, "bytes-unchanged", partitions=1)
    odd_json = b'{"event_type": "codex_review_event",  "event_params": {"thread_id": "t", "seq": 0, "f": 1.50}}'
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            topics.events, value=odd_json, key=b"t", headers=[("row-id", b"r0"), ("event-type", REVIEW.encode())]
        )
    finally:
        await producer.stop()
    async with running_sender(kafka_bootstrap, topics, recording_endpoint):
        await wait_until(lambda: bool(recording_endpoint.accepted_events()), timeout=30)

    [request] = recording_endpoint.requests
    assert request.body_bytes == len(b'{"events":[' + odd_json + b"]}")  # re-encoding would drop the spaces
    assert request.events[0]["event_params"]["f"] == 1.5


async def test_sender_retries_through_failures_and_each_row_reaches_the_endpoint_once_after_dedup(
    kafka_bootstrap: str, recording_endpoint: RecordingEndpoint
) -> None:
    topics = await make_topics(kafka_bootstrap, "retries-then-delivers", partitions=2)
    rows = rows_over(2, 40)
    recording_endpoint.fail_first(4, status=503)
    recording_endpoint.throttle(1, retry_after="1")
    recording_endpoint.reset_connections(1)
    recording_endpoint.stall(1.5, count=1)  # accepted, but answered after the client's timeout
    recording_endpoint.fail_first(1, status=408)
    await produce(kafka_bootstrap, topics.events, rows)

    async with running_sender(kafka_bootstrap, topics, recording_endpoint, request_timeout_s=0.5) as running:

        async def everything_committed() -> bool:
            return await committed(kafka_bootstrap, topics.group, topics.events, 2) == expected_ends(rows, 2)

        await wait_until(everything_committed, timeout=60, message="offsets committed past every row")

    statuses = [request.status for request in recording_endpoint.requests]
    assert statuses.count(503) == 4 and 429 in statuses and 408 in statuses and None in statuses
    assert len(recording_endpoint.accepted_events()) > len(rows)  # the stalled batch was accepted twice
    assert sorted(seqs(recording_endpoint.unique_accepted_events())) == [row.seq for row in rows]
    assert sample_sum(running.registry, "review_analytics_sender_retries_total") >= 8


async def test_rows_answered_400_go_to_the_dlq_with_status_and_excerpt_and_the_rest_are_delivered(
    kafka_bootstrap: str, recording_endpoint: RecordingEndpoint
) -> None:
    topics = await make_topics(kafka_bootstrap, "dlq-400", partitions=2)
    rows = [
        InputRow(seq=i, partition=i % 2, thread_id="bad-thread" if i in (3, 10, 11, 28) else f"thread-{i % 2}")
        for i in range(30)
    ]
    bad = [row for row in rows if row.thread_id == "bad-thread"]
    recording_endpoint.reject_rows(400, thread_ids={"bad-thread"})
    await produce(kafka_bootstrap, topics.events, rows)

    async with running_sender(kafka_bootstrap, topics, recording_endpoint, max_batch_rows=8) as running:

        async def everything_committed() -> bool:
            return await committed(kafka_bootstrap, topics.group, topics.events, 2) == expected_ends(rows, 2)

        await wait_until(everything_committed, timeout=60, message="offsets committed past every row")

    delivered = seqs(recording_endpoint.unique_accepted_events())
    dead = await read_all(kafka_bootstrap, topics.dlq, len(bad))
    assert sorted(delivered) == [row.seq for row in rows if row not in bad]
    assert len(delivered) + len(dead) == len(rows)

    by_row_id = {row.row_id: row for row in rows}
    dead_rows = []
    for record in dead:
        headers = headers_of(record)
        row = by_row_id[headers["row-id"]]
        dead_rows.append(row)
        assert headers["dlq.reason"] == "rejected"
        assert headers["dlq.http.status"] == "400"
        assert 0 < len(headers["dlq.http.response"].encode()) <= EXCERPT_LIMIT
        assert headers["dlq.source.topic"] == topics.events
        assert int(headers["dlq.source.partition"]) == row.partition
        earlier = sum(1 for r in rows if r.partition == row.partition and r.seq < row.seq)
        assert int(headers["dlq.source.offset"]) == earlier
        assert headers["event-type"] == REVIEW
        assert record.value == row.value  # type: ignore[attr-defined]
        assert record.key == b"bad-thread"  # type: ignore[attr-defined]
    assert sorted(r.seq for r in dead_rows) == [row.seq for row in bad]
    assert running.registry.get_sample_value(
        "review_analytics_sender_rows_dead_lettered_total", {"reason": "rejected"}
    ) == len(bad)


async def test_rows_replayed_from_events_dlq_keep_their_row_ids_headers_and_idempotency_keys(
    kafka_bootstrap: str, recording_endpoint: RecordingEndpoint
) -> None:
    topics = await make_topics(kafka_bootstrap, "dlq-round-trip", partitions=1)
    rows = [InputRow(seq=i, partition=0, thread_id="bad" if i in (1, 4) else "good") for i in range(6)]
    bad = [row for row in rows if row.thread_id == "bad"]
    recording_endpoint.reject_rows(400, thread_ids={"bad"})
    await produce(kafka_bootstrap, topics.events, rows)
    async with running_sender(kafka_bootstrap, topics, recording_endpoint, max_batch_rows=1):

        async def everything_committed() -> bool:
            return await committed(kafka_bootstrap, topics.group, topics.events, 1) == expected_ends(rows, 1)

        await wait_until(everything_committed, timeout=60, message="offsets committed past every row")
    assert len(await read_all(kafka_bootstrap, topics.dlq, len(bad))) == len(bad)

    recording_endpoint.clear_faults()  # the endpoint is fixed: the dead letters can go back
    common = ["--dlq-topic", topics.dlq, "--to-topic", topics.events, "--kafka-bootstrap-servers", kafka_bootstrap]
    dry = await replay_dlq(*common, "--dry-run")
    assert (dry["scanned"], dry["matched"], dry["replayed"], dry["by_reason"]) == (2, 2, 0, {"rejected": 2})
    done = await replay_dlq(*common, "--reason", "rejected")
    assert (done["replayed"], done["by_reason"]) == (2, {"rejected": 2})

    replayed = (await read_all(kafka_bootstrap, topics.events, len(rows) + len(bad)))[len(rows) :]
    assert [(r.key, r.value, r.headers) for r in replayed] == [  # type: ignore[attr-defined]
        (b"bad", row.value, (("row-id", row.row_id.encode()), ("event-type", row.event_type.encode()))) for row in bad
    ]
    first_requests = len(recording_endpoint.requests)
    async with running_sender(kafka_bootstrap, topics, recording_endpoint, max_batch_rows=1):

        async def replayed_committed() -> bool:
            return await committed(kafka_bootstrap, topics.group, topics.events, 1) == {0: len(rows) + len(bad)}

        await wait_until(replayed_committed, timeout=60, message="offsets committed past the replayed rows")
    second = [request for request in recording_endpoint.requests[first_requests:] if request.accepted]
    assert [(seqs(request.events), request.idempotency_key) for request in second] == [
        ([row.seq], idempotency_key([row.row_id])) for row in bad
    ]


async def test_a_refused_batch_is_retried_once_then_bisected_so_only_the_refused_row_is_dead_lettered(
    kafka_bootstrap: str, recording_endpoint: RecordingEndpoint
) -> None:
    topics = await make_topics(kafka_bootstrap, "retry-once-bisect", partitions=1)
    rows = [InputRow(seq=i, partition=0, thread_id="bad" if i == 5 else "good") for i in range(8)]
    recording_endpoint.reject_rows(422, thread_ids={"bad"})
    await produce(kafka_bootstrap, topics.events, rows)  # all on the topic before the sender fetches: one chunk

    async with running_sender(kafka_bootstrap, topics, recording_endpoint, max_batch_rows=8):

        async def everything_committed() -> bool:
            return await committed(kafka_bootstrap, topics.group, topics.events, 1) == {0: 8}

        await wait_until(everything_committed, timeout=60, message="offsets committed past every row")

    assert [(seqs(r.events), r.status) for r in recording_endpoint.requests] == [
        ([0, 1, 2, 3, 4, 5, 6, 7], 422),
        ([0, 1, 2, 3, 4, 5, 6, 7], 422),  # retried once as a whole
        ([0, 1, 2, 3], 200),  # then bisected; halves are not retried again
        ([4, 5, 6, 7], 422),
        ([4, 5], 422),
        ([4], 200),
        ([5], 422),  # the refused row, alone: dead-lettered
        ([6, 7], 200),
    ]
    [dead] = await read_all(kafka_bootstrap, topics.dlq, 1)
    assert (headers_of(dead)["row-id"], headers_of(dead)["dlq.http.status"]) == (rows[5].row_id, "422")


async def test_a_413_for_big_batches_splits_them_in_halves_until_they_fit(
    kafka_bootstrap: str, recording_endpoint: RecordingEndpoint
) -> None:
    topics = await make_topics(kafka_bootstrap, "split-413", partitions=1)
    rows = rows_over(1, 20)
    recording_endpoint.reject_batches_larger_than(max_rows=3)
    await produce(kafka_bootstrap, topics.events, rows)

    async with running_sender(kafka_bootstrap, topics, recording_endpoint, max_batch_rows=16):

        async def everything_committed() -> bool:
            return await committed(kafka_bootstrap, topics.group, topics.events, 1) == expected_ends(rows, 1)

        await wait_until(everything_committed, timeout=60, message="offsets committed past every row")

    accepted = [r for r in recording_endpoint.requests if r.accepted]
    assert seqs(recording_endpoint.unique_accepted_events()) == [row.seq for row in rows]  # in order, once each
    assert all(len(r.events) <= 3 for r in accepted)
    assert [len(r.events) for r in recording_endpoint.requests if r.status == 413][:2] == [16, 8]


async def test_a_single_row_too_large_for_the_endpoint_is_dead_lettered_as_payload_too_large(
    kafka_bootstrap: str, recording_endpoint: RecordingEndpoint
) -> None:
    topics = await make_topics(kafka_bootstrap, "single-413", partitions=1)
    rows = [InputRow(seq=i, partition=0, thread_id="t", padding=5000 if i == 2 else 0) for i in range(5)]
    recording_endpoint.reject_batches_larger_than(max_bytes=4000)
    await produce(kafka_bootstrap, topics.events, rows)

    async with running_sender(kafka_bootstrap, topics, recording_endpoint):

        async def everything_committed() -> bool:
            return await committed(kafka_bootstrap, topics.group, topics.events, 1) == expected_ends(rows, 1)

        await wait_until(everything_committed, timeout=60, message="offsets committed past every row")

    [dead] = await read_all(kafka_bootstrap, topics.dlq, 1)
    assert headers_of(dead)["dlq.reason"] == "payload_too_large"
    assert headers_of(dead)["dlq.http.status"] == "413"
    assert headers_of(dead)["row-id"] == rows[2].row_id
    assert seqs(recording_endpoint.unique_accepted_events()) == [0, 1, 3, 4]


async def test_a_record_breaking_the_topic_contract_is_dead_lettered_without_being_sent(
    kafka_bootstrap: str, recording_endpoint: RecordingEndpoint
) -> None:
    topics = await make_topics(kafka_bootstrap, "malformed", partitions=1)
    good = rows_over(1, 2)
    await produce(kafka_bootstrap, topics.events, good[:1])
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topics.events, value=b'{"event_type":"x"}', key=b"t")  # no headers
    finally:
        await producer.stop()
    await produce(kafka_bootstrap, topics.events, good[1:])

    async with running_sender(kafka_bootstrap, topics, recording_endpoint):

        async def everything_committed() -> bool:
            return await committed(kafka_bootstrap, topics.group, topics.events, 1) == {0: 3}

        await wait_until(everything_committed, timeout=60, message="offsets committed past every record")

    [dead] = await read_all(kafka_bootstrap, topics.dlq, 1)
    headers = headers_of(dead)
    assert headers["dlq.reason"] == "malformed_record"
    assert "row-id" in headers["dlq.message"]
    assert headers["dlq.source.offset"] == "1"
    assert seqs(recording_endpoint.accepted_events()) == [0, 1]


async def test_offsets_are_not_committed_while_the_endpoint_is_down_and_a_restarted_sender_redelivers(
    kafka_bootstrap: str, recording_endpoint: RecordingEndpoint
) -> None:
    topics = await make_topics(kafka_bootstrap, "down-then-restart", partitions=2)
    rows = rows_over(2, 10)
    recording_endpoint.fail_first(10**9, status=503)
    await produce(kafka_bootstrap, topics.events, rows)

    async with running_sender(kafka_bootstrap, topics, recording_endpoint) as first:
        await wait_until(lambda: len(recording_endpoint.requests) >= 10, timeout=30, message="retries while down")
        assert await progress(kafka_bootstrap, topics.group, topics.events, 2) == {0: 0, 1: 0}
    assert first.task.done() and first.task.exception() is None  # stopped cleanly while retrying
    assert await progress(kafka_bootstrap, topics.group, topics.events, 2) == {0: 0, 1: 0}
    assert recording_endpoint.accepted_events() == []

    recording_endpoint.clear_faults()
    async with running_sender(kafka_bootstrap, topics, recording_endpoint):

        async def everything_committed() -> bool:
            return await committed(kafka_bootstrap, topics.group, topics.events, 2) == expected_ends(rows, 2)

        await wait_until(everything_committed, timeout=60, message="the restarted sender commits every row")

    assert sorted(seqs(recording_endpoint.accepted_events())) == [row.seq for row in rows]


async def test_a_rejected_token_is_retried_not_dead_lettered_until_a_sender_with_the_right_token_delivers(
    kafka_bootstrap: str,
) -> None:
    topics = await make_topics(kafka_bootstrap, "wrong-token", partitions=1)
    rows = rows_over(1, 6)
    await produce(kafka_bootstrap, topics.events, rows)

    with RecordingEndpoint(expected_token=TOKEN) as endpoint:
        async with running_sender(kafka_bootstrap, topics, endpoint, auth_token=Secret("expired")) as wrong:
            await wait_until(lambda: len(endpoint.requests) >= 5, timeout=30, message="401s being retried")
        assert {r.status for r in endpoint.requests} == {401}
        assert await progress(kafka_bootstrap, topics.group, topics.events, 1) == {0: 0}
        assert (
            wrong.registry.get_sample_value("review_analytics_sender_rows_dead_lettered_total", {"reason": "rejected"})
            is None
        )

        async with running_sender(kafka_bootstrap, topics, endpoint):

            async def everything_committed() -> bool:
                return await committed(kafka_bootstrap, topics.group, topics.events, 1) == {0: 6}

            await wait_until(everything_committed, timeout=60, message="the fixed sender commits every row")

        assert seqs(endpoint.unique_accepted_events()) == [row.seq for row in rows]


async def test_stop_lets_the_request_in_flight_finish_and_commits_it(
    kafka_bootstrap: str, recording_endpoint: RecordingEndpoint
) -> None:
    topics = await make_topics(kafka_bootstrap, "stop-in-flight", partitions=1)
    rows = rows_over(1, 5)
    recording_endpoint.stall(1.0, count=1)  # the first request takes a second to be answered (200)
    await produce(kafka_bootstrap, topics.events, rows)

    async with running_sender(kafka_bootstrap, topics, recording_endpoint, request_timeout_s=5.0) as running:
        await wait_until(lambda: bool(recording_endpoint.requests), timeout=30, message="the first request in flight")
        running.sender.stop()  # what SIGTERM does
        await asyncio.wait_for(running.task, timeout=10)

    assert len(recording_endpoint.requests) == 1
    assert await committed(kafka_bootstrap, topics.group, topics.events, 1) == {0: 5}


async def test_a_second_sender_joining_the_group_shares_partitions_and_no_row_is_lost(
    kafka_bootstrap: str, recording_endpoint: RecordingEndpoint
) -> None:
    topics = await make_topics(kafka_bootstrap, "rebalance", partitions=4)
    first_half, second_half = rows_over(4, 200)[:100], rows_over(4, 200)[100:]
    recording_endpoint.fail_randomly(0.2, seed=11)
    await produce(kafka_bootstrap, topics.events, first_half)

    async with running_sender(kafka_bootstrap, topics, recording_endpoint, max_batch_rows=5):
        await wait_until(lambda: len(recording_endpoint.accepted_events()) >= 20, timeout=30)
        async with running_sender(kafka_bootstrap, topics, recording_endpoint, max_batch_rows=5):
            await produce(kafka_bootstrap, topics.events, second_half)
            everything = first_half + second_half

            async def everything_committed() -> bool:
                got = await committed(kafka_bootstrap, topics.group, topics.events, 4)
                return got == expected_ends(everything, 4)

            await wait_until(everything_committed, timeout=90, message="both senders commit every row")

    assert set(seqs(recording_endpoint.accepted_events())) == {row.seq for row in everything}


@pytest.mark.parametrize("missing", ["events", "dlq"])
async def test_a_missing_topic_stops_the_sender_at_startup_with_a_config_error(
    kafka_bootstrap: str, recording_endpoint: RecordingEndpoint, missing: str
) -> None:
    topics = await make_topics(kafka_bootstrap, f"no-{missing}", partitions=1)
    setattr(topics, missing, random_topic_name("never-created"))  # the local broker does not auto-create topics
    setting = {"events": "SENDER_EVENTS_TOPIC", "dlq": "SENDER_DLQ_TOPIC"}[missing]

    with pytest.raises(ConfigError, match=setting):
        async with running_sender(kafka_bootstrap, topics, recording_endpoint) as running:
            await asyncio.wait_for(running.task, timeout=30)


async def test_a_tail_batch_resent_after_a_crash_is_rebuilt_with_the_key_it_was_sent_under(
    kafka_bootstrap: str, recording_endpoint: RecordingEndpoint
) -> None:
    """F4: the endpoint stalls the answer to the first batch; the sender stops before the answer, more rows
    arrive, and the next sender must resend exactly the first batch (same idempotency key) before the rest."""
    topics = await make_topics(kafka_bootstrap, "sender-tail-batch", partitions=1)
    rows = rows_over(1, 10)
    await produce(kafka_bootstrap, topics.events, rows[:5])
    recording_endpoint.stall(seconds=3.0, count=1)
    # A long backoff: the timed-out request must not be retried before the stop (under load it could be).
    async with running_sender(
        kafka_bootstrap, topics, recording_endpoint, request_timeout_s=1.0, backoff_base_s=30.0, backoff_cap_s=30.0
    ) as first:
        await wait_until(lambda: len(recording_endpoint.requests) >= 1, timeout=30, message="first batch sent")
        first.sender.stop()
    (announced,) = recording_endpoint.requests
    assert await progress(kafka_bootstrap, topics.group, topics.events, 1) == {0: 0}
    await produce(kafka_bootstrap, topics.events, rows[5:])
    recording_endpoint.clear_faults()
    async with running_sender(kafka_bootstrap, topics, recording_endpoint):

        async def everything_committed() -> bool:
            return await progress(kafka_bootstrap, topics.group, topics.events, 1) == {0: 10}

        await wait_until(everything_committed, timeout=60, message="all ten rows committed")
    resent = recording_endpoint.requests[1]
    assert resent.idempotency_key == announced.idempotency_key
    assert len(resent.events) == 5
    assert sorted(seqs(recording_endpoint.unique_accepted_events())) == [row.seq for row in rows]
