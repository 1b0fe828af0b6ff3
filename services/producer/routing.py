"""Routing of facts to Kafka keys (kafka-notes §0), pure and bounded.

The producer sits inside the app-server and sees every fact, so it resolves what a partition cannot:

* every fact of a thread family is keyed by the family's **root** thread id (sub-agents share their
  parent's partition);
* answers that carry no thread id (server responses, aborts, effective-permissions responses, turn
  responses and errors) get the thread of the request they answer; the request is forgotten once
  answered;
* an answer whose request was never seen is keyed by :func:`fallback_key` and counted, so the reducer
  can count it as unknown, as the spec says.

Maps are bounded (oldest entries evicted first) so a producer never grows without limit.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

from schemas.protocol import RequestId

MAX_ENTRIES: Final = 100_000


def fallback_key(producer_id: str) -> str:
    """Key of facts with no routable thread; equals the reducer's family key for ``thread_id=None``."""
    return f"~unrouted/{producer_id}"


class _Bounded(OrderedDict[str, str]):
    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def put(self, key: str, value: str) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)


def _request_key(request_id: RequestId) -> str:
    return f"i{request_id}" if isinstance(request_id, int) else f"s{request_id}"


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
        self._server_requests.put(_request_key(request_id), self.root(thread_id))

    def answer_server_request(self, request_id: RequestId, *, forget: bool = True) -> str | None:
        key = _request_key(request_id)
        root = self._server_requests.pop(key, None) if forget else self._server_requests.get(key)
        if root is None:
            self.unrouted += 1
        return root

    def remember_client_request(self, connection_id: int, request_id: RequestId, thread_id: str) -> None:
        self._client_requests.put(f"{connection_id}/{_request_key(request_id)}", self.root(thread_id))

    def answer_client_request(self, connection_id: int, request_id: RequestId) -> str | None:
        root = self._client_requests.pop(f"{connection_id}/{_request_key(request_id)}", None)
        if root is None:
            self.unrouted += 1
        return root
