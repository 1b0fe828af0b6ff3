"""``FactPublisher``: what an app-server embeds to publish analytics facts to Kafka.

``track_*`` calls mirror codex's ``AnalyticsEventsClient``: each builds one fact envelope (the
:class:`~schemas.facts.FactEnvelope` struct, from the app-server's messages, by
:func:`schemas.codec.fact_from_fields`), encodes it with :func:`schemas.codec.encode_fact` and puts it in a
bounded in-memory buffer, without blocking the caller. A background task
drains the buffer into an idempotent aiokafka producer (``acks=all``, optional compression), keyed by
the fact's root thread id (:mod:`.routing`). ``Initialize`` facts go to **every** partition, so each
partition knows every connection. ``close()`` flushes what is buffered.

Unlike codex's queue, nothing is dropped silently: when the buffer is full, or a fact is too large for
one Kafka request, the fact is refused (``track_*`` returns ``False``), counted (``overflows``,
``refused``; the ``on_overflow`` and ``on_refused`` callbacks feed ``services.metrics.PublisherMetrics``) and logged; a
fact Kafka does not acknowledge within ``delivery_timeout_ms`` (default 120 s, retries included) is counted in
``failed`` and logged, and the drain goes on.

A ``track_*`` fact the processor would refuse is refused here already, without blocking: building the
struct applies the processor's own :func:`schemas.codec.decode_fact` (the bounds of :mod:`schemas.bounds`,
the schema), and a fact that cannot even be encoded is refused as ``unencodable``.
A ``track_*`` call whose arguments lack what it reads (a missing key, a wrong type) is refused as
``malformed`` instead of raising into the app-server.
Every refusal is counted by reason in ``refused_by_reason`` (``too_large``, ``unencodable``, ``malformed``
and the ``FactDecodeError`` reasons: ``invalid``, ``too_deep``, ...), reported to the ``on_refused`` callback
and logged (the first of each reason and every 1000th). ``publish_encoded`` does not decode: it
publishes bytes as they are (the demo and the tests use it to inject poison on purpose).
The client-side filters of codex are kept (only analytics-relevant requests, responses and
notifications are published; app-used and plugin-used facts are de-duplicated per turn).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import time
from collections.abc import Callable, Mapping
from typing import Any, Concatenate, Final, ParamSpec

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from schemas.bounds import MAX_ID_CHARS
from schemas.codec import FactDecodeError, encode_fact, fact_from_fields
from schemas.facts import SCHEMA_VERSION, FactEnvelope, Initialize
from schemas.protocol import RequestId
from services.config import KafkaSettings
from services.kafka_errors import check_kafka_access
from services.producer.routing import Router, fallback_key, settles_review

log = structlog.get_logger("publisher")

DEDUPE_MAX_KEYS: Final = 4096
RELEVANT_REQUESTS: Final = frozenset({"turn/start", "turn/steer"})
RELEVANT_RESPONSES: Final = frozenset({"thread/start", "thread/resume", "thread/fork", "turn/start", "turn/steer"})
RELEVANT_NOTIFICATIONS: Final = frozenset(
    {
        "turn/started",
        "turn/completed",
        "turn/diff/updated",
        "item/started",
        "item/completed",
        "item/autoApprovalReview/started",
        "item/autoApprovalReview/completed",
    }
)
APPROVAL_METHODS: Final = frozenset(
    {"item/commandExecution/requestApproval", "item/fileChange/requestApproval", "item/permissions/requestApproval"}
)

_BROADCAST: Final = object()
RECORD_OVERHEAD: Final = 128
DELIVERY_TIMEOUT_MS: Final = 120_000
"""How long a fact may wait for Kafka's acknowledgement (retries included) before it counts as ``failed``: Kafka's
own ``delivery.timeout.ms`` default, long enough for a lost quorum to come back (F11)."""
"""Bytes of a one-record batch besides its key and value (61-byte batch header, record varints), rounded up."""


_P = ParamSpec("_P")


def _refusing_malformed(
    track: Callable[Concatenate[FactPublisher, _P], bool],
) -> Callable[Concatenate[FactPublisher, _P], bool]:
    """A ``track_*`` call whose arguments lack what it reads (a missing key, a wrong type) is refused and
    counted as ``malformed``, like any fact the processor would refuse: it never raises into the app-server."""

    @functools.wraps(track)
    def guarded(self: FactPublisher, /, *args: _P.args, **kwargs: _P.kwargs) -> bool:
        try:
            return track(self, *args, **kwargs)
        except (KeyError, TypeError, AttributeError, ValueError, IndexError) as error:
            return self._refuse("malformed", f"{track.__name__}: {type(error).__name__}: {error}", size=None)

    return guarded


class FactPublisher:
    """Publish facts for one app-server process (``producer_id`` namespaces its connection/request ids)."""

    def __init__(
        self,
        *,
        kafka: KafkaSettings,
        topic: str = "facts",
        producer_id: str,
        buffer_size: int = 10_000,
        compression: str | None = None,
        max_request_size: int = 1024 * 1024,
        on_overflow: Callable[[], None] | None = None,
        on_refused: Callable[[str], None] | None = None,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        linger_ms: int = 5,
        delivery_timeout_ms: int = DELIVERY_TIMEOUT_MS,
    ) -> None:
        if len(producer_id) > MAX_ID_CHARS:
            raise ValueError(f"producer_id of {len(producer_id)} characters (the processor reads {MAX_ID_CHARS})")
        self.topic = topic
        self.producer_id = producer_id
        self.router = Router()
        self.overflows = 0
        self.published = 0
        self.refused = 0
        """Facts refused at ``track_*`` / ``publish_encoded`` time (returns ``False``), counted, logged."""
        self.refused_by_reason: collections.Counter[str] = collections.Counter()
        """``refused`` by reason: ``too_large`` for one Kafka request, ``unencodable``, or the reason of the
        ``FactDecodeError`` the processor would dead-letter the fact with."""
        self.failed = 0
        """Facts Kafka did not acknowledge (after the client's own retries): counted and logged, never silent."""
        self._max_value = max_request_size - RECORD_OVERHEAD
        self._buffer: collections.deque[tuple[object, bytes]] = collections.deque()
        self._buffer_size = buffer_size
        self._on_overflow = on_overflow
        self._on_refused = on_refused
        self._clock_ms = clock_ms
        self._wakeup = asyncio.Event()
        self._kafka = kafka
        self._producer = AIOKafkaProducer(
            **kafka.client_kwargs(client_id=f"publisher-{producer_id}"),
            enable_idempotence=True,
            acks="all",
            compression_type=compression,
            linger_ms=linger_ms,
            max_request_size=max_request_size,
            # aiokafka expires a batch not acknowledged within request_timeout_ms (its default, 40 s, is
            # shorter than a lost quorum and its return: finding F11); this is the window a fact has.
            request_timeout_ms=delivery_timeout_ms,
        )
        self._partitions: list[int] = []
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._app_used: set[tuple[str, str]] = set()
        self._plugin_used: set[tuple[str, str]] = set()

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect. Raises ``services.kafka_errors.KafkaAuthFailed`` (a refused login or certificate) or
        ``KafkaUnreachable`` with a one-line reason, instead of aiokafka's causeless bootstrap error."""
        await check_kafka_access(self._kafka)
        await self._producer.start()
        self._partitions = sorted(await self._producer.partitions_for(self.topic))
        self._task = asyncio.get_running_loop().create_task(self._drain(), name=f"publisher-{self.producer_id}")

    async def close(self) -> None:
        """Send everything buffered, wait for the broker's acknowledgements, stop."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
        await self._producer.stop()

    @property
    def buffered(self) -> int:
        """Facts accepted and not yet handed to the Kafka client (at most ``buffer_size``)."""
        return len(self._buffer)

    async def flush(self) -> None:
        """Wait until everything buffered so far has been acknowledged."""
        while self._buffer:
            self._wakeup.set()
            await asyncio.sleep(0.005)
        await self._producer.flush()

    async def _drain(self) -> None:
        """Move buffered facts to the Kafka client until closed. A send that fails is counted and logged;
        it never stops the drain (which would silently drop every later fact)."""
        pending: list[asyncio.Future[Any]] = []
        while True:
            if not self._buffer:
                await self._settle(pending)
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            key, value = self._buffer.popleft()
            try:
                if key is _BROADCAST:
                    for partition in self._partitions:
                        pending.append(await self._producer.send(self.topic, value, partition=partition))
                else:
                    assert isinstance(key, bytes)
                    pending.append(await self._producer.send(self.topic, value, key=key))
            except KafkaError as error:
                self._failed(error, size=len(value))
                continue
            self.published += 1
            if len(pending) >= 1000:
                await self._settle(pending)

    async def _settle(self, pending: list[asyncio.Future[Any]]) -> None:
        if not pending:
            return
        for outcome in await asyncio.gather(*pending, return_exceptions=True):
            if isinstance(outcome, BaseException):
                self._failed(outcome, size=None)
        pending.clear()

    def _failed(self, error: BaseException, *, size: int | None) -> None:
        self.failed += 1
        log.error("publisher_send_failed", error=repr(error), size=size, failed=self.failed)

    # --- low level -------------------------------------------------------------------------------

    def publish(self, fact: Mapping[str, Any], thread_id: str | None, *, broadcast: bool = False) -> bool:
        """Encode ``fact`` (``{"kind": ..., ...}``) in an envelope and buffer it; ``False`` if the buffer is full."""
        fields = {
            "v": SCHEMA_VERSION,
            "producer": self.producer_id,
            "thread_id": thread_id,
            "observed_at_ms": self._clock_ms(),
            "fact": fact,
        }
        key = _key(thread_id, self.producer_id, broadcast=broadcast)
        try:
            envelope = fact_from_fields(fields)  # the fact struct, by the processor's own rule
        except FactDecodeError as error:
            return self._refuse(error.reason, str(error), size=None)
        except (TypeError, ValueError, OverflowError) as error:  # not JSON-encodable (a lone surrogate, an object)
            return self._refuse("unencodable", str(error), size=None)
        return self.publish_encoded(key, encode_fact(envelope))

    def publish_encoded(self, key: object, value: bytes) -> bool:
        """Buffer an already-encoded envelope as it is. ``key``: bytes, or :data:`BROADCAST` for every partition."""
        if len(value) + (len(key) if isinstance(key, bytes) else 0) > self._max_value:
            return self._refuse("too_large", f"larger than the {self._max_value}-byte request limit", size=len(value))
        if len(self._buffer) >= self._buffer_size:
            self.overflows += 1
            if self._on_overflow is not None:
                self._on_overflow()
            if self.overflows == 1 or self.overflows % 1000 == 0:
                log.warning("publisher_buffer_full", overflows=self.overflows, buffer_size=self._buffer_size)
            return False
        self._buffer.append((key, value))
        self._wakeup.set()
        return True

    def _refuse(self, reason: str, error: str, *, size: int | None) -> bool:
        """Count a refused fact and return ``False``; log the first of each reason and every 1000th."""
        self.refused += 1
        self.refused_by_reason[reason] += 1
        if self._on_refused is not None:
            self._on_refused(reason)
        count = self.refused_by_reason[reason]
        if count == 1 or count % 1000 == 0:
            log.error("publisher_fact_refused", reason=reason, error=error[:500], size=size, count=count)
        return False

    # --- codex client calls ----------------------------------------------------------------------

    @_refusing_malformed
    def track_initialize(
        self,
        connection_id: int,
        params: Mapping[str, Any],
        product_client_id: str,
        runtime: Mapping[str, str],
        rpc_transport: str,
    ) -> bool:
        fact = {
            "kind": "initialize",
            "connection_id": connection_id,
            "params": params,
            "product_client_id": product_client_id,
            "runtime": runtime,
            "rpc_transport": rpc_transport,
        }
        return self.publish(fact, None, broadcast=True)

    @_refusing_malformed
    def track_request(self, connection_id: int, request_id: RequestId, request: Mapping[str, Any]) -> bool:
        """``request`` is ``{"method", "id", "params"}``; only turn/start and turn/steer are published."""
        if request.get("method") not in RELEVANT_REQUESTS:
            return False
        thread = str(request["params"]["threadId"])
        self.router.remember_client_request(connection_id, request_id, thread)
        fact = {"kind": "client_request", "connection_id": connection_id, "request_id": request_id, "request": request}
        return self.publish(fact, self.router.root(thread))

    @_refusing_malformed
    def track_response(self, connection_id: int, request_id: RequestId, response: Mapping[str, Any]) -> bool:
        """``response`` is ``{"method", "id", "response"}``; only thread start/resume/fork and turn start/steer."""
        method = response.get("method")
        if method not in RELEVANT_RESPONSES:
            return False
        if method in ("thread/start", "thread/resume", "thread/fork"):
            thread = response["response"]["thread"]
            self.router.set_parent(str(thread["id"]), _parent_of(thread))
            root: str | None = self.router.root(str(thread["id"]))
        else:
            root = self.router.answer_client_request(connection_id, request_id)
        fact = {
            "kind": "client_response",
            "connection_id": connection_id,
            "request_id": request_id,
            "response": response,
        }
        return self.publish(fact, root)

    @_refusing_malformed
    def track_error_response(
        self, connection_id: int, request_id: RequestId, error: Mapping[str, Any], error_type: str | None
    ) -> bool:
        root = self.router.answer_client_request(connection_id, request_id)
        fact = {
            "kind": "error_response",
            "connection_id": connection_id,
            "request_id": request_id,
            "error": error,
            "error_type": error_type,
        }
        return self.publish(fact, root)

    @_refusing_malformed
    def track_server_request(self, connection_id: int, request: Mapping[str, Any]) -> bool:
        params = request.get("params") or {}
        thread = params.get("threadId")
        root = self.router.root(str(thread)) if thread is not None else None
        if request.get("method") in APPROVAL_METHODS and root is not None:
            self.router.remember_server_request(request["id"], root)
        fact = {"kind": "server_request", "connection_id": connection_id, "request": request}
        return self.publish(fact, root)

    @_refusing_malformed
    def track_server_response(self, completed_at_ms: int, response: Mapping[str, Any]) -> bool:
        root = self.router.answer_server_request(
            response["id"], settles=settles_review("server_response", response.get("method"))
        )
        fact = {"kind": "server_response", "completed_at_ms": completed_at_ms, "response": response}
        return self.publish(fact, root)

    @_refusing_malformed
    def track_effective_permissions_approval_response(
        self, completed_at_ms: int, request_id: RequestId, response: Mapping[str, Any]
    ) -> bool:
        root = self.router.answer_server_request(
            request_id, settles=settles_review("effective_permissions_approval_response")
        )
        fact = {
            "kind": "effective_permissions_approval_response",
            "completed_at_ms": completed_at_ms,
            "request_id": request_id,
            "response": response,
        }
        return self.publish(fact, root)

    @_refusing_malformed
    def track_server_request_aborted(self, completed_at_ms: int, request_id: RequestId) -> bool:
        root = self.router.answer_server_request(request_id, settles=settles_review("server_request_aborted"))
        fact = {"kind": "server_request_aborted", "completed_at_ms": completed_at_ms, "request_id": request_id}
        return self.publish(fact, root)

    @_refusing_malformed
    def track_notification(self, notification: Mapping[str, Any]) -> bool:
        if notification.get("method") not in RELEVANT_NOTIFICATIONS:
            return False
        thread = notification["params"]["threadId"]
        return self.publish({"kind": "notification", "notification": notification}, self.router.root(str(thread)))

    @_refusing_malformed
    def track_subagent_thread_started(self, fact: Mapping[str, Any]) -> bool:
        """``fact``: the ``subagent_thread_started`` payload (``thread_id``, ``parent_thread_id``, ...)."""
        thread = str(fact["thread_id"])
        parent = fact.get("parent_thread_id") or _spawn_parent(fact.get("subagent_source"))
        self.router.set_parent(thread, parent)
        return self.publish({"kind": "subagent_thread_started", **fact}, self.router.root(thread))

    @_refusing_malformed
    def track_custom(self, kind: str, fact: Mapping[str, Any], thread_id: str | None) -> bool:
        """Any other custom fact (compaction, guardian review, turn config, token usage, hooks, plugins...)."""
        if kind == "app_used" and not self._first_use(self._app_used, fact, "connector_id"):
            return False
        if kind == "plugin_used" and not self._first_use(self._plugin_used, fact, "plugin"):
            return False
        root = self.router.root(thread_id) if thread_id is not None else None
        return self.publish({"kind": kind, **fact}, root)

    def _first_use(self, seen: set[tuple[str, str]], fact: Mapping[str, Any], field: str) -> bool:
        """codex's per-turn de-duplication: clear-all at 4096 keys; a null connector is never de-duplicated."""
        turn = str((fact.get("tracking") or {}).get("turn_id", ""))
        if field == "plugin":
            plugin_id = (fact.get("plugin") or {}).get("plugin_id") or {}
            value = f"{plugin_id.get('plugin_name')}@{plugin_id.get('marketplace_name')}"
        else:
            connector = (fact.get("app") or {}).get("connector_id")
            if connector is None:
                return True
            value = str(connector)
        if len(seen) >= DEDUPE_MAX_KEYS:
            seen.clear()
        key = (turn, value)
        if key in seen:
            return False
        seen.add(key)
        return True


BROADCAST: Final = _BROADCAST
"""Pass as ``key`` to :meth:`FactPublisher.publish_encoded` to send to every partition."""


def _key(thread_id: str | None, producer_id: str, *, broadcast: bool) -> object:
    return _BROADCAST if broadcast else (thread_id or fallback_key(producer_id)).encode()


def envelope_key(envelope: FactEnvelope) -> object:
    """The ``key`` :meth:`FactPublisher.publish_encoded` needs to publish ``envelope`` where ``track_*`` would
    have: :data:`BROADCAST` for ``Initialize``, else the envelope's (root) thread id, else the producer's
    fallback key. The envelope's ``thread_id`` is already the family's root (the publisher routed it)."""
    return _key(envelope.thread_id, envelope.producer, broadcast=isinstance(envelope.fact, Initialize))


def _spawn_parent(source: Any) -> str | None:
    if isinstance(source, Mapping):
        spawn = source.get("thread_spawn")
        if isinstance(spawn, Mapping):
            parent = spawn.get("parent_thread_id")
            return str(parent) if parent is not None else None
    return None


def _parent_of(thread: Mapping[str, Any]) -> str | None:
    parent = thread.get("parentThreadId")
    if parent:
        return str(parent)
    source = thread.get("source")
    if isinstance(source, Mapping):
        return _spawn_parent(source.get("subAgent"))
    return None
