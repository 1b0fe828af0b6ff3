"""Folding changelog records as they are read (``reducer.snapshot.keep_latest``, what a restore does to keep
its memory bounded by the keys) gives what folding the whole log at once gives, order included."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reducer.snapshot import CONNECTION_PREFIX, FAMILY_PREFIX, WATERMARK_KEY, keep_latest

keys = st.sampled_from([f"{FAMILY_PREFIX}a", f"{FAMILY_PREFIX}b", f"{CONNECTION_PREFIX}c", WATERMARK_KEY, "t:d"])
records = st.lists(st.tuples(keys, st.one_of(st.none(), st.binary(min_size=1, max_size=3))), max_size=40)


def fold(items: list[tuple[str, bytes | None]]) -> list[tuple[str, bytes | None]]:
    latest: dict[str, bytes | None] = {}
    for key, value in items:
        keep_latest(latest, key, value)
    return list(latest.items())


@given(records, st.integers(min_value=0, max_value=40))
def test_folding_in_two_reads_equals_folding_the_whole_log(log: list[tuple[str, bytes | None]], cut: int) -> None:
    first, second = log[:cut], log[cut:]
    assert fold(fold(first) + second) == fold(log)


@given(records)
def test_folding_a_folded_log_changes_nothing(log: list[tuple[str, bytes | None]]) -> None:
    assert fold(fold(log)) == fold(log)


@given(records)
def test_the_fold_holds_each_key_once_with_its_last_value(log: list[tuple[str, bytes | None]]) -> None:
    folded = dict(fold(log))
    assert folded == {key: value for key, value in log}
