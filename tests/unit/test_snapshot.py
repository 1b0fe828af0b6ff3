"""``reducer.snapshot``: state to changelog records and back, exactly."""

from __future__ import annotations

import msgspec
import pytest

from reducer import changelog_records, restore, snapshot
from reducer.clock import advance
from reducer.limits import DEFAULT_LIMITS
from schemas.codec import decode_family
from schemas.state import NO_ENTRIES, FamilyState, PartitionState
from tests.support.builders import (
    review_prerequisites,
    run,
    sample_command_approval_request,
    sample_command_item,
    sample_item_started,
    sample_subagent_thread_started,
    sample_thread_response,
    sample_turn_started,
)


def _busy_state() -> PartitionState:
    facts = [
        *review_prerequisites(),
        sample_subagent_thread_started(),
        sample_turn_started(),
        sample_item_started(sample_command_item(status="inProgress")),
        sample_command_approval_request(41, approval_id="approval-1"),
        sample_thread_response("thread-2", request_id="two"),
    ]
    facts[-1].observed_at_ms = 5_000
    state, _ = run(facts)
    advance(state, [fact.observed_at_ms for fact in facts], DEFAULT_LIMITS)
    state.drops["something"] = 3
    return state


def _without_drops(state: PartitionState) -> PartitionState:
    return msgspec.structs.replace(state, drops={})


def test_snapshot_keys_name_families_connections_and_the_watermark() -> None:
    records = snapshot(_busy_state())

    assert sorted(records) == ["c:app-server-1\x1f7", "t:thread-1", "t:thread-2", "w:"]
    assert msgspec.msgpack.decode(records["w:"]) == 5_000


def test_restore_of_a_snapshot_equals_the_state_except_drops() -> None:
    state = _busy_state()

    restored = restore(snapshot(state).items())

    assert restored == _without_drops(state)
    assert restored.drops == {}


def test_later_records_win_and_tombstones_delete() -> None:
    state = _busy_state()
    records: list[tuple[str, bytes | None]] = list(snapshot(PartitionState(watermark_ms=1)).items())
    records += list(snapshot(state).items())
    records += [("t:thread-2", None)]

    restored = restore(records)

    assert sorted(restored.families) == ["thread-1"]
    assert restored.families["thread-1"] == state.families["thread-1"]
    assert restored.watermark_ms == 5_000


def test_an_open_run_of_facts_ahead_of_the_watermark_is_restored_with_it() -> None:
    state = PartitionState(watermark_ms=1_000)
    advance(state, [10**12, 10**12 + 5, 10**12 - 5], DEFAULT_LIMITS)

    restored = restore(snapshot(state).items())

    assert (restored.watermark_ms, restored.ahead_run, restored.ahead_min_ms) == (1_000, 3, 10**12 - 5)


def test_changelog_records_cover_the_dirty_subset_with_tombstones_for_missing_keys() -> None:
    state = _busy_state()
    del state.families["thread-2"]

    records = changelog_records(state, ["thread-1", "thread-2"], ["app-server-1\x1f7", "gone\x1f1"])

    assert [key for key, _ in records] == ["t:thread-1", "t:thread-2", "c:app-server-1\x1f7", "c:gone\x1f1", "w:"]
    assert [value is None for _, value in records] == [False, True, False, True, False]


def test_replaying_changelog_records_after_a_snapshot_tracks_the_live_state() -> None:
    state = _busy_state()
    log: list[tuple[str, bytes | None]] = list(snapshot(state).items())
    state, _ = run([sample_thread_response("thread-3", request_id=3)], state)
    state.families.pop("thread-2")
    log += changelog_records(state, ["thread-3", "thread-2"], [])

    assert restore(log) == _without_drops(state)


def test_unknown_record_prefix_stops_the_restore() -> None:
    with pytest.raises(ValueError, match="no known prefix"):
        restore([("x:thing", b"\x00")])


def test_empty_family_maps_are_the_shared_read_only_value_in_memory_and_after_restore() -> None:
    state = _busy_state()
    restored = restore(snapshot(state).items())
    for current in (state, restored):
        family = current.families["thread-1"]
        assert family.summaries is NO_ENTRIES
        assert family.summaries == {}
    with pytest.raises(TypeError):
        NO_ENTRIES["x"] = 1
    assert NO_ENTRIES == {}
    # An older changelog value spells an empty map as {}: it still decodes (to a dict of its own).
    legacy = msgspec.msgpack.encode({"threads": {}, "turns": {}, "last_seen_ms": 7})
    family = decode_family(legacy)
    assert family == FamilyState(last_seen_ms=7)
