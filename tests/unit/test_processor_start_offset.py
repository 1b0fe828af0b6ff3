"""Where a restored partition resumes (finding F6): the committed offset, else the changelog's copy."""

from __future__ import annotations

from aiokafka.structs import TopicPartition

from services.processor.service import _start_offset

TP = TopicPartition("facts", 0)


def test_the_group_committed_offset_wins_when_present() -> None:
    assert _start_offset(TP, 725, 725) == 725


def test_a_missing_committed_offset_falls_back_to_the_changelogs_copy_not_to_zero() -> None:
    assert _start_offset(TP, None, 725) == 725


def test_a_partition_never_processed_starts_from_the_beginning() -> None:
    assert _start_offset(TP, None, None) is None
