"""Analytics rows as the analytics endpoint receives them (codex-rs/analytics ``events.rs`` wire shapes).

Every row is ``{"event_type": "<name>", "event_params": {...}}``: a ``Row`` subclass whose msgspec tag
is the literal event type. Field order is declaration order and equals the Rust serialisation order;
optional fields have no defaults and are always written (``null`` when absent), exactly like serde
without ``skip_serializing_if``. Rust's ``#[serde(flatten)]`` bases become struct inheritance (base
fields first, then the subclass's).
"""

from __future__ import annotations

from typing import Literal

import msgspec

from schemas.protocol import RpcTransport, RuntimeMetadata


class AppServerClient(msgspec.Struct, kw_only=True):
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


class Row(msgspec.Struct, kw_only=True, tag_field="event_type"):
    """Base of every row; ``event_type`` is the subclass's tag."""


# --- codex_review_event ---------------------------------------------------------------------------


class ReviewEventParams(msgspec.Struct, kw_only=True):
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


class ToolItemEventBase(msgspec.Struct, kw_only=True):
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


class CommandExecutionEventParams(ToolItemEventBase):
    command_execution_source: str
    exit_code: int | None
    command_total_action_count: int
    command_read_action_count: int
    command_list_files_action_count: int
    command_search_action_count: int
    command_unknown_action_count: int


class CommandExecutionEvent(Row, tag="codex_command_execution_event"):
    event_params: CommandExecutionEventParams


class FileChangeEventParams(ToolItemEventBase):
    file_change_count: int
    file_add_count: int
    file_update_count: int
    file_delete_count: int
    file_move_count: int


class FileChangeEvent(Row, tag="codex_file_change_event"):
    event_params: FileChangeEventParams


class McpToolCallEventParams(ToolItemEventBase):
    mcp_server_name: str
    mcp_tool_name: str
    mcp_error_present: bool


class McpToolCallEvent(Row, tag="codex_mcp_tool_call_event"):
    event_params: McpToolCallEventParams


class DynamicToolCallEventParams(ToolItemEventBase):
    dynamic_tool_name: str
    success: bool | None
    output_content_item_count: int | None
    output_text_item_count: int | None
    output_image_item_count: int | None


class DynamicToolCallEvent(Row, tag="codex_dynamic_tool_call_event"):
    event_params: DynamicToolCallEventParams


class CollabAgentToolCallEventParams(ToolItemEventBase):
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


class WebSearchEventParams(ToolItemEventBase):
    web_search_action: WebSearchActionKind | None
    query_present: bool
    query_count: int | None


class WebSearchEvent(Row, tag="codex_web_search_event"):
    event_params: WebSearchEventParams


class ImageGenerationEventParams(ToolItemEventBase):
    revised_prompt_present: bool
    saved_path_present: bool


class ImageGenerationEvent(Row, tag="codex_image_generation_event"):
    event_params: ImageGenerationEventParams


# --- thread lifecycle -----------------------------------------------------------------------------


class ThreadInitializedEventParams(msgspec.Struct, kw_only=True):
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
    created_at: int


class ThreadInitializedEvent(Row, tag="codex_thread_initialized"):
    event_params: ThreadInitializedEventParams


ISOLATED_EVENT_TYPES: frozenset[str] = frozenset({"codex_accepted_line_fingerprints"})
"""Rows that must travel alone in their own HTTP request (``should_send_in_isolated_request``)."""
