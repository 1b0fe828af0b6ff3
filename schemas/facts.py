"""Analytics facts: what an app-server observed, one tagged struct per kind, inside a versioned envelope.

Wire form (JSON, one fact per Kafka record or per replay line)::

    {"v": 1, "producer": "app-server-7f3a", "thread_id": "thr-1", "observed_at_ms": 1718000000000,
     "fact": {"kind": "server_response", "completed_at_ms": 1042, "response": {...}}}

* ``v`` is the envelope schema version. A reducer refuses versions it does not know with a typed error
  (``schemas.codec.UnsupportedSchemaVersion``) instead of guessing.
* ``producer`` namespaces ids that are unique only inside one app-server process (connection ids and
  server-request ids), so two app-servers never merge each other's state.
* ``thread_id`` is the routing key: the **root** thread of the sub-agent family the fact belongs to.
  Facts that carry no thread id in the protocol get the thread of the request they answer (the
  producer resolves it); ``Initialize`` facts are broadcast to every partition with ``thread_id=None``.
* ``observed_at_ms`` is the producer's wall clock when it recorded the fact. The reducer never reads a
  clock: where the Rust reducer read ``now()`` (turn-steer ``created_at``, idle-state expiry) it uses this.

Fact kinds mirror ``AnalyticsFact`` / ``CustomAnalyticsFact`` of codex-rs/analytics; payloads embed the
app-server protocol types of :mod:`schemas.protocol` unchanged.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec

from schemas.protocol import (
    ClientRequest,
    ClientResponse,
    InitializeParams,
    JsonRpcError,
    RequestId,
    RequestPermissionsResponse,
    RpcTransport,
    RuntimeMetadata,
    ServerNotification,
    ServerRequest,
    ServerResponse,
    SubAgentSource,
)

SCHEMA_VERSION: Final = 1


class Fact(msgspec.Struct, kw_only=True, tag_field="kind"):
    """Base of every fact; the subclass's ``tag`` is its ``kind`` on the wire."""


# --- protocol facts -------------------------------------------------------------------------------


class Initialize(Fact, tag="initialize"):
    connection_id: int
    params: InitializeParams
    product_client_id: str
    runtime: RuntimeMetadata
    rpc_transport: RpcTransport


class ClientRequestFact(Fact, tag="client_request"):
    connection_id: int
    request_id: RequestId
    request: ClientRequest


class ClientResponseFact(Fact, tag="client_response"):
    connection_id: int
    request_id: RequestId
    response: ClientResponse


AnalyticsJsonRpcError = Literal[
    "no_active_turn",
    "expected_turn_mismatch",
    "non_steerable_review",
    "non_steerable_compact",
    "empty_input",
    "input_too_large",
]
"""Pre-classified JSON-RPC error of a failed ``turn/steer`` (the steer event's ``rejection_reason``)."""


class ErrorResponseFact(Fact, tag="error_response"):
    connection_id: int
    request_id: RequestId
    error: JsonRpcError
    error_type: AnalyticsJsonRpcError | None = None


class ServerRequestFact(Fact, tag="server_request"):
    connection_id: int
    request: ServerRequest


class ServerResponseFact(Fact, tag="server_response"):
    completed_at_ms: int
    response: ServerResponse


class EffectivePermissionsApprovalResponseFact(Fact, tag="effective_permissions_approval_response"):
    completed_at_ms: int
    request_id: RequestId
    response: RequestPermissionsResponse


class ServerRequestAbortedFact(Fact, tag="server_request_aborted"):
    completed_at_ms: int
    request_id: RequestId


class NotificationFact(Fact, tag="notification"):
    notification: ServerNotification


# --- custom facts ---------------------------------------------------------------------------------


class SubAgentThreadStarted(Fact, tag="subagent_thread_started"):
    """A sub-agent thread was spawned in-process (no Initialize of its own)."""

    thread_id: str
    product_client_id: str
    client_name: str
    client_version: str
    model: str
    subagent_source: SubAgentSource
    created_at: int
    runtime: RuntimeMetadata
    parent_thread_id: str | None = None
    session_id: str | None = None
    ephemeral: bool = False


class Compaction(Fact, tag="compaction"):
    """``CodexCompactionEvent``: the row's own fields (all but the context ones) travel as-is."""

    thread_id: str
    turn_id: str
    fields: dict[str, Any] = {}


class GuardianReviewFact(Fact, tag="guardian_review"):
    """``GuardianReviewEventParams`` as built by the guardian (snake_case, see schemas.events)."""

    params: dict[str, Any]


FactKind = (
    Initialize
    | ClientRequestFact
    | ClientResponseFact
    | ErrorResponseFact
    | ServerRequestFact
    | ServerResponseFact
    | EffectivePermissionsApprovalResponseFact
    | ServerRequestAbortedFact
    | NotificationFact
    | SubAgentThreadStarted
    | Compaction
    | GuardianReviewFact
)


class FactEnvelope(msgspec.Struct, kw_only=True):
    """One fact on the wire; see the module docstring for each field."""

    v: int
    producer: str
    thread_id: str | None
    observed_at_ms: int = 0
    fact: FactKind


class EnvelopeHeader(msgspec.Struct, kw_only=True):
    """The version-independent part of an envelope, read only to explain a failed decode."""

    v: int
    producer: str | None = None
    thread_id: str | None = None
