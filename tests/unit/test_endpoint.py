"""The recording endpoint: every behaviour proved with a real HTTP request against the real server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest

from schemas.http import EVENTS_PATH
from tools.demo.endpoint import RecordingEndpoint

REPO = Path(__file__).resolve().parents[2]


def _event(thread_id: str = "thread-1", event_type: str = "codex_review_event") -> dict[str, object]:
    return {"event_type": event_type, "event_params": {"thread_id": thread_id}}


def _body(*events: dict[str, object]) -> bytes:
    return msgspec.json.encode({"events": list(events)})


@pytest.fixture
def http(recording_endpoint: RecordingEndpoint) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=recording_endpoint.url, timeout=5.0) as client:
        yield client


def _post(http: httpx.Client, body: bytes, key: str | None = None, **kwargs: object) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return http.post(EVENTS_PATH, content=body, headers=headers, **kwargs)  # type: ignore[arg-type]


def test_a_valid_batch_is_accepted_and_recorded_with_headers_events_and_key(
    recording_endpoint: RecordingEndpoint, http: httpx.Client
) -> None:
    response = _post(http, _body(_event("a"), _event("b")), key="k1")

    assert response.status_code == 200
    assert response.json() == {"accepted": 2}
    [request] = recording_endpoint.requests
    assert request.status == 200
    assert request.accepted
    assert request.idempotency_key == "k1"
    assert request.headers["content-type"] == "application/json"
    assert request.events == [_event("a"), _event("b")]
    assert recording_endpoint.accepted_events() == [_event("a"), _event("b")]


def test_requests_on_one_client_reuse_the_connection(recording_endpoint: RecordingEndpoint, http: httpx.Client) -> None:
    for _ in range(3):
        assert _post(http, _body(_event())).status_code == 200

    assert len({request.peer for request in recording_endpoint.requests}) == 1


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"rows": []}', b'{"events": {}}', b'{"events": [1]}', b'{"events": [{"no_type": 1}]}'],
)
def test_a_body_that_is_not_an_events_document_is_answered_400_and_not_accepted(
    recording_endpoint: RecordingEndpoint, http: httpx.Client, body: bytes
) -> None:
    response = _post(http, body)

    assert response.status_code == 400
    assert recording_endpoint.accepted_events() == []
    assert recording_endpoint.requests[0].status == 400


def test_an_unknown_path_is_answered_404(http: httpx.Client) -> None:
    assert http.post("/elsewhere", content=_body(_event())).status_code == 404


def test_an_expected_token_makes_requests_without_it_401() -> None:
    with RecordingEndpoint(expected_token="s3cr3t") as endpoint, httpx.Client(base_url=endpoint.url) as client:
        assert client.post(EVENTS_PATH, content=_body(_event())).status_code == 401
        wrong = client.post(EVENTS_PATH, content=_body(_event()), headers={"Authorization": "Bearer nope"})
        right = client.post(EVENTS_PATH, content=_body(_event()), headers={"Authorization": "Bearer s3cr3t"})

    assert wrong.status_code == 401
    assert right.status_code == 200
    assert len(endpoint.accepted_events()) == 1


def test_fail_first_answers_the_first_n_requests_with_the_status_then_accepts(
    recording_endpoint: RecordingEndpoint, http: httpx.Client
) -> None:
    recording_endpoint.fail_first(2, status=502, retry_after="7")

    statuses = [_post(http, _body(_event())) for _ in range(3)]

    assert [r.status_code for r in statuses] == [502, 502, 200]
    assert statuses[0].headers["Retry-After"] == "7"
    assert [r.fault for r in recording_endpoint.requests] == ["fail", "fail", None]


def test_unavailable_answers_503_with_retry_after_for_the_duration(
    recording_endpoint: RecordingEndpoint, http: httpx.Client
) -> None:
    recording_endpoint.unavailable_for(0.3, retry_after="2")

    during = _post(http, _body(_event()))
    time.sleep(0.35)
    after = _post(http, _body(_event()))

    assert (during.status_code, during.headers["Retry-After"]) == (503, "2")
    assert after.status_code == 200


def test_random_failures_are_reproducible_from_the_seed(recording_endpoint: RecordingEndpoint) -> None:
    def run(seed: int) -> list[int]:
        with RecordingEndpoint() as endpoint, httpx.Client(base_url=endpoint.url) as client:
            endpoint.fail_randomly(0.5, seed=seed)
            return [client.post(EVENTS_PATH, content=_body(_event())).status_code for _ in range(20)]

    first, again = run(seed=7), run(seed=7)

    assert first == again
    assert {s for s in first if s != 200} <= {500, 502, 503, 504}
    assert 200 in first and any(s >= 500 for s in first)


def test_throttle_answers_429_with_retry_after(recording_endpoint: RecordingEndpoint, http: httpx.Client) -> None:
    recording_endpoint.throttle(1, retry_after="3")

    throttled, then = _post(http, _body(_event())), _post(http, _body(_event()))

    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "3")
    assert then.status_code == 200


def test_stall_records_the_batch_as_accepted_although_the_client_times_out(
    recording_endpoint: RecordingEndpoint, http: httpx.Client
) -> None:
    recording_endpoint.stall(1.0)

    with pytest.raises(httpx.ReadTimeout):
        _post(http, _body(_event("slow")), key="k-slow", timeout=0.2)
    after = _post(http, _body(_event("next")))

    assert after.status_code == 200
    assert recording_endpoint.accepted_events() == [_event("slow"), _event("next")]
    assert recording_endpoint.requests[0].fault == "stall"


def test_stall_without_accept_answers_503_late_and_accepts_nothing(
    recording_endpoint: RecordingEndpoint, http: httpx.Client
) -> None:
    recording_endpoint.stall(0.2, accept=False)

    started = time.monotonic()
    response = _post(http, _body(_event()))

    assert response.status_code == 503
    assert time.monotonic() - started >= 0.2
    assert recording_endpoint.accepted_events() == []


def test_reset_closes_the_connection_without_an_answer(
    recording_endpoint: RecordingEndpoint, http: httpx.Client
) -> None:
    recording_endpoint.reset_connections(1)

    with pytest.raises(httpx.TransportError):
        _post(http, _body(_event()))
    after = _post(http, _body(_event()))

    assert after.status_code == 200
    assert recording_endpoint.requests[0].status is None
    assert not recording_endpoint.requests[0].accepted


def test_reject_rows_refuses_only_requests_holding_a_matching_row(
    recording_endpoint: RecordingEndpoint, http: httpx.Client
) -> None:
    recording_endpoint.reject_rows(400, thread_ids={"bad"})
    recording_endpoint.reject_rows(422, event_types={"codex_turn_event"})
    recording_endpoint.reject_rows(413, where=lambda event: event["event_params"]["thread_id"] == "huge")

    assert _post(http, _body(_event("ok"), _event("bad"))).status_code == 400
    assert _post(http, _body(_event("ok", "codex_turn_event"))).status_code == 422
    assert _post(http, _body(_event("huge"))).status_code == 413
    assert _post(http, _body(_event("ok"), _event("fine"))).status_code == 200
    assert recording_endpoint.accepted_events() == [_event("ok"), _event("fine")]


def test_too_large_refuses_batches_over_k_rows_with_413(
    recording_endpoint: RecordingEndpoint, http: httpx.Client
) -> None:
    recording_endpoint.reject_batches_larger_than(max_rows=2)

    assert _post(http, _body(_event(), _event(), _event())).status_code == 413
    assert _post(http, _body(_event(), _event())).status_code == 200


def test_too_large_refuses_bodies_over_k_bytes_with_413(
    recording_endpoint: RecordingEndpoint, http: httpx.Client
) -> None:
    small = _body(_event())
    recording_endpoint.reject_batches_larger_than(max_bytes=len(small))

    assert _post(http, _body(_event(), _event())).status_code == 413
    assert _post(http, small).status_code == 200


def test_unique_accepted_events_drop_repeats_of_an_accepted_idempotency_key(
    recording_endpoint: RecordingEndpoint, http: httpx.Client
) -> None:
    _post(http, _body(_event("a")), key="k1")
    _post(http, _body(_event("a")), key="k1")  # the sender resending after a lost answer
    _post(http, _body(_event("b", "codex_turn_event")), key="k2")

    assert recording_endpoint.accepted_events() == [_event("a"), _event("a"), _event("b", "codex_turn_event")]
    assert recording_endpoint.unique_accepted_events() == [_event("a"), _event("b", "codex_turn_event")]
    assert recording_endpoint.event_type_counts() == {"codex_review_event": 1, "codex_turn_event": 1}
    assert recording_endpoint.event_type_counts(unique=False) == {"codex_review_event": 2, "codex_turn_event": 1}


def test_a_refused_request_does_not_mark_its_key_as_seen(
    recording_endpoint: RecordingEndpoint, http: httpx.Client
) -> None:
    recording_endpoint.fail_first(1)
    _post(http, _body(_event("a")), key="k1")
    _post(http, _body(_event("a")), key="k1")

    assert recording_endpoint.unique_accepted_events() == [_event("a")]


def test_faults_and_stats_are_controllable_over_http(recording_endpoint: RecordingEndpoint, http: httpx.Client) -> None:
    schedule = {"faults": [{"kind": "fail", "count": 1, "status": 500}, {"kind": "throttle", "count": 1}]}
    assert http.post("/_control/faults", json=schedule).json() == {"faults": 2}

    statuses = [_post(http, _body(_event()), key=f"k{i}").status_code for i in range(3)]
    stats = http.get("/_control/stats").json()
    requests = http.get("/_control/requests").json()

    assert statuses == [500, 429, 200]
    assert stats["requests"] == 3
    assert stats["statuses"] == {"500": 1, "429": 1, "200": 1}
    assert stats["unique_accepted_events"] == 1
    assert stats["event_types"] == {"codex_review_event": 1}
    assert [r["status"] for r in requests] == [500, 429, 200]


def test_control_api_clears_faults_resets_and_refuses_unknown_fault_kinds(
    recording_endpoint: RecordingEndpoint, http: httpx.Client
) -> None:
    http.post("/_control/faults", json={"faults": [{"kind": "fail"}]})
    assert _post(http, _body(_event())).status_code == 503
    assert http.delete("/_control/faults").status_code == 200
    assert _post(http, _body(_event())).status_code == 200

    assert http.post("/_control/faults", json={"faults": [{"kind": "explode"}]}).status_code == 400
    assert http.post("/_control/reset").status_code == 200
    assert recording_endpoint.requests == []


def test_record_file_has_one_json_line_per_request_with_authorization_masked(tmp_path: Path) -> None:
    record_file = tmp_path / "requests.jsonl"
    with RecordingEndpoint(record_file=record_file) as endpoint, httpx.Client(base_url=endpoint.url) as client:
        client.post(EVENTS_PATH, content=_body(_event()), headers={"Authorization": "Bearer s3cr3t"})
        client.post(EVENTS_PATH, content=_body(_event(), _event()))

    lines = [json.loads(line) for line in record_file.read_text().splitlines()]
    assert [len(line["events"]) for line in lines] == [1, 2]
    assert lines[0]["headers"]["authorization"] == "***"
    assert "s3cr3t" not in record_file.read_text()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_endpoint_runs_as_a_subprocess_driven_over_http() -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "tools.demo.endpoint", "--port", str(port), "--log-level", "WARNING"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=2.0) as client:
            deadline = time.monotonic() + 15
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the endpoint subprocess did not start listening"
                time.sleep(0.05)
            client.post("/_control/faults", json={"faults": [{"kind": "fail", "count": 1}]})
            assert client.post(EVENTS_PATH, content=_body(_event())).status_code == 503
            assert client.post(EVENTS_PATH, content=_body(_event())).status_code == 200
            assert client.get("/_control/stats").json()["accepted_events"] == 1
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()
        if process.stderr:
            process.stderr.close()
    assert process.returncode == 0


def test_endpoint_help_lists_the_control_api() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tools.demo.endpoint", "--help"], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert "/_control/faults" in result.stdout
    assert "--record-file" in result.stdout
