"""Dead-letter records: headers say why and where; huge values are cut so the partition never stalls."""

from __future__ import annotations

import hashlib

from reducer.limits import DEFAULT_MAX_RECORD_BYTES
from schemas.headers import header
from services.processor.deadletter import TRUNCATED_PREFIX, dead_letter, record_size


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


def test_a_value_too_large_for_the_record_limit_is_cut_to_the_longest_prefix_that_fits() -> None:
    value = bytes(range(256)) * 5000
    limit = 300_000
    letter = dead_letter(
        key=b"t",
        value=value,
        reason="oversized",
        error=ValueError("too big"),
        topic="facts",
        partition=0,
        offset=7,
        max_bytes=limit,
    )
    assert value.startswith(letter.value)
    assert header(letter.headers, "dlq.value.size") == str(len(value))
    assert header(letter.headers, "dlq.value.sha256") == hashlib.sha256(value).hexdigest()
    assert record_size(letter.key, letter.value, letter.headers) == limit


def test_a_fact_that_fits_the_record_limit_with_its_headers_is_dead_lettered_whole() -> None:
    value = b"x" * (1024 * 1024 + 1024)
    letter = dead_letter(
        key=b"t",
        value=value,
        reason="oversized",
        error=ValueError("big"),
        topic="facts",
        partition=0,
        offset=1,
        max_bytes=2 * 1024 * 1024,
    )
    assert letter.value == value
    assert header(letter.headers, "dlq.value.size") is None


def test_by_default_a_dead_letter_fits_the_record_limit_of_a_broker_with_default_settings() -> None:
    value = b"\xff" * 1_048_370  # accepted by a default facts topic, too large with the dlq.* headers
    letter = dead_letter(
        key=b"t", value=value, reason="undecodable", error=ValueError("x" * 5000), topic="facts", partition=0, offset=1
    )
    assert record_size(letter.key, letter.value, letter.headers) <= DEFAULT_MAX_RECORD_BYTES
    assert header(letter.headers, "dlq.value.size") == str(len(value))


def test_a_huge_key_is_cut_so_that_the_dead_letter_still_fits() -> None:
    key = b"k" * (TRUNCATED_PREFIX * 3)
    letter = dead_letter(
        key=key, value=b"v", reason="invalid", error=ValueError("bad"), topic="facts", partition=0, offset=1
    )
    assert letter.key == key[:TRUNCATED_PREFIX]
    assert letter.value == b"v"
