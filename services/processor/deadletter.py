"""Dead-letter records for facts that cannot be reduced (Kafka Streams KIP-1034 header style).

The original bytes travel unchanged as the value; headers say why and where they came from. They are
written in the same transaction as the input offsets, so a fact is dead-lettered exactly once and its
partition never blocks.

Sizes: a dead letter is its fact plus headers, so it can exceed the 1 MiB a fact may have. The
dead-letter topic therefore accepts :data:`DEAD_LETTER_TOPIC_MAX_BYTES` (``setup-topics`` configures it)
and the processor's producer sends requests up to that size. Only a value longer than
:data:`MAX_DEAD_LETTER_VALUE` (a facts topic configured for records over 3 MiB) is cut, to its first
:data:`TRUNCATED_PREFIX` bytes, with the headers ``dlq.value.size`` and ``dlq.value.sha256`` describing
the original: otherwise the transaction would fail on every try and stall the partition for ever.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

Headers = list[tuple[str, bytes]]

MAX_ERROR_BYTES = 2048
DEAD_LETTER_TOPIC_MAX_BYTES = 4 * 1024 * 1024
"""``max.message.bytes`` of the facts dead-letter topic, and the processor producer's request limit."""
MAX_DEAD_LETTER_VALUE = 3 * 1024 * 1024
"""Values up to this size are dead-lettered whole (headers and batch overhead fit in the rest)."""
TRUNCATED_PREFIX = 64 * 1024


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
) -> DeadLetter:
    message = str(error).encode("utf-8", "replace")[:MAX_ERROR_BYTES]
    extra: Headers = []
    if len(value) > MAX_DEAD_LETTER_VALUE:
        extra = [
            ("dlq.value.size", str(len(value)).encode()),
            ("dlq.value.sha256", hashlib.sha256(value).hexdigest().encode()),
        ]
        value = value[:TRUNCATED_PREFIX]
    return DeadLetter(
        key=key if key is None or len(key) <= TRUNCATED_PREFIX else key[:TRUNCATED_PREFIX],
        value=value,
        headers=[
            ("dlq.reason", reason.encode()),
            ("dlq.exception", type(error).__name__.encode()),
            ("dlq.message", message),
            ("dlq.source.topic", topic.encode()),
            ("dlq.source.partition", str(partition).encode()),
            ("dlq.source.offset", str(offset).encode()),
            *extra,
        ],
    )


def header(headers: Headers | tuple[tuple[str, bytes], ...], name: str) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("utf-8", "replace")
    return None
