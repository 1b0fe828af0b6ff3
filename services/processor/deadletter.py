"""Dead-letter records for facts that cannot be reduced (Kafka Streams KIP-1034 header style).

The original bytes travel unchanged as the value; headers say why and where they came from. They are
written in the same transaction as the input offsets, so a fact is dead-lettered exactly once and its
partition never blocks.
"""

from __future__ import annotations

from typing import NamedTuple

Headers = list[tuple[str, bytes]]

MAX_ERROR_BYTES = 2048


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
    return DeadLetter(
        key=key,
        value=value,
        headers=[
            ("dlq.reason", reason.encode()),
            ("dlq.exception", type(error).__name__.encode()),
            ("dlq.message", message),
            ("dlq.source.topic", topic.encode()),
            ("dlq.source.partition", str(partition).encode()),
            ("dlq.source.offset", str(offset).encode()),
        ],
    )


def header(headers: Headers | tuple[tuple[str, bytes], ...], name: str) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("utf-8", "replace")
    return None
