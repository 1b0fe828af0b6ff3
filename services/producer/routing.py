"""Routing of facts to Kafka keys (kafka-notes §0), pure and bounded.

The producer sits inside the app-server and sees every fact, so it resolves what a partition cannot:

* every fact of a thread family is keyed by the family's **root** thread id (sub-agents share their
  parent's partition);
* answers that carry no thread id (server responses, aborts, effective-permissions responses, turn
  responses and errors) get the thread of the request they answer. A client request is forgotten once
  answered. A server request is forgotten only once an answer that **settles** it has been routed (one
  the reducer acts on, or an abort; :func:`settles_review`): a permissions request is first answered by
  a ``ServerResponse`` the reducer ignores, and then by the effective-permissions response that
  completes the review, which must reach the same partition;
* an answer whose request was never seen is keyed by :func:`fallback_key` and counted, so the reducer
  can count it as unknown, as the spec says.

Maps are bounded (oldest entries evicted first) so a producer never grows without limit.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

from reducer.reviews import SETTLING_RESPONSE_METHODS
from schemas.keys import request_id_key, unrouted_key
from schemas.protocol import RequestId

MAX_ENTRIES: Final = 100_000


def settles_review(kind: str, response_method: str | None = None) -> bool:
    """Whether an answer of fact ``kind`` ends the pending review of the request it answers.

    ``effective_permissions_approval_response`` and ``server_request_aborted`` always do; a
    ``server_response`` only for the methods in :data:`SETTLING_RESPONSE_METHODS`.
    """
    if kind == "server_response":
        return response_method in SETTLING_RESPONSE_METHODS
    return kind in ("effective_permissions_approval_response", "server_request_aborted")


def fallback_key(producer_id: str) -> str:
    """Key of facts with no routable thread; equals the reducer's family key for ``thread_id=None``."""
    return unrouted_key(producer_id)


class _Bounded(OrderedDict[str, str]):
    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def put(self, key: str, value: str) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)


class Router:
    """Thread -> root thread, and pending request -> root thread, for one producer."""

    def __init__(self, limit: int = MAX_ENTRIES) -> None:
        self._parent = _Bounded(limit)
        self._server_requests = _Bounded(limit)
        self._client_requests = _Bounded(limit)
        self.unrouted = 0

    def root(self, thread_id: str) -> str:
        seen = {thread_id}
        while (parent := self._parent.get(thread_id)) is not None and parent not in seen:
            seen.add(parent)
            thread_id = parent
        return thread_id

    def set_parent(self, thread_id: str, parent_thread_id: str | None) -> None:
        if parent_thread_id and parent_thread_id != thread_id:
            self._parent.put(thread_id, parent_thread_id)

    def remember_server_request(self, request_id: RequestId, thread_id: str) -> None:
        self._server_requests.put(request_id_key(request_id), self.root(thread_id))

    def answer_server_request(self, request_id: RequestId, *, settles: bool) -> str | None:
        """Root thread of the server request ``request_id`` answers; forgotten only if the answer ``settles``
        it (:func:`settles_review`), so a later answer that does settle it is still routed. Routes of
        requests never settled are evicted oldest first at the map's limit."""
        key = request_id_key(request_id)
        root = self._server_requests.pop(key, None) if settles else self._server_requests.get(key)
        if root is None:
            self.unrouted += 1
        return root

    def remember_client_request(self, connection_id: int, request_id: RequestId, thread_id: str) -> None:
        self._client_requests.put(f"{connection_id}/{request_id_key(request_id)}", self.root(thread_id))

    def answer_client_request(self, connection_id: int, request_id: RequestId) -> str | None:
        root = self._client_requests.pop(f"{connection_id}/{request_id_key(request_id)}", None)
        if root is None:
            self.unrouted += 1
        return root
