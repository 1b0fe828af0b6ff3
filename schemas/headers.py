"""Record headers: the only place that spells them.

Rows on ``events`` (written by the processor, read by the sender):

=================  ===================================================================================
``row-id``         the row's deterministic id, ``<input topic>-<partition>-<offset>-<n>``; the sender's
                   idempotency key is a hash of the ids of the rows in a request
``event-type``     the row's ``event_type`` (decides whether it travels alone)
=================  ===================================================================================

Dead letters, on both dead-letter topics (``facts.dlq`` written by the processor, ``events.dlq`` written
by the sender): the original key and value, unchanged, and these headers (Kafka Streams KIP-1034 style,
all under :data:`DLQ_PREFIX`, so ``replay-dlq`` can strip them and keep the record's own headers, such as
a row's ``row-id`` and ``event-type``):

========================  ==============  ===================================================================
header                    written by      value
========================  ==============  ===================================================================
``dlq.reason``            both            why (a stable word: the processor's reasons are listed in
                                          :mod:`reducer.boundary` and :mod:`schemas.codec`; the sender's are
                                          ``rejected``, ``payload_too_large``, ``malformed_record``)
``dlq.source.topic``      both            the topic the record was read from
``dlq.source.partition``  both            its partition
``dlq.source.offset``     both            its offset
``dlq.exception``         processor       the exception's class name
``dlq.message``           both            the exception's message (processor); what is wrong with a
                                          malformed row (sender); at most 2 KiB
``dlq.value.size``        processor       the original value's size, when the value was cut to fit
``dlq.value.sha256``      processor       the original value's SHA-256 (hex), when the value was cut
``dlq.http.status``       sender          the HTTP status of the endpoint's refusal
``dlq.http.response``     sender          the start of the endpoint's response body, at most 1 KiB
========================  ==============  ===================================================================
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

ROW_ID_HEADER: Final = "row-id"
EVENT_TYPE_HEADER: Final = "event-type"

DLQ_PREFIX: Final = "dlq."
"""Every dead-letter header starts with it; ``replay-dlq`` drops these and keeps the record's own headers."""
DLQ_REASON: Final = "dlq.reason"
DLQ_SOURCE_TOPIC: Final = "dlq.source.topic"
DLQ_SOURCE_PARTITION: Final = "dlq.source.partition"
DLQ_SOURCE_OFFSET: Final = "dlq.source.offset"
DLQ_EXCEPTION: Final = "dlq.exception"
"""Processor only: the class name of the exception that refused the fact."""
DLQ_MESSAGE: Final = "dlq.message"
DLQ_VALUE_SIZE: Final = "dlq.value.size"
DLQ_VALUE_SHA256: Final = "dlq.value.sha256"
DLQ_HTTP_STATUS: Final = "dlq.http.status"
"""Sender only, like :data:`DLQ_HTTP_RESPONSE`: what the endpoint answered."""
DLQ_HTTP_RESPONSE: Final = "dlq.http.response"

Headers = list[tuple[str, bytes]]


def header(headers: Iterable[tuple[str, bytes]] | None, name: str) -> str | None:
    """The first header ``name`` as text (invalid UTF-8 replaced), or ``None``."""
    for key, value in headers or ():
        if key == name:
            return bytes(value).decode("utf-8", "replace")
    return None


def source_headers(topic: str, partition: int, offset: int) -> Headers:
    """The ``dlq.source.*`` headers of a record read at ``topic``/``partition``/``offset``."""
    return [
        (DLQ_SOURCE_TOPIC, topic.encode()),
        (DLQ_SOURCE_PARTITION, str(partition).encode()),
        (DLQ_SOURCE_OFFSET, str(offset).encode()),
    ]
