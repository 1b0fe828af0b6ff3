"""``reducer.batching``: which rows share an HTTP request, proved on literal lists."""

from __future__ import annotations

import itertools

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reducer.batching import is_isolated_event_type, split_batches
from schemas.http import BODY_OVERHEAD, request_body

ALF = "codex_accepted_line_fingerprints"
REGULAR = "codex_review_event"


def _isolated(event_type: str) -> bool:
    return is_isolated_event_type(event_type)


def test_accepted_line_fingerprints_is_the_only_isolated_event_type() -> None:
    assert is_isolated_event_type(ALF)
    assert not is_isolated_event_type(REGULAR)
    assert not is_isolated_event_type("codex_command_execution_event")


def test_isolated_rows_travel_alone_like_rust_track_event_request_batches() -> None:
    # The Rust client test: [regular, regular, ALF, ALF, regular, regular] -> batch sizes [2, 1, 1, 2].
    rows = [REGULAR, REGULAR, ALF, ALF, REGULAR, REGULAR]

    batches = split_batches(rows, _isolated)

    assert [len(batch) for batch in batches] == [2, 1, 1, 2]
    assert batches == [[REGULAR, REGULAR], [ALF], [ALF], [REGULAR, REGULAR]]


def test_no_rows_make_no_batches() -> None:
    assert split_batches([], _isolated) == []


def test_rows_without_isolated_ones_form_one_batch_when_uncapped() -> None:
    assert split_batches(["a", "b", "c"], _isolated) == [["a", "b", "c"]]


def test_an_isolated_row_first_or_last_does_not_create_empty_batches() -> None:
    assert split_batches([ALF, "a", ALF], _isolated) == [[ALF], ["a"], [ALF]]


def test_row_cap_closes_a_batch_when_full() -> None:
    assert split_batches(["a", "b", "c", "d", "e"], _isolated, max_rows=2) == [["a", "b"], ["c", "d"], ["e"]]


def test_row_cap_restarts_after_an_isolated_row() -> None:
    rows = ["a", "b", "c", ALF, "d", "e", "f"]
    assert split_batches(rows, _isolated, max_rows=2) == [["a", "b"], ["c"], [ALF], ["d", "e"], ["f"]]


def test_byte_cap_counts_the_exact_request_body() -> None:
    rows = [b"x" * 10, b"y" * 10, b"z" * 10]
    two_rows_body = len(request_body(rows[:2]))  # 13 framing + 10 + 1 comma + 10 = 34

    batches = split_batches(rows, lambda _: False, max_bytes=two_rows_body, size_of=len)

    assert batches == [rows[:2], rows[2:]]
    assert all(len(request_body(batch)) <= two_rows_body for batch in batches)


def test_byte_cap_one_byte_short_of_two_rows_sends_them_separately() -> None:
    rows = [b"x" * 10, b"y" * 10]
    limit = len(request_body(rows)) - 1

    assert split_batches(rows, lambda _: False, max_bytes=limit, size_of=len) == [[rows[0]], [rows[1]]]


def test_a_row_bigger_than_the_byte_cap_still_travels_alone_and_is_not_dropped() -> None:
    rows = [b"a", b"h" * 100, b"b"]

    batches = split_batches(rows, lambda _: False, max_bytes=50, size_of=len)

    assert batches == [[b"a"], [b"h" * 100], [b"b"]]


def test_both_caps_apply_and_the_tighter_one_wins() -> None:
    rows = [b"r" * 5] * 6
    assert [len(b) for b in split_batches(rows, lambda _: False, max_rows=4, max_bytes=1000, size_of=len)] == [4, 2]
    body_of_three = len(request_body(rows[:3]))
    assert [len(b) for b in split_batches(rows, lambda _: False, max_rows=4, max_bytes=body_of_three, size_of=len)] == [
        3,
        3,
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_rows": 0}, "max_rows must be at least 1"),
        ({"max_bytes": 0, "size_of": len}, "max_bytes must be at least 1"),
        ({"max_bytes": 100}, "max_bytes needs size_of"),
    ],
)
def test_invalid_caps_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split_batches([b"a"], lambda _: False, **kwargs)  # type: ignore[arg-type]


def test_request_body_joins_rows_without_re_encoding_them() -> None:
    rows = [b'{"event_type":"a","event_params":{"x":1.50}}', b'{"event_type":"b", "event_params":null}']

    body = request_body(rows)

    assert body == b'{"events":[' + rows[0] + b"," + rows[1] + b"]}"
    assert msgspec.json.decode(body) == {
        "events": [{"event_type": "a", "event_params": {"x": 1.5}}, {"event_type": "b", "event_params": None}]
    }
    assert len(request_body([])) == BODY_OVERHEAD


_rows = st.lists(st.sampled_from([REGULAR, ALF]).flatmap(lambda t: st.tuples(st.just(t), st.integers(1, 60))))


@given(rows=_rows, max_rows=st.none() | st.integers(1, 8), max_bytes=st.none() | st.integers(1, 200))
def test_batches_preserve_order_respect_caps_and_isolate(
    rows: list[tuple[str, int]], max_rows: int | None, max_bytes: int | None
) -> None:
    def size_of(row: tuple[str, int]) -> int:
        return row[1]

    batches = split_batches(rows, lambda r: _isolated(r[0]), max_rows, max_bytes, size_of=size_of)

    assert [row for batch in batches for row in batch] == rows
    assert all(batch for batch in batches)
    for batch in batches:
        if any(_isolated(t) for t, _ in batch):
            assert len(batch) == 1
        if max_rows is not None:
            assert len(batch) <= max_rows
        body_size = BODY_OVERHEAD + sum(size for _, size in batch) + len(batch) - 1
        if max_bytes is not None and len(batch) > 1:
            assert body_size <= max_bytes
    # Greedy: a batch is closed only when the next row is isolated or would break a cap.
    for batch, following in itertools.pairwise(batches):
        if _isolated(batch[0][0]) or _isolated(following[0][0]):
            continue
        body_with_next = BODY_OVERHEAD + sum(size for _, size in batch) + len(batch) + following[0][1]
        assert (max_rows is not None and len(batch) == max_rows) or (
            max_bytes is not None and body_with_next > max_bytes
        )
