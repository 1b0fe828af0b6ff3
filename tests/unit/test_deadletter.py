"""Dead-letter records: headers say why and where; huge values are cut so the partition never stalls."""

from __future__ import annotations

import hashlib

from services.processor.deadletter import (
    DEAD_LETTER_TOPIC_MAX_BYTES,
    MAX_DEAD_LETTER_VALUE,
    TRUNCATED_PREFIX,
    dead_letter,
    header,
)


def test_dead_letter_keeps_the_original_bytes_and_names_reason_exception_and_source() -> None:
    letter = dead_letter(
        key=b"thread-1",
        value=b"not json",
        reason="undecodable",
        error=ValueError("boom"),
        topic="facts",
        partition=3,
        offset=41,
    )
    assert letter.value == b"not json"
    assert letter.key == b"thread-1"
    assert header(letter.headers, "dlq.reason") == "undecodable"
    assert header(letter.headers, "dlq.exception") == "ValueError"
    assert header(letter.headers, "dlq.message") == "boom"
    assert (header(letter.headers, "dlq.source.topic"), header(letter.headers, "dlq.source.partition")) == (
        "facts",
        "3",
    )
    assert header(letter.headers, "dlq.source.offset") == "41"
    assert header(letter.headers, "dlq.value.size") is None


def test_a_value_too_large_for_the_dead_letter_topic_is_cut_and_described_by_size_and_digest() -> None:
    value = bytes(range(256)) * (MAX_DEAD_LETTER_VALUE // 256 + 10)
    letter = dead_letter(
        key=None, value=value, reason="oversized", error=ValueError("too big"), topic="facts", partition=0, offset=7
    )
    assert letter.value == value[:TRUNCATED_PREFIX]
    assert header(letter.headers, "dlq.value.size") == str(len(value))
    assert header(letter.headers, "dlq.value.sha256") == hashlib.sha256(value).hexdigest()
    assert len(letter.value) + sum(len(k) + len(v) for k, v in letter.headers) < DEAD_LETTER_TOPIC_MAX_BYTES


def test_a_fact_at_the_fact_size_limit_is_dead_lettered_whole() -> None:
    value = b"x" * (1024 * 1024 + 1024)
    letter = dead_letter(
        key=b"t", value=value, reason="oversized", error=ValueError("big"), topic="facts", partition=0, offset=1
    )
    assert letter.value == value
    assert header(letter.headers, "dlq.value.size") is None
