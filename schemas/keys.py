"""Keys shared by the publisher (Kafka record keys) and the reducer (state keys).

* A fact with no thread id belongs to the family :func:`unrouted_key` of its producer; the publisher keys
  such a fact (an answer it could not route) with the same string, so it lands where its family lives.
* A request id is typed: ``41`` and ``"41"`` are different requests (:func:`request_id_key`).
"""

from __future__ import annotations

from typing import Final

from schemas.protocol import RequestId

UNROUTED_PREFIX: Final = "~unrouted/"


def unrouted_key(producer: str) -> str:
    """Family key (and record key) of a producer's facts that carry no thread id."""
    return UNROUTED_PREFIX + producer


def request_id_key(request_id: RequestId) -> str:
    """A request id as a key: ``i<n>`` for an integer id, ``s<text>`` for a string id."""
    return f"i{request_id}" if isinstance(request_id, int) else f"s{request_id}"
