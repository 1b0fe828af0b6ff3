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
app-server protocol types of :mod:`schemas.protocol` unchanged. Every integer is
:data:`~schemas.bounds.Int64` and every string has a maximum length (:mod:`schemas.bounds`).
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec

from schemas.bounds import MAX_LIST_ITEMS, Id, IdList, Int64, Name, Path, Text
from schemas.events import (
    CompactionImplementation,
    CompactionPhase,
    CompactionReason,
    CompactionStatus,
    CompactionStrategy,
    CompactionTrigger,
    GuardianApprovalRequestSource,
    GuardianReviewDecision,
    GuardianReviewedAction,
    GuardianReviewFailureReason,
    GuardianReviewSessionKind,
    GuardianReviewTerminalStatus,
    InvocationType,
    SkillScope,
    TurnSubmissionType,
)
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


class Fact(msgspec.Struct, kw_only=True, tag_field="kind", gc=False):
    """Base of every fact; the subclass's ``tag`` is its ``kind`` on the wire."""


# --- protocol facts -------------------------------------------------------------------------------


class Initialize(Fact, tag="initialize"):
    connection_id: Int64
    params: InitializeParams
    product_client_id: Name
    runtime: RuntimeMetadata
    rpc_transport: RpcTransport


class ClientRequestFact(Fact, tag="client_request"):
    connection_id: Int64
    request_id: RequestId
    request: ClientRequest


class ClientResponseFact(Fact, tag="client_response"):
    connection_id: Int64
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
    connection_id: Int64
    request_id: RequestId
    error: JsonRpcError
    error_type: AnalyticsJsonRpcError | None = None


class ServerRequestFact(Fact, tag="server_request"):
    connection_id: Int64
    request: ServerRequest


class ServerResponseFact(Fact, tag="server_response"):
    completed_at_ms: Int64
    response: ServerResponse


class EffectivePermissionsApprovalResponseFact(Fact, tag="effective_permissions_approval_response"):
    completed_at_ms: Int64
    request_id: RequestId
    response: RequestPermissionsResponse


class ServerRequestAbortedFact(Fact, tag="server_request_aborted"):
    completed_at_ms: Int64
    request_id: RequestId


class NotificationFact(Fact, tag="notification"):
    notification: ServerNotification


# --- custom facts ---------------------------------------------------------------------------------


class SubAgentThreadStarted(Fact, tag="subagent_thread_started"):
    """A sub-agent thread was spawned in-process (no Initialize of its own)."""

    thread_id: Id
    product_client_id: Name
    client_name: Name
    client_version: Name
    model: Name
    subagent_source: SubAgentSource
    created_at: Int64
    runtime: RuntimeMetadata
    parent_thread_id: Id | None = None
    forked_from_thread_id: Id | None = None
    session_id: Id | None = None
    ephemeral: bool = False


class Compaction(Fact, tag="compaction", kw_only=True):
    """``CustomAnalyticsFact::Compaction(CodexCompactionEvent)``: one finished context compaction.

    Every field is copied to ``codex_compaction_event``; the reducer adds the thread's context.
    ``started_at`` / ``completed_at`` are the producer's unix seconds.
    """

    thread_id: Id
    turn_id: Id
    trigger: CompactionTrigger
    reason: CompactionReason
    implementation: CompactionImplementation
    phase: CompactionPhase
    strategy: CompactionStrategy
    status: CompactionStatus
    error: Text | None = None
    active_context_tokens_before: Int64
    active_context_tokens_after: Int64
    retained_image_count: Int64 | None = None
    compaction_summary_tokens: Int64 | None = None
    started_at: Int64
    completed_at: Int64
    duration_ms: Int64 | None = None


class GuardianReviewFact(Fact, tag="guardian_review", kw_only=True):
    """``CustomAnalyticsFact::GuardianReview(GuardianReviewEventParams)``, flat, as the guardian built it.

    Already in row units: ``started_at`` / ``completed_at`` are unix **seconds** (``*_ms // 1000``),
    ``completion_latency_ms`` is the guardian's own monotonic measurement, ``tool_call_count`` is
    always null in Rust. The reducer adds ``session_id``, ``app_server_client`` and ``runtime``.
    """

    thread_id: Id
    turn_id: Id
    review_id: Id
    target_item_id: Id | None = None
    approval_request_source: GuardianApprovalRequestSource
    reviewed_action: GuardianReviewedAction
    reviewed_action_truncated: bool = False
    decision: GuardianReviewDecision
    terminal_status: GuardianReviewTerminalStatus
    failure_reason: GuardianReviewFailureReason | None = None
    attempt_count: Int64 = 1
    risk_level: Name | None = None
    user_authorization: Name | None = None
    outcome: Name | None = None
    guardian_thread_id: Id | None = None
    guardian_session_kind: GuardianReviewSessionKind | None = None
    guardian_model: Name | None = None
    guardian_reasoning_effort: Name | None = None
    had_prior_review_context: bool | None = None
    review_timeout_ms: Int64
    tool_call_count: Int64 | None = None
    time_to_first_token_ms: Int64 | None = None
    completion_latency_ms: Int64 | None = None
    started_at: Int64
    completed_at: Int64 | None = None
    input_tokens: Int64 | None = None
    cached_input_tokens: Int64 | None = None
    output_tokens: Int64 | None = None
    reasoning_output_tokens: Int64 | None = None
    total_tokens: Int64 | None = None


SandboxPolicyMode = Literal["read_only", "workspace_write", "full_access", "external_sandbox"]


class TurnResolvedConfig(Fact, tag="turn_resolved_config", kw_only=True):
    """``TurnResolvedConfigFact``: the configuration a turn actually ran with.

    Rust reads core enums and derives the row strings; here the producer sends what needs the core
    model already derived, and the reducer keeps Rust's cheap mappings:

    * ``sandbox_policy`` -- derived by the producer from ``permission_profile`` +
      ``permission_profile_cwd`` (Rust ``sandbox_policy_mode``); re-deriving needs the core permission
      model.
    * ``reasoning_effort``, ``reasoning_summary``, ``service_tier``, ``approval_policy``,
      ``approvals_reviewer``, ``personality`` -- the core values' ``Display`` strings (e.g. ``"high"``,
      ``"detailed"``, ``"flex"``, ``"on-request"``, ``"auto_review"``, ``"pragmatic"``). The reducer maps
      ``reasoning_summary`` / ``personality`` ``"none"`` to null and a null ``service_tier`` to
      ``"default"``.
    * ``collaboration_mode`` -- the core ``ModeKind`` value (``"plan"``, ``"default"``,
      ``"pair_programming"``, ``"execute"``); the reducer reports ``"plan"`` or ``"default"``.
    * ``repo_hash`` -- the accepted-lines repo hash, computed by the producer from the turn's cwd
      (``permission_profile_cwd``) with Rust's ``accepted_line_repo_hash_for_cwd`` (git remotes of the
      cwd; ``origin`` else the first; canonicalised URL; ``sha1("file-line-v1\\0repo\\0" + url)``), or
      null when the cwd is not a git repo with a remote. It lives here because Rust derives it from
      this fact's cwd; Rust runs the git lookup when the turn row is emitted, the producer runs it
      when the configuration is resolved.

    ``session_source`` (ignored by the Rust reducer) is not declared; a producer may still send it.
    """

    turn_id: Id
    thread_id: Id
    num_input_images: Int64
    submission_type: TurnSubmissionType | None = None
    ephemeral: bool
    model: Name
    model_provider: Name
    sandbox_policy: SandboxPolicyMode
    reasoning_effort: Name | None = None
    reasoning_summary: Name | None = None
    service_tier: Name | None = None
    approval_policy: Name
    approvals_reviewer: Name
    sandbox_network_access: bool
    collaboration_mode: Name
    personality: Name | None = None
    workspace_kind: Name | None = None
    is_first_turn: bool
    repo_hash: Id | None = None


class CoreTokenUsage(msgspec.Struct, kw_only=True, gc=False):
    """Core ``TokenUsage`` (snake_case); the turn row reads these five counts."""

    input_tokens: Int64
    cached_input_tokens: Int64
    output_tokens: Int64
    reasoning_output_tokens: Int64
    total_tokens: Int64


class TurnTokenUsage(Fact, tag="turn_token_usage"):
    """``TurnTokenUsageFact``: the turn's final token usage."""

    turn_id: Id
    thread_id: Id
    token_usage: CoreTokenUsage


class TurnProfile(msgspec.Struct, kw_only=True, gc=False):
    """Core ``TurnProfile``: where a turn's time went, copied to the turn row."""

    before_first_sampling_ms: Int64
    sampling_ms: Int64
    between_sampling_overhead_ms: Int64
    tool_blocking_ms: Int64
    after_last_sampling_ms: Int64
    sampling_request_count: Int64
    sampling_retry_count: Int64


class TurnProfileFact(Fact, tag="turn_profile"):
    """``TurnProfileFact``: the turn's time profile. At b39f943a6 a turn row waits for it."""

    turn_id: Id
    profile: TurnProfile


CodexErrKind = Literal[
    "turn_aborted",
    "stream",
    "context_window_exceeded",
    "thread_not_found",
    "agent_limit_reached",
    "session_configured_not_first_event",
    "timeout",
    "request_timeout",
    "spawn",
    "interrupted",
    "unexpected_status",
    "invalid_request",
    "invalid_image_request",
    "usage_limit_reached",
    "server_overloaded",
    "cyber_policy",
    "response_stream_failed",
    "connection_failed",
    "quota_exceeded",
    "usage_not_included",
    "internal_server_error",
    "retry_limit",
    "internal_agent_died",
    "sandbox",
    "landlock_sandbox_executable_not_provided",
    "unsupported_operation",
    "refresh_token_failed",
    "fatal",
    "io",
    "json",
    "landlock_ruleset",
    "landlock_path_fd",
    "tokio_join",
    "env_var",
]
"""``CodexErrKind``: the core error's kind, derived by the producer from its ``CodexErr``."""


class TurnCodexErrorFact(Fact, tag="turn_codex_error"):
    """``TurnCodexErrorFact``: the core error that ended a turn (its kind and HTTP status, if any).

    ``error_kind`` is Rust's ``error.kind`` (``kind`` is the fact's tag)."""

    turn_id: Id
    thread_id: Id
    error_kind: CodexErrKind
    http_status_code: Int64 | None = None


class TrackEventsContext(msgspec.Struct, kw_only=True, gc=False):
    """Which model, thread and turn a skill / app / hook / plugin fact belongs to."""

    model_slug: Name
    thread_id: Id
    turn_id: Id


class SkillInvocation(msgspec.Struct, kw_only=True, gc=False):
    """One invoked skill, with the filesystem facts Rust looked up itself already resolved.

    * ``skill_path`` -- the skill file's path **canonicalised by the producer** (``canonicalize``,
      falling back to the path as given when that fails, as Rust does).
    * ``repo_root`` -- the canonicalised git repository root containing the skill, or null.
    * ``repo_url`` -- that repository's remote URL (``collect_git_info(root).repository_url``), or null.

    From these the reducer derives ``skill_id`` with Rust's ``skill_id_for_local_skill`` (pure string
    work and SHA-1).
    """

    skill_name: Name
    skill_scope: SkillScope
    skill_path: Path
    plugin_id: Name | None = None
    invocation_type: InvocationType
    repo_root: Path | None = None
    repo_url: Path | None = None


class SkillInvoked(Fact, tag="skill_invoked"):
    """``SkillInvokedInput``; one ``skill_invocation`` row per invocation.

    ``product_client_id`` is the producer process's originator (Rust ``originator().value``, default
    ``"codex_cli_rs"``), not the connection's client id.
    """

    tracking: TrackEventsContext
    invocations: Annotated[list[SkillInvocation], msgspec.Meta(max_length=MAX_LIST_ITEMS)]
    product_client_id: Name


class AppInvocation(msgspec.Struct, kw_only=True, gc=False):
    connector_id: Id | None = None
    app_name: Name | None = None
    invocation_type: InvocationType | None = None


class AppMentioned(Fact, tag="app_mentioned"):
    """``AppMentionedInput``; one ``codex_app_mentioned`` row per mention. ``product_client_id``: originator."""

    tracking: TrackEventsContext
    mentions: Annotated[list[AppInvocation], msgspec.Meta(max_length=MAX_LIST_ITEMS)]
    product_client_id: Name


class AppUsed(Fact, tag="app_used"):
    """``AppUsedInput`` (already de-duplicated per turn and connector by the producer, as in Rust)."""

    tracking: TrackEventsContext
    app: AppInvocation
    product_client_id: Name


class HookRunDetails(msgspec.Struct, kw_only=True, gc=False):
    """``HookRunFact``.

    ``event_name`` is the analytics name (PascalCase: ``"PreToolUse"``, ``"SessionStart"``, ...) and
    ``hook_source`` the analytics source string (``"user"``, ``"cloud_requirements"``, ...): both are
    forwarded verbatim. ``status`` ``"running"`` is reported as ``"failed"`` (as in Rust).
    """

    event_name: Name
    hook_source: Name
    status: Literal["running", "completed", "failed", "blocked", "stopped"]


class HookRun(Fact, tag="hook_run"):
    tracking: TrackEventsContext
    hook: HookRunDetails


class PluginId(msgspec.Struct, kw_only=True, gc=False):
    plugin_name: Name
    marketplace_name: Name


class PluginCapabilitySummary(msgspec.Struct, kw_only=True, gc=False):
    config_name: Name = ""
    display_name: Name = ""
    description: Text | None = None
    has_skills: bool = False
    mcp_server_names: list[Name] = []
    app_connector_ids: IdList = []


class PluginTelemetryMetadata(msgspec.Struct, kw_only=True, gc=False):
    plugin_id: PluginId
    remote_plugin_id: Id | None = None
    capability_summary: PluginCapabilitySummary | None = None


class PluginUsed(Fact, tag="plugin_used"):
    """``PluginUsedInput`` (already de-duplicated per turn and plugin by the producer, as in Rust)."""

    tracking: TrackEventsContext
    plugin: PluginTelemetryMetadata
    product_client_id: Name


PluginState = Literal["installed", "uninstalled", "enabled", "disabled"]


class PluginStateChanged(Fact, tag="plugin_state_changed"):
    """``PluginStateChangedInput``: ``codex_plugin_<state>``. Not tied to a thread."""

    plugin: PluginTelemetryMetadata
    state: PluginState
    product_client_id: Name


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
    | TurnResolvedConfig
    | TurnTokenUsage
    | TurnProfileFact
    | TurnCodexErrorFact
    | SkillInvoked
    | AppMentioned
    | AppUsed
    | HookRun
    | PluginUsed
    | PluginStateChanged
)


class FactEnvelope(msgspec.Struct, kw_only=True, gc=False):
    """One fact on the wire; see the module docstring for each field."""

    v: Int64
    producer: Id
    thread_id: Id | None
    observed_at_ms: Int64 = 0
    fact: FactKind


class EnvelopeHeader(msgspec.Struct, kw_only=True, gc=False):
    """The version-independent part of an envelope, read only to explain a failed decode."""

    v: int
    producer: str | None = None
    thread_id: str | None = None
