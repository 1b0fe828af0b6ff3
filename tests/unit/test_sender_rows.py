"""How the sender reads records of the events topic, and which ones share a request."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from aiokafka.structs import ConsumerRecord

from reducer.batching import split_batches
from services.sender.loop import EVENT_TYPE_HEADER, ROW_ID_HEADER, OutboundRow, row_from_record, travels_alone

ALF = "codex_accepted_line_fingerprints"


def _record(
    offset: int,
    value: bytes | None = b'{"event_type":"codex_review_event","event_params":{}}',
    headers: Sequence[tuple[str, bytes]] | None = None,
    key: bytes | None = b"thread-1",
) -> ConsumerRecord[bytes, bytes]:
    if headers is None:
        headers = [(ROW_ID_HEADER, f"facts-0-{offset}-0".encode()), (EVENT_TYPE_HEADER, b"codex_review_event")]
    return ConsumerRecord(
        topic="events",
        partition=0,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=len(key or b""),
        serialized_value_size=len(value or b""),
        headers=headers,
    )


def test_a_record_following_the_contract_becomes_a_sendable_row() -> None:
    row = row_from_record(_record(41))

    assert row == OutboundRow(
        offset=41,
        key=b"thread-1",
        value=b'{"event_type":"codex_review_event","event_params":{}}',
        row_id="facts-0-41-0",
        event_type="codex_review_event",
        timestamp_ms=0,  # the record's timestamp: the sender exports the age of its oldest unacknowledged row
    )
    assert row.defect is None
    assert row.thread_id == "thread-1"


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        (_record(1, value=None), "no value"),
        (_record(1, value=b""), "no value"),
        (_record(1, headers=[(EVENT_TYPE_HEADER, b"codex_review_event")]), "'row-id' is missing"),
        (_record(1, headers=[(ROW_ID_HEADER, b"r")]), "'event-type' is missing"),
        (
            _record(1, headers=[(ROW_ID_HEADER, b"\xff\xfe"), (EVENT_TYPE_HEADER, b"x")]),
            "'row-id' is missing or not UTF-8",
        ),
    ],
)
def test_a_record_breaking_the_contract_is_flagged_with_what_is_wrong(
    record: ConsumerRecord[bytes, bytes], problem: str
) -> None:
    row = row_from_record(record)

    assert row.defect is not None
    assert problem in row.defect


def test_malformed_and_accepted_line_rows_travel_alone_and_order_is_kept() -> None:
    records = [
        _record(0),
        _record(1),
        _record(2, headers=[(ROW_ID_HEADER, b"r2"), (EVENT_TYPE_HEADER, ALF.encode())]),
        _record(3, value=None),
        _record(4),
        _record(5),
    ]
    rows = [row_from_record(record) for record in records]

    batches = split_batches(rows, travels_alone, 500, 1024 * 1024, size_of=lambda row: len(row.value))

    assert [[row.offset for row in batch] for batch in batches] == [[0, 1], [2], [3], [4, 5]]
