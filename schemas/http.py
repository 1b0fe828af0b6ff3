"""The HTTP contract of the analytics endpoint: where rows are POSTed and the body that carries them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

EVENTS_PATH: Final = "/codex/analytics-events/events"
"""Appended to the configured base URL, as codex's ``send_track_events`` does."""

_BODY_PREFIX: Final = b'{"events":['
_BODY_SUFFIX: Final = b"]}"
SEPARATOR: Final = b","
"""Between two rows of a body."""

BODY_OVERHEAD: Final = len(_BODY_PREFIX) + len(_BODY_SUFFIX)
"""Bytes a request body adds around its rows, not counting the commas between them."""


def request_body(rows: Sequence[bytes]) -> bytes:
    """The request body for ``rows``, each already the exact JSON of one row: rows are never re-encoded.

    >>> request_body([b'{"event_type":"a"}', b'{"event_type":"b"}'])
    b'{"events":[{"event_type":"a"},{"event_type":"b"}]}'
    """
    return _BODY_PREFIX + SEPARATOR.join(rows) + _BODY_SUFFIX
