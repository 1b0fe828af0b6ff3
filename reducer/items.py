"""Tool items: ``item/started`` + ``item/completed`` into terminal tool-item rows (spec 3.6, 4.7).

Each terminal row carries the item's review summary (counts, last outcome, permission flags),
denormalised from the reviews :mod:`reducer.reviews` recorded on the same (thread, turn, item).
"""

from __future__ import annotations

from typing import Any

from reducer.context import ThreadContext, bump, item_key, non_negative, rust_trim, thread_context
from schemas.events import (
    CollabAgentToolCallEvent,
    CollabAgentToolCallEventParams,
    CommandExecutionEvent,
    CommandExecutionEventParams,
    DynamicToolCallEvent,
    DynamicToolCallEventParams,
    FileChangeEvent,
    FileChangeEventParams,
    ImageGenerationEvent,
    ImageGenerationEventParams,
    McpToolCallEvent,
    McpToolCallEventParams,
    Row,
    ToolItemFailureKind,
    ToolItemTerminalStatus,
    WebSearchActionKind,
    WebSearchEvent,
    WebSearchEventParams,
)
from schemas.protocol import (
    CollabAgentToolCallItem,
    CommandExecutionItem,
    DynamicToolCallItem,
    FileChangeItem,
    ImageGenerationItem,
    ItemCompletedParams,
    ItemStartedParams,
    McpToolCallItem,
    ThreadItem,
    ToolItem,
    WebSearchItem,
)
from schemas.state import NO_ENTRIES, FamilyState, ItemReviewSummary, PartitionState, ToolCounts

Terminal = tuple[ToolItemTerminalStatus, ToolItemFailureKind | None]

_COMMAND_TOOL_NAMES = {
    "agent": "shell",
    "userShell": "user_shell",
    "unifiedExecStartup": "unified_exec",
    "unifiedExecInteraction": "unified_exec",
}
_COLLAB_TOOL_NAMES = {
    "spawnAgent": "spawn_agent",
    "sendInput": "send_input",
    "resumeAgent": "resume_agent",
    "wait": "wait_agent",
    "closeAgent": "close_agent",
}
_WEB_SEARCH_ACTIONS: dict[str, WebSearchActionKind] = {
    "search": "search",
    "openPage": "open_page",
    "findInPage": "find_in_page",
}
_EMPTY_SUMMARY = ItemReviewSummary()


def as_tool_item(item: ThreadItem) -> ToolItem | None:
    """The item if its type is a tracked tool type, else ``None``."""
    match item:
        case (
            CommandExecutionItem()
            | FileChangeItem()
            | McpToolCallItem()
            | DynamicToolCallItem()
            | CollabAgentToolCallItem()
            | WebSearchItem()
            | ImageGenerationItem()
        ):
            return item
        case _:
            return None


def on_item_started(family: FamilyState, params: ItemStartedParams) -> None:
    if as_tool_item(params.item) is not None and params.started_at_ms >= 0:
        if not family.started_at_ms:
            family.started_at_ms = {}  # NO_ENTRIES is shared and read-only (schemas.state)
        family.started_at_ms[item_key(params.thread_id, params.turn_id, params.item.id)] = params.started_at_ms


def count_tool_call(counts: ToolCounts, item: ToolItem) -> None:
    counts.total += 1
    match item:
        case CommandExecutionItem():
            counts.shell_command += 1
        case FileChangeItem():
            counts.file_change += 1
        case McpToolCallItem():
            counts.mcp_tool_call += 1
        case DynamicToolCallItem():
            counts.dynamic_tool_call += 1
        case CollabAgentToolCallItem():
            counts.subagent_tool_call += 1
        case WebSearchItem():
            counts.web_search += 1
        case ImageGenerationItem():
            counts.image_generation += 1


def on_item_completed(
    state: PartitionState, family: FamilyState | None, params: ItemCompletedParams, rows: list[Row]
) -> None:
    """Spec 4.7, steps 1-8 in order."""
    item = as_tool_item(params.item)
    # Step 1. Non-tool items are not tracked.
    if item is None:
        return
    # Step 2. Without turn state nothing happens at all.
    turn = family.turns.get(params.turn_id) if family is not None else None
    if family is None or turn is None:
        bump(state, "item_completed_without_turn")
        return
    # Step 3. Turn tool counts, whatever happens next.
    count_tool_call(turn.tool_counts, item)
    # Step 4. The start time is consumed here.
    key = item_key(params.thread_id, params.turn_id, item.id)
    started_at_ms = family.started_at_ms.pop(key, None)
    if not family.started_at_ms:
        family.started_at_ms = NO_ENTRIES
    if started_at_ms is None:
        bump(state, "item_completed_without_start")
        return
    # Step 5.
    if params.completed_at_ms < 0:
        bump(state, "negative_timestamp")
        return
    # Step 6.
    context = thread_context(state, family, params.thread_id)
    if context is None:
        return
    # Step 7. In-progress items yield no row.
    summary = family.summaries.get(key, _EMPTY_SUMMARY)
    row = build_tool_item_row(params, item, started_at_ms, context, summary)
    if row is not None:
        rows.append(row)
    # Step 8. The summary is spent whether or not a row was built.
    if family.summaries.pop(key, None) is not None and not family.summaries:
        family.summaries = NO_ENTRIES


def _four_way(status: str) -> Terminal | None:
    match status:
        case "completed":
            return "completed", None
        case "failed":
            return "failed", "tool_error"
        case "declined":
            return "rejected", "approval_denied"
        case _:
            return None


def _three_way(status: str) -> Terminal | None:
    match status:
        case "completed":
            return "completed", None
        case "failed":
            return "failed", "tool_error"
        case _:
            return None


def _image_generation_terminal(status: str) -> Terminal:
    return ("failed", "tool_error") if status in ("failed", "error") else ("completed", None)


def _web_search_query_count(item: WebSearchItem) -> int | None:
    action = item.action
    if action is None:
        return 1 if rust_trim(item.query) else None
    if action.type != "search":
        return None
    if action.queries is not None:
        return len(action.queries)
    return 1 if action.query is not None else None


def _base(
    params: ItemCompletedParams,
    context: ThreadContext,
    summary: ItemReviewSummary,
    tool_name: str,
    started_at_ms: int,
    execution_duration_ms: int | None,
    terminal: Terminal,
) -> dict[str, Any]:
    """The :class:`~schemas.events.ToolItemEventBase` fields every tool-item row shares (the struct checks the
    names when the row is built)."""
    duration = params.completed_at_ms - started_at_ms
    return {
        "thread_id": params.thread_id,
        "turn_id": params.turn_id,
        "item_id": params.item.id,
        "app_server_client": context.app_server_client,
        "runtime": context.runtime,
        "thread_source": context.metadata.thread_source,
        "subagent_source": context.metadata.subagent_source,
        "parent_thread_id": context.metadata.parent_thread_id,
        "tool_name": tool_name,
        "started_at_ms": started_at_ms,
        "completed_at_ms": params.completed_at_ms,
        "duration_ms": duration if duration >= 0 else None,
        "execution_duration_ms": execution_duration_ms,
        "review_count": summary.review_count,
        "guardian_review_count": summary.guardian_review_count,
        "user_review_count": summary.user_review_count,
        "final_approval_outcome": summary.final_approval_outcome or "unknown",
        "terminal_status": terminal[0],
        "failure_kind": terminal[1],
        "requested_additional_permissions": summary.requested_additional_permissions,
        "requested_network_access": summary.requested_network_access,
    }


def build_tool_item_row(
    params: ItemCompletedParams,
    item: ToolItem,
    started_at_ms: int,
    context: ThreadContext,
    summary: ItemReviewSummary,
) -> Row | None:
    """The terminal row of ``item``, or ``None`` while it is still in progress."""
    match item:
        case CommandExecutionItem():
            terminal = _four_way(item.status)
            if terminal is None:
                return None
            kinds = [action.type for action in item.command_actions]
            return CommandExecutionEvent(
                event_params=CommandExecutionEventParams(
                    **_base(
                        params,
                        context,
                        summary,
                        _COMMAND_TOOL_NAMES[item.source],
                        started_at_ms,
                        non_negative(item.duration_ms),
                        terminal,
                    ),
                    command_execution_source=item.source,
                    exit_code=item.exit_code,
                    command_total_action_count=len(kinds),
                    command_read_action_count=kinds.count("read"),
                    command_list_files_action_count=kinds.count("listFiles"),
                    command_search_action_count=kinds.count("search"),
                    command_unknown_action_count=kinds.count("unknown"),
                )
            )
        case FileChangeItem():
            terminal = _four_way(item.status)
            if terminal is None:
                return None
            changes = [change.kind for change in item.changes]
            updates = [kind for kind in changes if kind.type == "update"]
            moves = sum(1 for kind in updates if kind.move_path is not None)
            return FileChangeEvent(
                event_params=FileChangeEventParams(
                    **_base(params, context, summary, "apply_patch", started_at_ms, None, terminal),
                    file_change_count=len(changes),
                    file_add_count=sum(1 for kind in changes if kind.type == "add"),
                    file_update_count=len(updates) - moves,
                    file_delete_count=sum(1 for kind in changes if kind.type == "delete"),
                    file_move_count=moves,
                )
            )
        case McpToolCallItem():
            terminal = _three_way(item.status)
            if terminal is None:
                return None
            return McpToolCallEvent(
                event_params=McpToolCallEventParams(
                    **_base(
                        params, context, summary, item.tool, started_at_ms, non_negative(item.duration_ms), terminal
                    ),
                    mcp_server_name=item.server,
                    mcp_tool_name=item.tool,
                    mcp_error_present=item.error is not None,
                )
            )
        case DynamicToolCallItem():
            terminal = _three_way(item.status)
            if terminal is None:
                return None
            contents = item.content_items
            return DynamicToolCallEvent(
                event_params=DynamicToolCallEventParams(
                    **_base(
                        params, context, summary, item.tool, started_at_ms, non_negative(item.duration_ms), terminal
                    ),
                    dynamic_tool_name=item.tool,
                    success=item.success,
                    output_content_item_count=None if contents is None else len(contents),
                    output_text_item_count=(
                        None if contents is None else sum(1 for c in contents if c.type == "inputText")
                    ),
                    output_image_item_count=(
                        None if contents is None else sum(1 for c in contents if c.type == "inputImage")
                    ),
                )
            )
        case CollabAgentToolCallItem():
            terminal = _three_way(item.status)
            if terminal is None:
                return None
            states = [agent.status for agent in item.agents_states.values()]
            return CollabAgentToolCallEvent(
                event_params=CollabAgentToolCallEventParams(
                    **_base(
                        params, context, summary, _COLLAB_TOOL_NAMES[item.tool], started_at_ms, None, terminal
                    ),
                    sender_thread_id=item.sender_thread_id,
                    receiver_thread_count=len(item.receiver_thread_ids),
                    receiver_thread_ids=list(item.receiver_thread_ids),
                    requested_model=item.model,
                    requested_reasoning_effort=item.reasoning_effort,
                    agent_state_count=len(states),
                    completed_agent_count=states.count("completed"),
                    failed_agent_count=sum(1 for s in states if s in ("errored", "shutdown", "notFound")),
                )
            )
        case WebSearchItem():
            action = item.action
            return WebSearchEvent(
                event_params=WebSearchEventParams(
                    **_base(
                        params, context, summary, "web_search", started_at_ms, None, ("completed", None)
                    ),
                    web_search_action=None if action is None else _WEB_SEARCH_ACTIONS.get(action.type, "other"),
                    query_present=rust_trim(item.query) != "",
                    query_count=_web_search_query_count(item),
                )
            )
        case ImageGenerationItem():
            return ImageGenerationEvent(
                event_params=ImageGenerationEventParams(
                    **_base(
                        params,
                        context,
                        summary,
                        "image_generation",
                        started_at_ms,
                        None,
                        _image_generation_terminal(item.status),
                    ),
                    revised_prompt_present=item.revised_prompt is not None,
                    saved_path_present=item.saved_path is not None,
                )
            )
