"""``reducer.expiry``: idle families expire by fact time, empty families go, and family maps are capped."""

from __future__ import annotations

import pytest

from reducer import enforce_caps, expire
from reducer.clock import advance
from reducer.expiry import FamilyCaps, IdleIndex
from reducer.limits import DEFAULT_LIMITS
from schemas.state import FamilyState, PartitionState, PendingReview, ThreadState
from tests.support.builders import (
    envelope,
    review_prerequisites,
    run,
    sample_command_approval_request,
    sample_initialize,
    sample_server_response,
    sample_thread_response,
)


def _pending(request: int) -> PendingReview:
    return PendingReview(
        thread_id="thread-1",
        turn_id="turn-1",
        item_id=f"item-{request}",
        review_id=f"user:{request}",
        subject_kind="command_execution",
        subject_name="command_execution",
        trigger="initial",
        started_at_ms=1000,
        requested_additional_permissions=False,
        requested_network_access=False,
    )


def _family(last_seen_ms: int) -> FamilyState:
    return FamilyState(threads={"t": ThreadState()}, last_seen_ms=last_seen_ms)


def test_family_idle_for_longer_than_the_ttl_is_evicted_and_returned() -> None:
    state = PartitionState(families={"old": _family(100), "fresh": _family(950)}, watermark_ms=1000)

    assert expire(state, idle_ttl_ms=500) == ["old"]
    assert list(state.families) == ["fresh"]
    assert state.drops == {"expired_idle_family": 1}


def test_family_last_seen_exactly_at_the_cutoff_is_kept() -> None:
    state = PartitionState(families={"edge": _family(500)}, watermark_ms=1000)

    assert expire(state, idle_ttl_ms=500) == []
    assert list(state.families) == ["edge"]


def test_empty_family_is_evicted_even_when_fresh() -> None:
    state = PartitionState(families={"empty": FamilyState(last_seen_ms=1000), "busy": _family(1000)}, watermark_ms=1000)

    assert expire(state, idle_ttl_ms=10_000) == ["empty"]
    assert list(state.families) == ["busy"]
    assert state.drops == {}, "an empty family holds nothing, so evicting it drops nothing"


def test_expiry_uses_fact_time_not_the_wall_clock() -> None:
    # Facts observed at 0 ms (builders' default) stay forever while no later fact moves the watermark.
    state, _ = run(review_prerequisites())

    assert expire(state, idle_ttl_ms=0) == []
    assert list(state.families) == ["thread-1"]


def test_a_later_fact_of_another_family_moves_the_watermark_and_expires_the_idle_one() -> None:
    state, _ = run(review_prerequisites())
    late = sample_thread_response("thread-2", request_id=2)
    late.observed_at_ms = 60_000
    state, _ = run([late], state)
    advance(state, [late.observed_at_ms], DEFAULT_LIMITS)

    assert expire(state, idle_ttl_ms=30_000) == ["thread-1"]
    assert list(state.families) == ["thread-2"]


def test_answer_after_expiry_counts_as_an_unknown_request() -> None:
    state, _ = run([*review_prerequisites(), sample_command_approval_request(41)])
    state.watermark_ms = 10_000
    expire(state, idle_ttl_ms=1_000)

    _, rows = run([sample_server_response(41, "accept")], state)

    assert rows == []
    assert state.drops["unknown_request_id"] == 1


def test_any_fact_of_a_family_refreshes_its_idle_time() -> None:
    hook = envelope(
        {
            "kind": "hook_run",
            "tracking": {"model_slug": "gpt-5", "thread_id": "thread-1", "turn_id": "turn-1"},
            "hook": {"event_name": "Stop", "hook_source": "user", "status": "completed"},
        },
        observed_at_ms=60_000,
    )
    state, _ = run([*review_prerequisites(), sample_command_approval_request(41), hook])

    assert expire(state, idle_ttl_ms=30_000) == []


def test_negative_ttl_is_refused() -> None:
    with pytest.raises(ValueError, match="idle_ttl_ms"):
        expire(PartitionState(), idle_ttl_ms=-1)


def test_an_initialize_broadcast_does_not_keep_its_producers_unrouted_family_alive() -> None:
    broadcast = sample_initialize()
    broadcast.observed_at_ms = 60_000
    unrouted = f"~unrouted/{broadcast.producer}"
    state, _ = run([broadcast], PartitionState(families={unrouted: _family(1_000)}))
    advance(state, [broadcast.observed_at_ms], DEFAULT_LIMITS)

    assert state.families[unrouted].last_seen_ms == 1_000
    assert expire(state, idle_ttl_ms=30_000) == [unrouted]


# --- IdleIndex: the processor's expiry, which must evict exactly what expire() evicts -------------


def test_index_evicts_a_touched_family_that_became_empty_and_leaves_untouched_ones() -> None:
    state = PartitionState(families={"emptied": FamilyState(last_seen_ms=900), "busy": _family(900)}, watermark_ms=1000)
    index = IdleIndex(state)
    assert index.expire(state, 10_000, []) == ["emptied"], "the first call checks every family it was built from"
    state.families["emptied-later"] = FamilyState(last_seen_ms=950)

    assert index.expire(state, 10_000, ["emptied-later"]) == ["emptied-later"]
    assert list(state.families) == ["busy"]
    assert state.drops == {}


def test_index_evicts_an_idle_family_once_the_watermark_passes_it_and_counts_it() -> None:
    state = PartitionState(families={"a": _family(100), "b": _family(400)}, watermark_ms=500)
    index = IdleIndex(state)
    assert index.expire(state, 450, []) == []
    state.families["b"].last_seen_ms = 900  # a fact of "b" arrived
    state.watermark_ms = 1000

    assert index.expire(state, 450, ["b"]) == ["a"]
    state.watermark_ms = 1400
    assert index.expire(state, 450, []) == ["b"]
    assert state.drops == {"expired_idle_family": 2}
    assert len(index) == 0


def test_index_still_expires_a_family_recreated_with_an_older_time_than_its_evicted_self() -> None:
    state = PartitionState(families={"f": FamilyState(last_seen_ms=900)}, watermark_ms=900)
    index = IdleIndex(state)
    assert index.expire(state, 100, []) == ["f"]  # empty: evicted, its heap entry (900) stays behind
    state.families["f"] = _family(700)  # a late fact re-creates it, observed before the old entry
    assert index.expire(state, 300, ["f"]) == []

    state.watermark_ms = 1001
    assert index.expire(state, 300, []) == ["f"], "idle since 700 < 1001 - 300"


def test_caps_evict_the_oldest_inserted_entries_first_and_count_them() -> None:
    family = FamilyState(pending_reviews={f"r{i}": _pending(i) for i in range(5)})
    state = PartitionState(families={"f": family})

    trimmed = enforce_caps(state, ["f"], FamilyCaps(pending_reviews=2))

    assert trimmed == ["f"]
    assert list(family.pending_reviews) == ["r3", "r4"]
    assert state.drops == {"cap_evicted:pending_reviews": 3}


def test_caps_leave_families_within_bounds_and_unknown_keys_alone() -> None:
    family = FamilyState(started_at_ms={"a": 1, "b": 2})
    state = PartitionState(families={"f": family})

    assert enforce_caps(state, ["f", "missing"], FamilyCaps(started_at_ms=2)) == []
    assert family.started_at_ms == {"a": 1, "b": 2}
    assert state.drops == {}


def test_caps_apply_to_every_family_map() -> None:
    family = FamilyState(
        threads={"t1": ThreadState(), "t2": ThreadState()},
        started_at_ms={"a": 1, "b": 2},
        summaries={},
    )
    state = PartitionState(families={"f": family})

    enforce_caps(state, ["f"], FamilyCaps(threads=1, started_at_ms=1))

    assert list(family.threads) == ["t2"]
    assert list(family.started_at_ms) == ["b"]
    assert state.drops == {"cap_evicted:threads": 1, "cap_evicted:started_at_ms": 1}


def test_overwritten_pending_review_keeps_its_original_age() -> None:
    state, _ = run(
        [
            *review_prerequisites(),
            sample_command_approval_request(1, item_id="a"),
            sample_command_approval_request(2, item_id="b"),
            sample_command_approval_request(1, item_id="a2"),
        ]
    )

    enforce_caps(state, ["thread-1"], FamilyCaps(pending_reviews=1))

    assert [review.item_id for review in state.families["thread-1"].pending_reviews.values()] == ["b"]
