"""Analytics rows as the analytics endpoint receives them (codex-rs/analytics ``events.rs`` wire shapes).

Every row is ``{"event_type": "<name>", "event_params": {...}}``: a ``Row`` subclass whose msgspec tag
is the literal event type. Field order is declaration order and equals the Rust serialisation order;
optional fields have no defaults and are always written (``null`` when absent), exactly like serde
without ``skip_serializing_if``. Rust's ``#[serde(flatten)]`` bases become struct inheritance (base
fields first, then the subclass's).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from schemas.bounds import Id, Int64, Name, Path, check_free_form
from schemas.protocol import RpcTransport, RuntimeMetadata


class AppServerClient(msgspec.Struct, kw_only=True, gc=False):
    product_client_id: str
    client_name: str | None
    client_version: str | None
    rpc_transport: RpcTransport
    experimental_api_enabled: bool | None


ReviewSubjectKind = Literal["command_execution", "file_change", "mcp_tool_call", "permissions", "network_access"]
Reviewer = Literal["guardian", "user"]
ReviewTrigger = Literal["initial", "sandbox_denial", "network_policy_denial", "execve_intercept"]
ReviewStatus = Literal["approved", "denied", "aborted", "timed_out"]
ReviewResolution = Literal["none", "session_approval", "exec_policy_amendment", "network_policy_amendment"]
FinalApprovalOutcome = Literal[
    "unknown",
    "not_needed",
    "config_allowed",
    "policy_forbidden",
    "guardian_approved",
    "guardian_denied",
    "guardian_aborted",
    "user_approved",
    "user_approved_for_session",
    "user_denied",
    "user_aborted",
]
ToolItemTerminalStatus = Literal["completed", "failed", "rejected", "interrupted"]
ToolItemFailureKind = Literal[
    "tool_error", "approval_denied", "approval_aborted", "sandbox_denied", "policy_forbidden"
]
WebSearchActionKind = Literal["search", "open_page", "find_in_page", "other"]
ThreadInitializationMode = Literal["new", "forked", "resumed"]


class Row(msgspec.Struct, kw_only=True, tag_field="event_type", gc=False):
    """Base of every row; ``event_type`` is the subclass's tag."""


# --- codex_review_event ---------------------------------------------------------------------------


class ReviewEventParams(msgspec.Struct, kw_only=True, gc=False):
    thread_id: str
    turn_id: str
    item_id: str | None
    review_id: str
    app_server_client: AppServerClient
    runtime: RuntimeMetadata
    thread_source: str | None
    subagent_source: str | None
    parent_thread_id: str | None
    subject_kind: ReviewSubjectKind
    subject_name: str
    reviewer: Reviewer
    trigger: ReviewTrigger
    status: ReviewStatus
    resolution: ReviewResolution
    started_at_ms: int
    completed_at_ms: int
    duration_ms: int | None


class ReviewEvent(Row, tag="codex_review_event"):
    event_params: ReviewEventParams


# --- terminal tool-item rows ----------------------------------------------------------------------


class ToolItemEventBase(msgspec.Struct, kw_only=True, gc=False):
    """``CodexToolItemEventBase``, flattened into every tool-item row's params."""

    thread_id: str
    turn_id: str
    item_id: str
    app_server_client: AppServerClient
    runtime: RuntimeMetadata
    thread_source: str | None
    subagent_source: str | None
    parent_thread_id: str | None
    tool_name: str
    started_at_ms: int
    completed_at_ms: int
    duration_ms: int | None
    execution_duration_ms: int | None
    review_count: int
    guardian_review_count: int
    user_review_count: int
    final_approval_outcome: FinalApprovalOutcome
    terminal_status: ToolItemTerminalStatus
    failure_kind: ToolItemFailureKind | None
    requested_additional_permissions: bool
    requested_network_access: bool


class CommandExecutionEventParams(ToolItemEventBase, kw_only=True):
    command_execution_source: str
    exit_code: int | None
    command_total_action_count: int
    command_read_action_count: int
    command_list_files_action_count: int
    command_search_action_count: int
    command_unknown_action_count: int


class CommandExecutionEvent(Row, tag="codex_command_execution_event"):
    event_params: CommandExecutionEventParams


class FileChangeEventParams(ToolItemEventBase, kw_only=True):
    file_change_count: int
    file_add_count: int
    file_update_count: int
    file_delete_count: int
    file_move_count: int


class FileChangeEvent(Row, tag="codex_file_change_event"):
    event_params: FileChangeEventParams


class McpToolCallEventParams(ToolItemEventBase, kw_only=True):
    mcp_server_name: str
    mcp_tool_name: str
    mcp_error_present: bool


class McpToolCallEvent(Row, tag="codex_mcp_tool_call_event"):
    event_params: McpToolCallEventParams


class DynamicToolCallEventParams(ToolItemEventBase, kw_only=True):
    dynamic_tool_name: str
    success: bool | None
    output_content_item_count: int | None
    output_text_item_count: int | None
    output_image_item_count: int | None


class DynamicToolCallEvent(Row, tag="codex_dynamic_tool_call_event"):
    event_params: DynamicToolCallEventParams


class CollabAgentToolCallEventParams(ToolItemEventBase, kw_only=True):
    sender_thread_id: str
    receiver_thread_count: int
    receiver_thread_ids: list[str] | None
    requested_model: str | None
    requested_reasoning_effort: str | None
    agent_state_count: int | None
    completed_agent_count: int | None
    failed_agent_count: int | None


class CollabAgentToolCallEvent(Row, tag="codex_collab_agent_tool_call_event"):
    event_params: CollabAgentToolCallEventParams


class WebSearchEventParams(ToolItemEventBase, kw_only=True):
    web_search_action: WebSearchActionKind | None
    query_present: bool
    query_count: int | None


class WebSearchEvent(Row, tag="codex_web_search_event"):
    event_params: WebSearchEventParams


class ImageGenerationEventParams(ToolItemEventBase, kw_only=True):
    revised_prompt_present: bool
    saved_path_present: bool


class ImageGenerationEvent(Row, tag="codex_image_generation_event"):
    event_params: ImageGenerationEventParams


# --- thread lifecycle -----------------------------------------------------------------------------


class ThreadInitializedEventParams(msgspec.Struct, kw_only=True, gc=False):
    thread_id: str
    session_id: str | None
    app_server_client: AppServerClient
    runtime: RuntimeMetadata
    model: str
    ephemeral: bool
    thread_source: str | None
    initialization_mode: ThreadInitializationMode
    subagent_source: str | None
    parent_thread_id: str | None
    forked_from_thread_id: str | None
    created_at: int


class ThreadInitializedEvent(Row, tag="codex_thread_initialized"):
    event_params: ThreadInitializedEventParams


# --- turns ----------------------------------------------------------------------------------------

TurnSubmissionType = Literal["default", "queued"]
TurnEventStatus = Literal["completed", "failed", "interrupted"]
TurnSteerResult = Literal["accepted", "rejected"]
TurnSteerRejectionReason = Literal[
    "no_active_turn",
    "expected_turn_mismatch",
    "non_steerable_review",
    "non_steerable_compact",
    "empty_input",
    "input_too_large",
]


class TurnEventParams(msgspec.Struct, kw_only=True, gc=False):
    """``CodexTurnEventParams`` at b39f943a6 (53 keys: ``workspace_kind``, the core error, the time profile).

    ``model``, ``sandbox_policy``, ``collaboration_mode``, ``steer_count``, the tool counts and
    ``completed_at`` are ``Option`` in Rust but always set by the reducer. ``turn_error`` is the
    app-server ``CodexErrorInfo`` JSON verbatim (camelCase, e.g. ``"badRequest"``).
    """

    thread_id: str
    session_id: str | None
    turn_id: str
    submission_type: TurnSubmissionType | None
    app_server_client: AppServerClient
    runtime: RuntimeMetadata
    ephemeral: bool
    thread_source: str | None
    initialization_mode: ThreadInitializationMode
    subagent_source: str | None
    parent_thread_id: str | None
    model: str | None
    model_provider: str
    sandbox_policy: str | None
    reasoning_effort: str | None
    reasoning_summary: str | None
    service_tier: str
    approval_policy: str
    approvals_reviewer: str
    sandbox_network_access: bool
    collaboration_mode: str | None
    personality: str | None
    workspace_kind: str | None
    num_input_images: int
    is_first_turn: bool
    status: TurnEventStatus | None
    turn_error: Any
    codex_error_kind: str | None
    codex_error_http_status_code: int | None
    steer_count: int | None
    total_tool_call_count: int | None
    shell_command_count: int | None
    file_change_count: int | None
    mcp_tool_call_count: int | None
    dynamic_tool_call_count: int | None
    subagent_tool_call_count: int | None
    web_search_count: int | None
    image_generation_count: int | None
    input_tokens: int | None
    cached_input_tokens: int | None
    output_tokens: int | None
    reasoning_output_tokens: int | None
    total_tokens: int | None
    before_first_sampling_ms: int
    sampling_ms: int
    between_sampling_overhead_ms: int
    tool_blocking_ms: int
    after_last_sampling_ms: int
    sampling_request_count: int
    sampling_retry_count: int
    duration_ms: int | None
    started_at: int | None
    completed_at: int | None


class TurnEvent(Row, tag="codex_turn_event"):
    event_params: TurnEventParams


class TurnSteerEventParams(msgspec.Struct, kw_only=True, gc=False):
    thread_id: str
    session_id: str | None
    expected_turn_id: str | None
    accepted_turn_id: str | None
    app_server_client: AppServerClient
    runtime: RuntimeMetadata
    thread_source: str | None
    subagent_source: str | None
    parent_thread_id: str | None
    num_input_images: int
    result: TurnSteerResult
    rejection_reason: TurnSteerRejectionReason | None
    created_at: int


class TurnSteerEvent(Row, tag="codex_turn_steer_event"):
    event_params: TurnSteerEventParams


class AcceptedLineFingerprint(msgspec.Struct, kw_only=True, gc=False):
    path_hash: str
    line_hash: str


ACCEPTED_LINE_FINGERPRINTS_PARAMS_EVENT_TYPE = "codex.accepted_line_fingerprints"
"""The literal ``event_params.event_type`` of ``codex_accepted_line_fingerprints`` rows."""


class AcceptedLineFingerprintsEventParams(msgspec.Struct, kw_only=True, gc=False):
    """``line_fingerprints`` is always empty at the PR-era baseline (counts only are uploaded)."""

    event_type: str
    turn_id: str
    thread_id: str
    product_surface: str | None
    model_slug: str | None
    completed_at: int
    repo_hash: str | None
    accepted_added_lines: int
    accepted_deleted_lines: int
    line_fingerprints: list[AcceptedLineFingerprint]


class AcceptedLineFingerprintsEvent(Row, tag="codex_accepted_line_fingerprints"):
    """The only row sent in its own HTTP request (see :data:`ISOLATED_EVENT_TYPES`)."""

    event_params: AcceptedLineFingerprintsEventParams


# --- compaction -----------------------------------------------------------------------------------

CompactionTrigger = Literal["manual", "auto"]
CompactionReason = Literal["user_requested", "context_limit", "model_downshift"]
CompactionImplementation = Literal["responses", "responses_compact", "responses_compaction_v2"]
CompactionPhase = Literal["standalone_turn", "pre_turn", "mid_turn"]
CompactionStrategy = Literal["memento", "prefix_compaction"]
CompactionStatus = Literal["completed", "failed", "interrupted"]


class CompactionEventParams(msgspec.Struct, kw_only=True, gc=False):
    thread_id: str
    session_id: str | None
    turn_id: str
    app_server_client: AppServerClient
    runtime: RuntimeMetadata
    thread_source: str | None
    subagent_source: str | None
    parent_thread_id: str | None
    trigger: CompactionTrigger
    reason: CompactionReason
    implementation: CompactionImplementation
    phase: CompactionPhase
    strategy: CompactionStrategy
    status: CompactionStatus
    error: str | None
    active_context_tokens_before: int
    active_context_tokens_after: int
    retained_image_count: int | None
    compaction_summary_tokens: int | None
    started_at: int
    completed_at: int
    duration_ms: int | None


class CompactionEvent(Row, tag="codex_compaction_event"):
    event_params: CompactionEventParams


# --- guardian review (custom fact) ----------------------------------------------------------------

GuardianApprovalRequestSource = Literal["main_turn", "delegated_subagent"]
GuardianReviewDecision = Literal["approved", "denied", "aborted"]
GuardianReviewTerminalStatus = Literal["approved", "denied", "aborted", "timed_out", "failed_closed"]
GuardianReviewFailureReason = Literal["timeout", "cancelled", "prompt_build_error", "session_error", "parse_error"]
GuardianReviewSessionKind = Literal["trunk_new", "trunk_reused", "ephemeral_forked"]
SandboxPermissions = Literal["use_default", "require_escalated", "with_additional_permissions"]


class _ReviewedAction(msgspec.Struct, kw_only=True, tag_field="type", gc=False):
    """``GuardianReviewedAction``: internally tagged by ``type`` with snake_case tags.

    Decoded from the guardian review fact and copied into its row as is, so its fields carry the bounds of
    :mod:`schemas.bounds`; the free-form ``additional_permissions`` is checked by ``__post_init__``.
    """


class ShellReviewedAction(_ReviewedAction, tag="shell"):
    sandbox_permissions: SandboxPermissions
    additional_permissions: Any = None
    """Core ``AdditionalPermissionProfile`` JSON, forwarded verbatim (its exact shape is unverified)."""

    def __post_init__(self) -> None:
        check_free_form(self.additional_permissions, "additional_permissions")


class UnifiedExecReviewedAction(_ReviewedAction, tag="unified_exec"):
    sandbox_permissions: SandboxPermissions
    additional_permissions: Any = None
    tty: bool = False

    def __post_init__(self) -> None:
        check_free_form(self.additional_permissions, "additional_permissions")


class ExecveReviewedAction(_ReviewedAction, tag="execve"):
    source: Name
    """Core ``GuardianCommandSource``: ``"shell"`` or ``"unified_exec"`` (inferred, kept open)."""
    program: Path
    additional_permissions: Any = None

    def __post_init__(self) -> None:
        check_free_form(self.additional_permissions, "additional_permissions")


class ApplyPatchReviewedAction(_ReviewedAction, tag="apply_patch"):
    pass


class NetworkAccessReviewedAction(_ReviewedAction, tag="network_access"):
    """No ``target`` / ``host`` (asserted absent by the Rust test)."""

    protocol: Name
    """Core ``NetworkApprovalProtocol``; only ``"https"`` is test-verified, so the value is kept open."""
    port: Int64


class McpToolCallReviewedAction(_ReviewedAction, tag="mcp_tool_call"):
    server: Name
    tool_name: Name
    connector_id: Id | None = None
    connector_name: Name | None = None
    tool_title: Name | None = None


class RequestPermissionsReviewedAction(_ReviewedAction, tag="request_permissions"):
    pass


GuardianReviewedAction = (
    ShellReviewedAction
    | UnifiedExecReviewedAction
    | ExecveReviewedAction
    | ApplyPatchReviewedAction
    | NetworkAccessReviewedAction
    | McpToolCallReviewedAction
    | RequestPermissionsReviewedAction
)


class GuardianReviewEventParams(msgspec.Struct, kw_only=True, gc=False):
    """``GuardianReviewEventPayload``: context first, then ``GuardianReviewEventParams`` flattened.

    ``risk_level``, ``user_authorization`` and ``outcome`` are core enums whose serialisations were
    not read (lowercase inferred), so they are forwarded as the strings the producer sends.
    """

    session_id: str | None
    app_server_client: AppServerClient
    runtime: RuntimeMetadata
    thread_id: str
    turn_id: str
    review_id: str
    target_item_id: str | None
    approval_request_source: GuardianApprovalRequestSource
    reviewed_action: GuardianReviewedAction
    reviewed_action_truncated: bool
    decision: GuardianReviewDecision
    terminal_status: GuardianReviewTerminalStatus
    failure_reason: GuardianReviewFailureReason | None
    attempt_count: int
    risk_level: str | None
    user_authorization: str | None
    outcome: str | None
    guardian_thread_id: str | None
    guardian_session_kind: GuardianReviewSessionKind | None
    guardian_model: str | None
    guardian_reasoning_effort: str | None
    had_prior_review_context: bool | None
    review_timeout_ms: int
    tool_call_count: int | None
    time_to_first_token_ms: int | None
    completion_latency_ms: int | None
    started_at: int
    completed_at: int | None
    input_tokens: int | None
    cached_input_tokens: int | None
    output_tokens: int | None
    reasoning_output_tokens: int | None
    total_tokens: int | None


class GuardianReviewEvent(Row, tag="codex_guardian_review"):
    event_params: GuardianReviewEventParams


# --- skills, apps, hooks, plugins (stateless custom facts) ----------------------------------------

InvocationType = Literal["explicit", "implicit"]
SkillScope = Literal["user", "repo", "system", "admin"]
HookRunStatus = Literal["completed", "failed", "blocked", "stopped"]


class SkillInvocationEventParams(msgspec.Struct, kw_only=True, gc=False):
    product_client_id: str | None
    skill_scope: str | None
    plugin_id: str | None
    repo_url: str | None
    thread_id: str | None
    turn_id: str | None
    invoke_type: InvocationType | None
    model_slug: str | None


class SkillInvocationEvent(Row, tag="skill_invocation"):
    """The one row with keys beside ``event_params`` at the top level."""

    skill_id: str
    skill_name: str
    event_params: SkillInvocationEventParams


class AppEventParams(msgspec.Struct, kw_only=True, gc=False):
    """``CodexAppMetadata``, shared by ``codex_app_mentioned`` and ``codex_app_used``."""

    connector_id: str | None
    thread_id: str | None
    turn_id: str | None
    app_name: str | None
    product_client_id: str | None
    invoke_type: InvocationType | None
    model_slug: str | None


class AppMentionedEvent(Row, tag="codex_app_mentioned"):
    event_params: AppEventParams


class AppUsedEvent(Row, tag="codex_app_used"):
    event_params: AppEventParams


class HookRunEventParams(msgspec.Struct, kw_only=True, gc=False):
    thread_id: str | None
    turn_id: str | None
    model_slug: str | None
    hook_name: str | None
    hook_source: str | None
    status: HookRunStatus | None


class HookRunEvent(Row, tag="codex_hook_run"):
    event_params: HookRunEventParams


class PluginEventParams(msgspec.Struct, kw_only=True, gc=False):
    """``CodexPluginMetadata``: the params of the plugin state rows and the base of plugin-used."""

    plugin_id: str | None
    plugin_name: str | None
    marketplace_name: str | None
    has_skills: bool | None
    mcp_server_count: int | None
    connector_ids: list[str] | None
    product_client_id: str | None


class PluginUsedEventParams(PluginEventParams, kw_only=True):
    """``CodexPluginUsedMetadata`` at b39f943a6: ``mcp_server_names`` is the capability summary's list."""

    mcp_server_names: list[str] | None
    thread_id: str | None
    turn_id: str | None
    model_slug: str | None


class PluginUsedEvent(Row, tag="codex_plugin_used"):
    event_params: PluginUsedEventParams


class PluginInstalledEvent(Row, tag="codex_plugin_installed"):
    event_params: PluginEventParams


class PluginUninstalledEvent(Row, tag="codex_plugin_uninstalled"):
    event_params: PluginEventParams


class PluginEnabledEvent(Row, tag="codex_plugin_enabled"):
    event_params: PluginEventParams


class PluginDisabledEvent(Row, tag="codex_plugin_disabled"):
    event_params: PluginEventParams


ISOLATED_EVENT_TYPES: frozenset[str] = frozenset({"codex_accepted_line_fingerprints"})
"""Rows that must travel alone in their own HTTP request (``should_send_in_isolated_request``)."""


def event_type(row_class: type[Row]) -> str:
    """The ``event_type`` a row class is encoded with (its struct tag)."""
    return str(row_class.__struct_config__.tag)
