"""Dead-letter records for facts that cannot be reduced (Kafka Streams KIP-1034 header style).

The original bytes travel unchanged as the value; headers say why and where they came from (the
dead-letter vocabulary both dead-letter topics share is :mod:`schemas.headers`). They are
written in the same transaction as the input offsets, so a fact is dead-lettered exactly once and its
partition never blocks.

Sizes: a dead letter is its fact plus headers, and the broker must accept it, or the transaction fails
on every try and stalls the partition for ever. :func:`dead_letter` therefore keeps key + value + headers
within ``max_bytes``: the processor passes ``Limits.max_record_bytes``, the record size every topic it
writes accepts, read from the broker at start (:mod:`.broker_limits`). A fact too large for that is
dead-lettered cut: the longest prefix that fits, with the headers ``dlq.value.size`` and
``dlq.value.sha256`` describing the original (a key over :data:`TRUNCATED_PREFIX` bytes is cut too).
The dead-letter topic itself is created accepting :data:`schemas.topics.DEAD_LETTER_TOPIC_MAX_BYTES` (``setup-topics``),
so it is never the smallest of those limits by default.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

from reducer.limits import DEFAULT_MAX_RECORD_BYTES
from schemas.headers import (
    DLQ_EXCEPTION,
    DLQ_MESSAGE,
    DLQ_REASON,
    DLQ_VALUE_SHA256,
    DLQ_VALUE_SIZE,
    Headers,
    source_headers,
)

MAX_ERROR_BYTES = 2048
TRUNCATED_PREFIX = 64 * 1024
"""Longest key a dead letter carries whole."""


class DeadLetter(NamedTuple):
    key: bytes | None
    value: bytes
    headers: Headers


def dead_letter(
    *,
    key: bytes | None,
    value: bytes,
    reason: str,
    error: BaseException,
    topic: str,
    partition: int,
    offset: int,
    max_bytes: int = DEFAULT_MAX_RECORD_BYTES,
) -> DeadLetter:
    """The dead letter of one fact, at most ``max_bytes`` (key + value + headers); see the module docstring."""
    message = str(error).encode("utf-8", "replace")[:MAX_ERROR_BYTES]
    headers: Headers = [
        (DLQ_REASON, reason.encode()),
        (DLQ_EXCEPTION, type(error).__name__.encode()),
        (DLQ_MESSAGE, message),
        *source_headers(topic, partition, offset),
    ]
    if key is not None and len(key) > TRUNCATED_PREFIX:
        key = key[:TRUNCATED_PREFIX]
    if record_size(key, value, headers) > max_bytes:
        headers += [
            (DLQ_VALUE_SIZE, str(len(value)).encode()),
            (DLQ_VALUE_SHA256, hashlib.sha256(value).hexdigest().encode()),
        ]
        value = value[: max(0, max_bytes - record_size(key, b"", headers))]
    return DeadLetter(key=key, value=value, headers=headers)


def record_size(key: bytes | None, value: bytes | None, headers: Headers | None) -> int:
    """Key + value + header names and values of one record: what ``Limits.max_record_bytes`` bounds."""
    size = (len(key) if key is not None else 0) + (len(value) if value is not None else 0)
    for name, header_value in headers or ():
        size += len(name.encode()) + len(header_value)
    return size
