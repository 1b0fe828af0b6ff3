"""The producer's router keeps a server request's route until an answer that settles its review.

Regression for issue 12, finding 3: a permissions request is first answered by a ``ServerResponse`` the
reducer ignores; the effective-permissions response that completes the review must still reach the
request's partition, or the review row is lost.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import msgspec
import pytest

from reducer import initial_state, reduce
from reducer.reviews import SETTLING_RESPONSE_METHODS
from schemas.codec import decode_fact
from schemas.events import ReviewEvent, Row
from services.config import KafkaSettings
from services.producer import BROADCAST, FactPublisher
from services.producer.routing import Router, fallback_key, settles_review

ROOT = "thread-root"
PERMISSIONS = "item/permissions/requestApproval"
COMMAND = "item/commandExecution/requestApproval"


def test_an_ignored_server_response_keeps_the_route_for_the_answer_that_settles() -> None:
    router = Router()
    router.remember_server_request(51, ROOT)

    assert router.answer_server_request(51, settles=settles_review("server_response", PERMISSIONS)) == ROOT
    assert router.answer_server_request(51, settles=settles_review("effective_permissions_approval_response")) == ROOT
    assert router.answer_server_request(51, settles=settles_review("server_request_aborted")) is None
    assert router.unrouted == 1


def test_a_settling_answer_forgets_the_route() -> None:
    router = Router()
    router.remember_server_request("a", ROOT)
    router.remember_server_request(7, ROOT)

    assert router.answer_server_request("a", settles=settles_review("server_response", COMMAND)) == ROOT
    assert router.answer_server_request("a", settles=True) is None
    assert router.answer_server_request(7, settles=settles_review("server_request_aborted")) == ROOT
    assert router.answer_server_request(7, settles=True) is None
    assert router.unrouted == 2


def test_settling_answers_are_exactly_those_the_reducer_acts_on() -> None:
    assert {COMMAND, "item/fileChange/requestApproval"} == SETTLING_RESPONSE_METHODS
    for method in (PERMISSIONS, "item/tool/call", "item/tool/requestUserInput", "mcpServer/elicitation/request", None):
        assert not settles_review("server_response", method)
    assert settles_review("effective_permissions_approval_response")
    assert settles_review("server_request_aborted")
    assert not settles_review("client_response")


def test_unsettled_routes_stay_bounded() -> None:
    router = Router(limit=3)
    for request_id in range(10):
        router.remember_server_request(request_id, ROOT)
        router.answer_server_request(request_id, settles=False)
    assert [router.answer_server_request(i, settles=True) for i in range(10)] == [None] * 7 + [ROOT] * 3


def _thread(thread_id: str) -> dict[str, Any]:
    return {
        "id": thread_id,
        "sessionId": f"session-{thread_id}",
        "ephemeral": False,
        "createdAt": 1_700_000_000,
        "source": "exec",
        "threadSource": "user",
        "cwd": "/tmp",
        "status": {"type": "idle"},
    }


def _partition_rows(publisher: FactPublisher, partitions: int) -> dict[int, list[Row]]:
    """Reduce the publisher's buffered envelopes per partition, keyed like Kafka would (any stable hash
    does: what matters is that facts with one key meet in one partition and broadcasts reach all)."""
    by_partition: dict[int, list[bytes]] = defaultdict(list)
    for key, value in publisher._buffer:
        if key is BROADCAST:
            for partition in range(partitions):
                by_partition[partition].append(value)
        else:
            assert isinstance(key, bytes)
            by_partition[sum(key) % partitions].append(value)
    rows: dict[int, list[Row]] = {}
    for partition, values in by_partition.items():
        state, out = initial_state(), []
        for value in values:
            state, emitted = reduce(state, decode_fact(value))
            out.extend(emitted)
        rows[partition] = out
    return rows


@pytest.mark.parametrize("permission_answer_first", [True, False])
async def test_permissions_review_is_emitted_when_an_ignored_response_arrives_first(
    permission_answer_first: bool,
) -> None:
    publisher = FactPublisher(kafka=KafkaSettings(bootstrap_servers="localhost:1"), producer_id="p1")
    publisher._partitions = [0, 1, 2, 3]
    publisher.track_initialize(
        7,
        {"clientInfo": {"name": "codex-tui", "version": "1.0.0"}, "capabilities": None},
        "codex_cli_rs",
        {"codex_rs_version": "0.99.0", "runtime_os": "linux", "runtime_os_version": "24", "runtime_arch": "x86_64"},
        "stdio",
    )
    response = {"thread": _thread(ROOT), "model": "gpt-5"}
    publisher.track_response(7, 1, {"method": "thread/start", "id": 1, "response": response})
    params = {
        "threadId": ROOT,
        "turnId": "turn-1",
        "itemId": "permissions-1",
        "startedAtMs": 1000,
        "cwd": "/tmp",
        "reason": None,
        "permissions": {"network": {"enabled": True}, "fileSystem": None},
    }
    publisher.track_server_request(7, {"method": PERMISSIONS, "id": 51, "params": params})
    if permission_answer_first:
        publisher.track_server_response(1040, {"method": PERMISSIONS, "id": 51, "response": {}})
    publisher.track_effective_permissions_approval_response(
        1042, 51, {"permissions": {"network": {"enabled": True}}, "scope": "turn"}
    )

    assert publisher.router.unrouted == 0
    keys = {key for key, _ in publisher._buffer if key is not BROADCAST}
    assert keys == {ROOT.encode()} and fallback_key("p1").encode() not in keys
    reviews = [row for rows in _partition_rows(publisher, 4).values() for row in rows if isinstance(row, ReviewEvent)]
    assert len(reviews) == 1
    params_out = msgspec.to_builtins(reviews[0].event_params)
    assert (params_out["review_id"], params_out["status"], params_out["completed_at_ms"]) == (
        "user:51",
        "approved",
        1042,
    )
