"""The pure parts of ``reset``: what each partition's plan says, the changelog records it writes, its flags."""

from __future__ import annotations

import pytest

from reducer.boundary import PartitionReducer
from reducer.snapshot import snapshot
from schemas.codec import encode_fact
from services.cli import UsageError
from services.processor.partition import INPUT_OFFSET_KEY
from services.reset import PartitionPlan, build_parser, changelog_rewrite
from tests.support.builders import sample_thread_response


@pytest.mark.parametrize(
    ("plan", "action"),
    [
        (PartitionPlan(0, log_start=0, end=10, current=10, target=10), "unchanged"),
        (PartitionPlan(0, log_start=4, end=10, current=10, target=4), "empty state"),
        (PartitionPlan(0, log_start=4, end=10, current=None, target=7), "rebuild state from 3 facts"),
    ],
)
def test_each_plan_names_what_happens_to_the_state(plan: PartitionPlan, action: str) -> None:
    assert plan.action == action


def test_the_rewrite_tombstones_keys_the_new_state_lacks_then_writes_it_and_the_offset() -> None:
    reducer = PartitionReducer(idle_ttl_ms=10**9)
    reducer.run([encode_fact(sample_thread_response("thread-new"))])
    new = snapshot(reducer.state)
    records = changelog_rewrite({"t:thread-old", "w:"}, reducer, 42)
    assert records[0] == (b"t:thread-old", None, None)  # gone from the new state: deleted
    assert {key: value for key, value, _ in records[1:-1]} == {key.encode(): value for key, value in new.items()}
    assert records[-1] == (INPUT_OFFSET_KEY, b"42", None)


def test_a_date_time_without_a_zone_is_utc_and_a_bad_one_is_a_usage_error() -> None:
    args = build_parser().parse_args(["--to-datetime", "2026-01-31T00:00:00"])
    assert args.to_datetime == 1_769_817_600_000
    assert build_parser().parse_args(["--to-datetime", "2026-01-31T01:00:00+01:00"]).to_datetime == 1_769_817_600_000
    with pytest.raises(UsageError, match="not an ISO-8601 date-time"):
        build_parser().parse_args(["--to-datetime", "yesterday"])


def test_exactly_one_target_is_required() -> None:
    with pytest.raises(UsageError, match="one of the arguments --to-earliest --to-latest --to-offset --to-datetime"):
        build_parser().parse_args(["--dry-run"])
