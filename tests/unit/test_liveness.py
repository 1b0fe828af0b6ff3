"""Stall bookkeeping: lag without a commit for ``stall_after_s`` is a stall; time without lag is not."""

from __future__ import annotations

from services.processor.liveness import Changes, StallWatch


def test_a_partition_with_lag_and_no_commit_for_the_bound_is_stalled_once() -> None:
    watch = StallWatch(stall_after_s=10)
    watch.taken(0, offset=5, now=100.0)
    assert watch.check(105.0, lagging={0}) == Changes()
    assert watch.check(110.0, lagging={0}) == Changes(stalled=(0,))
    assert watch.check(120.0, lagging={0}) == Changes()  # reported once per stall
    assert watch.stalled == (0,)
    assert watch.seconds_since_commit(0, 120.0) == 20.0


def test_a_commit_ends_the_stall_and_restarts_the_clock() -> None:
    watch = StallWatch(stall_after_s=10)
    watch.taken(0, offset=5, now=0.0)
    watch.check(11.0, lagging={0})
    watch.committed(0, offset=9, now=12.0)
    assert watch.check(13.0, lagging={0}) == Changes(unstalled=(0,))
    assert watch.check(21.0, lagging={0}) == Changes()
    assert watch.check(22.0, lagging={0}) == Changes(stalled=(0,))
    assert watch.committed_offset(0) == 9
    assert watch.seconds_since_commit(0, 22.0) == 10.0


def test_an_idle_partition_is_never_stalled_and_its_clock_starts_when_lag_appears() -> None:
    watch = StallWatch(stall_after_s=10)
    watch.taken(3, offset=7, now=0.0)
    for now in (5.0, 50.0, 500.0):
        assert watch.check(now, lagging=()) == Changes()
    assert watch.check(505.0, lagging={3}) == Changes()  # lag since 500 s at most
    assert watch.check(511.0, lagging={3}) == Changes(stalled=(3,))


def test_lag_that_goes_away_without_a_commit_ends_the_stall() -> None:
    watch = StallWatch(stall_after_s=10)
    watch.taken(1, offset=0, now=0.0)
    assert watch.check(10.0, lagging={1}) == Changes(stalled=(1,))
    assert watch.check(11.0, lagging=()) == Changes(unstalled=(1,))


def test_a_partition_taken_again_after_a_reset_keeps_its_clock() -> None:
    watch = StallWatch(stall_after_s=10)
    watch.taken(0, offset=5, now=0.0)
    watch.check(4.0, lagging={0})
    watch.taken(0, offset=5, now=8.0)  # a failed transaction, then a reset
    assert watch.check(10.0, lagging={0}) == Changes(stalled=(0,))


def test_a_released_partition_is_forgotten_and_says_whether_it_was_stalled() -> None:
    watch = StallWatch(stall_after_s=1)
    watch.taken(0, offset=0, now=0.0)
    watch.taken(1, offset=0, now=0.0)
    watch.check(2.0, lagging={0})
    assert watch.released(0) is True
    assert watch.released(1) is False
    assert watch.partitions == () and watch.stalled == ()
    assert watch.committed_offset(0) is None
