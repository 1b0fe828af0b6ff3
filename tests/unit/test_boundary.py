"""``reducer.boundary``: every fact is reduced, refused (state as if it never came) or dropped; nothing escapes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest

import reducer.reviews
from reducer.boundary import BatchResult, PartitionReducer
from reducer.context import connection_key
from reducer.limits import Limits
from reducer.snapshot import CONNECTION_PREFIX, FAMILY_PREFIX, WATERMARK_KEY, snapshot
from schemas.codec import encode_fact
from schemas.events import ReviewEvent
from schemas.facts import FactEnvelope, Initialize, ServerResponseFact
from tests.support.builders import (
    review_prerequisites,
    sample_command_approval_request,
    sample_initialize,
    sample_server_response,
    sample_thread_response,
)

TTL = 24 * 3600 * 1000


def _raw(facts: Sequence[FactEnvelope]) -> list[bytes | None]:
    return [encode_fact(fact) for fact in facts]


def _review_stream() -> list[FactEnvelope]:
    """Three user reviews of one family: each request answered, each answer completing one review row."""
    facts = list(review_prerequisites())
    for request in (41, 42, 43):
        facts += [sample_command_approval_request(request), sample_server_response(request, "accept")]
    return facts


def _run(
    raw: Sequence[bytes | None], *, batch: int | None = None, **limits: Any
) -> tuple[PartitionReducer, BatchResult]:
    """Run ``raw`` in batches of ``batch`` facts; return the reducer and every batch's result merged
    (positions counted over the whole stream)."""
    reducer = PartitionReducer(idle_ttl_ms=TTL, limits=Limits(**limits))
    merged = BatchResult()
    step = batch or max(1, len(raw))
    for start in range(0, len(raw), step):
        result = reducer.run(raw[start : start + step])
        merged.rows += [row._replace(position=row.position + start) for row in result.rows]
        merged.refused += [refusal._replace(position=refusal.position + start) for refusal in result.refused]
        merged.reduced += result.reduced
    return reducer, merged


def _answer_to_42(facts: Sequence[FactEnvelope]) -> int:
    return next(
        i for i, fact in enumerate(facts) if isinstance(fact.fact, ServerResponseFact) and fact.fact.response.id == 42
    )


def _threads(prefix: str, count: int, first_ms: int, *, step_ms: int = 1, width: int = 0) -> list[FactEnvelope]:
    """``count`` thread-start responses, one family each (``<prefix><index>``), observed from ``first_ms`` on."""
    facts = []
    for index in range(count):
        response = sample_thread_response(f"{prefix}{index:0{width}}", request_id=index)
        response.observed_at_ms = first_ms + index * step_ms
        facts.append(response)
    return facts


def _state_of(reducer: PartitionReducer) -> dict[str, bytes]:
    return snapshot(reducer.state)


def _without(raw: Sequence[bytes | None], positions: set[int]) -> list[bytes | None]:
    return [value for position, value in enumerate(raw) if position not in positions]


def _rows(result: BatchResult) -> list[bytes]:
    return [row.value for row in result.rows]


@pytest.fixture
def failing_answer(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A reducer bug: the answer to request 42 half-updates its family (removes the pending review), then raises."""
    real = reducer.reviews.on_server_response

    def buggy(state: Any, family: Any, producer: str, fact: Any, rows: list[Any]) -> None:
        if fact.response.id == 42:
            family.pending_reviews = {}
            raise RuntimeError("bug in the reducer")
        real(state, family, producer, fact, rows)

    monkeypatch.setitem(reducer.core._HANDLERS, reducer.core.ServerResponseFact, _handler_calling(buggy))
    yield


def _handler_calling(on_response: Any) -> Any:
    def handle(state: Any, envelope: Any, fact: Any, rows: list[Any]) -> None:
        on_response(state, reducer.core._existing_family(state, envelope), envelope.producer, fact, rows)

    return handle


@pytest.mark.parametrize("batch", [1, 3, None])
def test_a_fact_the_reducer_raises_on_is_refused_and_leaves_the_state_as_if_it_never_came(
    failing_answer: None, batch: int | None
) -> None:
    facts = _review_stream()
    raw = _raw(facts)
    poison = _answer_to_42(facts)

    reducer_, result = _run(raw, batch=batch)
    clean, expected = _run(_without(raw, {poison}))

    assert [(r.position, r.reason, type(r.error).__name__) for r in result.refused] == [
        (poison, "reducer_error", "RuntimeError")
    ]
    assert _rows(result) == _rows(expected)
    assert sum(row.cls is ReviewEvent for row in result.rows) == 2, "the other two reviews still complete"
    assert _state_of(reducer_) == _state_of(clean)
    assert result.reduced == len(raw) - 1


def test_a_row_larger_than_a_record_allows_is_refused_as_row_too_large() -> None:
    raw = _raw(_review_stream())
    _, reference = _run(raw)
    smallest_row = min(len(row.value) for row in reference.rows)

    reducer, result = _run(raw, max_record_bytes=smallest_row + 64)

    assert {r.reason for r in result.refused} == {"row_too_large"}
    refused = {r.position for r in result.refused}
    clean, expected = _run(_without(raw, refused), max_record_bytes=smallest_row + 64)
    assert _rows(result) == _rows(expected)
    assert _state_of(reducer) == _state_of(clean)


def test_a_family_that_would_outgrow_a_changelog_record_refuses_the_facts_that_grow_it() -> None:
    facts = list(review_prerequisites()) + [sample_command_approval_request(request) for request in range(200)]
    raw = _raw(facts)
    limit = 8_000

    for batch in (1, 17, None):
        reducer, result = _run(raw, batch=batch, max_record_bytes=limit)
        refused = {r.position for r in result.refused}
        assert refused, "some requests must be refused"
        assert {r.reason for r in result.refused} == {"state_too_large"}
        assert all(len(value) <= limit for value in reducer.values.values())
        clean, _ = _run(_without(raw, refused), max_record_bytes=limit)
        assert _state_of(reducer) == _state_of(clean)
        assert len(reducer.state.families["thread-1"].pending_reviews) == 200 - len(refused)


@pytest.mark.pure_python  # monkeypatches a module attribute that compiled code does not look up
def test_state_that_cannot_be_encoded_is_refused_at_the_fact_that_made_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real = reducer.reviews.on_server_request

    def corrupting(state: Any, family: Any, producer: str, fact: Any) -> None:
        real(state, family, producer, fact)
        if fact.request.id == 42:
            family.started_at_ms = {"x": object()}  # msgpack cannot encode this

    monkeypatch.setattr(reducer.reviews, "on_server_request", corrupting)
    raw = _raw(_review_stream())
    poison = 2 + 2  # review_prerequisites() is two facts; request 41 and its answer come next

    reducer_, result = _run(raw)

    assert [(r.position, r.reason) for r in result.refused] == [(poison, "state_unencodable")]
    monkeypatch.setattr(reducer.reviews, "on_server_request", real)
    clean, expected = _run(_without(raw, {poison}))
    assert _rows(result) == _rows(expected)
    assert _state_of(reducer_) == _state_of(clean)


def test_a_redo_lets_each_fact_see_the_connections_it_saw_the_first_time(failing_answer: None) -> None:
    """The thread response comes before its connection's Initialize, so it records nothing; a redo of the
    family (forced by the failing answer) must not let it see the later Initialize."""
    early = sample_thread_response()
    facts = [early, sample_initialize(), *_review_stream()[2:]]
    raw = _raw(facts)
    poison = _answer_to_42(facts)

    reducer_, result = _run(raw)
    clean, expected = _run(_without(raw, {poison}))

    assert [r.position for r in result.refused] == [poison]
    assert _state_of(reducer_) == _state_of(clean)
    assert _rows(result) == _rows(expected)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "undecodable"),
        (b"\xff\xfe garbage", "undecodable"),
        (b"[]", "undecodable"),
        (b'{"v": 99}', "unsupported_version"),
    ],
)
def test_bytes_that_are_no_fact_are_refused_with_the_decode_reason(value: bytes | None, reason: str) -> None:
    raw = _raw(review_prerequisites())
    _, result = _run([*raw, value])

    assert [(r.position, r.reason) for r in result.refused] == [(len(raw), reason)]


def test_a_fact_years_ahead_moves_neither_the_watermark_nor_expiry() -> None:
    base = review_prerequisites()
    future = sample_thread_response("thread-9", request_id=9)
    future.observed_at_ms = 10**13
    later = sample_command_approval_request(41)
    later.observed_at_ms = 5_000
    reducer_, result = _run(_raw([*base, future, later]))

    assert reducer_.state.watermark_ms == 5_000
    assert result.refused == []
    assert "thread-1" in reducer_.state.families


def test_a_run_of_facts_all_far_ahead_moves_the_watermark_to_their_earliest() -> None:
    facts = _threads("thread-", 5, 10**12)
    for batch in (1, 2, None):
        reducer_, _ = _run(_raw(facts), batch=batch, clock_jump_facts=3)
        assert reducer_.state.watermark_ms == 10**12 + 4, "jumped to 10**12 after three, then moved normally"


def test_over_the_byte_budget_the_longest_idle_families_are_evicted_and_counted() -> None:
    facts = [sample_initialize(), *_threads("thread-", 50, 1_000, width=2)]
    reducer_, _ = _run(_raw(facts))
    budget = reducer_.state_bytes // 2

    limited, _ = _run(_raw(facts), batch=10, state_budget_bytes=budget)

    assert limited.state_bytes <= budget
    kept = sorted(limited.state.families)
    assert kept == sorted(reducer_.state.families)[-len(kept) :], "the most recently seen families stay"
    assert limited.state.drops["budget_evicted_family"] == 50 - len(kept)


def test_connections_are_capped_oldest_first() -> None:
    facts = [sample_initialize(connection_id=index) for index in range(10)]

    reducer_, _ = _run(_raw(facts), max_connections=4)

    assert [key.rsplit("\x1f", 1)[1] for key in reducer_.state.connections] == ["6", "7", "8", "9"]
    assert reducer_.state.drops["connection_evicted"] == 6


def test_restored_from_its_changelog_a_reducer_goes_on_exactly_as_one_that_never_stopped(failing_answer: None) -> None:
    raw = _raw(_review_stream())
    whole, whole_result = _run(raw)

    first = PartitionReducer(idle_ttl_ms=TTL)
    records = first.run(raw[:5]).changelog
    restarted = PartitionReducer.restored(records, idle_ttl_ms=TTL)
    rest = restarted.run(raw[5:])

    assert _state_of(restarted) == _state_of(whole)
    assert [row.value for row in rest.rows] == [row.value for row in whole_result.rows if row.position >= 5]


def test_a_flood_of_short_lived_families_keeps_the_idle_index_as_small_as_the_state() -> None:
    facts = [sample_initialize(), *_threads("thread-", 3_000, 1_000)]
    partition = PartitionReducer(idle_ttl_ms=TTL, limits=Limits(state_budget_bytes=20_000))

    for start in range(0, len(facts), 100):
        partition.run(_raw(facts[start : start + 100]))

    assert partition.state_bytes <= 20_000
    assert len(partition.idle_index) <= 2 * len(partition.state.families) + 1024
    assert partition.state.drops["budget_evicted_family"] == 3_000 - len(partition.state.families)


def test_families_expired_in_a_batch_do_not_count_against_the_state_budget() -> None:
    """F9: 3,000 idle families expire in the same batch as 50 live ones arrive; the budget holds all the live."""
    facts = [
        sample_initialize(),
        *_threads("flood-", 3_000, 1_000, step_ms=0),
        *_threads("live-", 50, 1_000 + 2 * TTL, step_ms=0),
    ]
    live_bytes = sum(len(value) for value in _run(_raw([facts[0], *facts[-50:]]))[0].values.values())

    partition, _ = _run(_raw(facts), state_budget_bytes=live_bytes * 2, clock_jump_facts=10)

    assert sorted(partition.state.families) == sorted(f"live-{index}" for index in range(50))
    assert "budget_evicted_family" not in partition.state.drops


@pytest.mark.pure_python  # monkeypatches a module attribute that compiled code does not look up
def test_a_family_broken_by_an_earlier_fact_of_the_batch_is_redone_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    """F8: a fast-pass fact leaves its family unencodable; the next fact of that family needs careful mode (a
    low record limit), whose encode of the family before it must not raise out of the boundary."""
    real = reducer.reviews.on_server_request

    def corrupting(state: Any, family: Any, producer: str, fact: Any) -> None:
        real(state, family, producer, fact)
        if fact.request.id == 41:
            family.started_at_ms = {"x": object()}

    monkeypatch.setattr(reducer.reviews, "on_server_request", corrupting)
    raw = _raw(_review_stream())
    raw[3] = b"{" + b" " * 3_000 + (raw[3] or b"")[1:]  # the answer to 41: its size alone calls for careful mode

    partition, result = _run(raw, max_record_bytes=6_000)

    assert [(r.position, r.reason) for r in result.refused] == [(2, "state_unencodable")]
    monkeypatch.setattr(reducer.reviews, "on_server_request", real)
    clean, _ = _run(_without(raw, {2}), max_record_bytes=6_000)
    assert _state_of(partition) == _state_of(clean)


def test_a_batch_reports_the_families_and_connections_it_changed_and_each_has_a_changelog_record() -> None:
    facts = [*_review_stream(), *_threads("gone", 3, 1_000)]
    reducer = PartitionReducer(idle_ttl_ms=TTL)
    result = reducer.run(_raw(facts))

    initialize = sample_initialize()
    assert isinstance(initialize.fact, Initialize)
    assert result.connections == [connection_key(initialize.producer, initialize.fact.connection_id)]
    assert set(result.families) == {fact.thread_id for fact in facts if fact.thread_id is not None}
    assert {key for key, _ in result.changelog} == {
        *(FAMILY_PREFIX + key for key in result.families),
        *(CONNECTION_PREFIX + key for key in result.connections),
        WATERMARK_KEY,
    }
    later = reducer.run(_raw([sample_command_approval_request(44)]))
    assert later.connections == []
    assert later.families == ["thread-1"]


def test_run_all_reduces_a_stream_in_batches_like_run_on_each_batch() -> None:
    raw = _raw(_review_stream())
    by_run_all = [_rows(result) for result in PartitionReducer(idle_ttl_ms=TTL).run_all(raw, batch=2)]
    by_hand = PartitionReducer(idle_ttl_ms=TTL)
    assert by_run_all == [_rows(by_hand.run(raw[start : start + 2])) for start in range(0, len(raw), 2)]
