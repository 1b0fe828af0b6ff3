"""Review and tool-item rows, whole, against golden JSON (spec section 5: R-, I- and D-series).

Each golden file in ``golden/`` was written from the spec's expectations, not from this code's output.
Test names are the Rust test names (R/I series) or the derived scenario they prove (D series).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from schemas.events import (
    AppServerClient,
    CommandExecutionEvent,
    CommandExecutionEventParams,
    ReviewEvent,
    ReviewEventParams,
)
from schemas.protocol import RuntimeMetadata
from tests.support.builders import (
    as_json,
    completed_command_item,
    review_prerequisites,
    run,
    sample_command_approval_request,
    sample_command_item,
    sample_effective_permissions_response,
    sample_file_change_approval_request,
    sample_guardian_review_completed,
    sample_item_completed,
    sample_item_started,
    sample_permissions_approval_request,
    sample_server_request_aborted,
    sample_server_response,
    sample_subagent_thread_started,
    sample_thread_response,
    sample_turn_started,
)

GOLDEN = Path(__file__).parent / "golden"


def golden(name: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads((GOLDEN / f"{name}.json").read_text())
    return rows


def prepared() -> Any:
    state, rows = run(review_prerequisites())
    assert [row["event_type"] for row in as_json(rows)] == ["codex_thread_initialized"]
    return state


TUI_CLIENT = AppServerClient(
    product_client_id="codex_tui",
    client_name="codex-tui",
    client_version="1.2.3",
    rpc_transport="websocket",
    experimental_api_enabled=True,
)
MAC_RUNTIME = RuntimeMetadata(
    codex_rs_version="0.99.0", runtime_os="macos", runtime_os_version="15.3.1", runtime_arch="aarch64"
)


def test_review_event_serializes_expected_shape() -> None:
    row = ReviewEvent(
        event_params=ReviewEventParams(
            thread_id="thread-1",
            turn_id="turn-1",
            item_id=None,
            review_id="review-1",
            app_server_client=TUI_CLIENT,
            runtime=MAC_RUNTIME,
            thread_source="subagent",
            subagent_source="thread_spawn",
            parent_thread_id="parent-thread-1",
            subject_kind="network_access",
            subject_name="network_access",
            reviewer="user",
            trigger="network_policy_denial",
            status="approved",
            resolution="network_policy_amendment",
            started_at_ms=123,
            completed_at_ms=125,
            duration_ms=2,
        )
    )
    assert as_json([row]) == golden("review_event_serializes_expected_shape")


def test_command_execution_event_serializes_expected_shape() -> None:
    row = CommandExecutionEvent(
        event_params=CommandExecutionEventParams(
            thread_id="thread-1",
            turn_id="turn-1",
            item_id="item-1",
            app_server_client=TUI_CLIENT,
            runtime=MAC_RUNTIME,
            thread_source="user",
            subagent_source=None,
            parent_thread_id=None,
            tool_name="shell",
            started_at_ms=123000,
            completed_at_ms=125000,
            duration_ms=2000,
            execution_duration_ms=1900,
            review_count=0,
            guardian_review_count=0,
            user_review_count=0,
            final_approval_outcome="not_needed",
            terminal_status="completed",
            failure_kind=None,
            requested_additional_permissions=False,
            requested_network_access=False,
            command_execution_source="agent",
            exit_code=0,
            command_total_action_count=4,
            command_read_action_count=1,
            command_list_files_action_count=1,
            command_search_action_count=1,
            command_unknown_action_count=1,
        )
    )
    assert as_json([row]) == golden("command_execution_event_serializes_expected_shape")


def test_command_execution_approval_response_publishes_user_review_event() -> None:
    state = prepared()
    state, rows = run([sample_command_approval_request(41)], state)
    assert rows == []
    _, rows = run([sample_server_response(41, "accept")], state)
    assert as_json(rows) == golden("command_execution_approval_response_publishes_user_review_event")


def test_permissions_reviews_emit_events_without_denormalizing_onto_tool_items() -> None:
    state = prepared()
    state, rows = run([sample_permissions_approval_request(51)], state)
    assert rows == []
    state, first = run([sample_effective_permissions_response(51, permissions={}, scope="turn")], state)
    _, second = run(completed_command_item("thread-1", "permissions-1"), state)
    assert as_json(first + second) == golden("permissions_reviews_emit_events_without_denormalizing_onto_tool_items")


def test_effective_session_permissions_response_publishes_session_user_review_event() -> None:
    state = prepared()
    _, rows = run(
        [
            sample_permissions_approval_request(52),
            sample_effective_permissions_response(52, permissions={"network": {"enabled": True}}, scope="session"),
        ],
        state,
    )
    assert as_json(rows) == golden("effective_session_permissions_response_publishes_session_user_review_event")


def test_aborted_server_request_publishes_aborted_user_review_event_once() -> None:
    state = prepared()
    state, first = run([sample_command_approval_request(61), sample_server_request_aborted(61)], state)
    _, second = run([sample_server_response(61, "accept", completed_at_ms=1043)], state)
    assert as_json(first) == golden("aborted_server_request_publishes_aborted_user_review_event_once")
    assert second == []


def test_guardian_completed_notification_publishes_review_event_with_thread_metadata() -> None:
    _, rows = run([sample_guardian_review_completed()], prepared())
    assert as_json(rows) == golden("guardian_completed_notification_publishes_review_event_with_thread_metadata")


def test_terminal_reviews_denormalize_counts_onto_tool_item_events() -> None:
    state, _ = run([sample_command_approval_request(71), sample_server_response(71, "acceptForSession")], prepared())
    _, rows = run(completed_command_item(), state)
    assert as_json(rows) == golden("terminal_reviews_denormalize_counts_onto_tool_item_events")


def test_item_review_summaries_do_not_cross_threads_with_reused_item_ids() -> None:
    # thread-2 is a second root thread of the same connection (its own family).
    state, _ = run(
        [
            sample_thread_response("thread-2", request_id=2),
            sample_command_approval_request(72),
            sample_server_response(72, "accept"),
        ],
        prepared(),
    )
    _, rows = run(completed_command_item("thread-2", "item-1"), state)
    assert as_json(rows) == golden("item_review_summaries_do_not_cross_threads_with_reused_item_ids")


def test_guardian_review_result_maps_terminal_statuses() -> None:
    state, in_progress = run([sample_guardian_review_completed(status="inProgress")], prepared())
    assert in_progress == []
    assert state.families["thread-1"].summaries == {}
    _, timed_out = run([sample_guardian_review_completed(status="timedOut")], state)
    params = as_json(timed_out)[0]["event_params"]
    assert (params["status"], params["resolution"]) == ("timed_out", "none")


def test_item_lifecycle_notifications_publish_command_execution_event() -> None:
    state, rows = run(
        [sample_turn_started(), sample_item_started(sample_command_item(status="inProgress"))], prepared()
    )
    assert rows == []
    item = sample_command_item(actions=("read", "listFiles", "search", "unknown"))
    _, rows = run([sample_item_completed(item, completed_at_ms=1045)], state)
    assert as_json(rows) == golden("item_lifecycle_notifications_publish_command_execution_event")


def test_subagent_tool_items_inherit_parent_connection_metadata() -> None:
    state, _ = run([sample_subagent_thread_started("thread-subagent", parent_thread_id="thread-1")], prepared())
    facts = [
        sample_turn_started("thread-subagent", "turn-subagent", family="thread-1"),
        sample_item_started(
            sample_command_item(status="inProgress"),
            thread_id="thread-subagent",
            turn_id="turn-subagent",
            family="thread-1",
        ),
        sample_item_completed(
            sample_command_item(), thread_id="thread-subagent", turn_id="turn-subagent", family="thread-1"
        ),
    ]
    _, rows = run(facts, state)
    assert as_json(rows) == golden("subagent_tool_items_inherit_parent_connection_metadata")


# --- derived scenarios (spec 5, D1-D11) -----------------------------------------------------------


def test_network_command_review_is_not_denormalized_onto_the_item() -> None:
    facts = [
        sample_command_approval_request(91, network_approval_context={"host": "example.com", "protocol": "https"}),
        sample_server_response(91, "accept"),
        *completed_command_item(),
    ]
    _, rows = run(facts, prepared())
    assert as_json(rows) == golden("network_command_review_is_not_denormalized_onto_the_item")


def test_execve_declined_review_counts_as_user_denied() -> None:
    facts = [
        sample_command_approval_request(92, approval_id="approval-1"),
        sample_server_response(92, "decline"),
        *completed_command_item(),
    ]
    _, rows = run(facts, prepared())
    assert as_json(rows) == golden("execve_declined_review_counts_as_user_denied")


def test_network_policy_amendment_deny_is_a_denied_review() -> None:
    decision = {"applyNetworkPolicyAmendment": {"network_policy_amendment": {"host": "x", "action": "deny"}}}
    _, rows = run([sample_command_approval_request(93), sample_server_response(93, decision)], prepared())
    assert as_json(rows) == golden("network_policy_amendment_deny_is_a_denied_review")


def test_cancel_is_an_aborted_review_and_user_aborted_outcome() -> None:
    facts = [sample_command_approval_request(94), sample_server_response(94, "cancel"), *completed_command_item()]
    _, rows = run(facts, prepared())
    assert as_json(rows) == golden("cancel_is_an_aborted_review_and_user_aborted_outcome")


def test_file_change_with_grant_root_is_a_sandbox_denial_review() -> None:
    item = {
        "type": "fileChange",
        "id": "item-1",
        "status": "completed",
        "changes": [
            {"path": "a.py", "kind": {"type": "add"}, "diff": "+x"},
            {"path": "b.py", "kind": {"type": "update", "move_path": None}, "diff": "-x\n+y"},
            {"path": "c.py", "kind": {"type": "update", "move_path": "d.py"}, "diff": ""},
        ],
    }
    facts = [
        sample_file_change_approval_request(95, grant_root="/repo"),
        sample_server_response(95, "accept", method="item/fileChange/requestApproval"),
        sample_turn_started(),
        sample_item_started({**item, "status": "inProgress"}),
        sample_item_completed(item),
    ]
    _, rows = run(facts, prepared())
    assert as_json(rows) == golden("file_change_with_grant_root_is_a_sandbox_denial_review")


def test_guardian_mcp_review_denormalizes_onto_the_mcp_item() -> None:
    item = {
        "type": "mcpToolCall",
        "id": "mcp-1",
        "server": "docs",
        "tool": "search_docs",
        "status": "completed",
        "arguments": {},
        "result": None,
        "error": None,
        "durationMs": 7,
    }
    action = {
        "type": "mcpToolCall",
        "server": "docs",
        "toolName": "search_docs",
        "connectorId": None,
        "connectorName": None,
        "toolTitle": None,
    }
    facts = [
        sample_guardian_review_completed(
            review_id="guardian-mcp-1", target_item_id="mcp-1", status="approved", action=action
        ),
        sample_turn_started(),
        sample_item_started({**item, "status": "inProgress"}),
        sample_item_completed(item),
    ]
    _, rows = run(facts, prepared())
    assert as_json(rows) == golden("guardian_mcp_review_denormalizes_onto_the_mcp_item")


def test_guardian_timeout_then_user_approval_counts_both_reviews() -> None:
    facts = [
        sample_guardian_review_completed(status="timedOut"),
        sample_command_approval_request(96),
        sample_server_response(96, "accept"),
        *completed_command_item(),
    ]
    _, rows = run(facts, prepared())
    assert as_json(rows) == golden("guardian_timeout_then_user_approval_counts_both_reviews")


def test_guardian_review_without_target_item_has_null_item_id() -> None:
    action = {"type": "networkAccess", "target": "https://x", "host": "x", "protocol": "https", "port": 443}
    facts = [
        sample_guardian_review_completed(
            review_id="guardian-net-1", target_item_id=None, status="approved", action=action
        ),
        *completed_command_item(),
    ]
    state, rows = run(facts, prepared())
    assert as_json(rows) == golden("guardian_review_without_target_item_has_null_item_id")
    assert state.families["thread-1"].summaries == {}


def test_review_on_thread_without_context_still_counts_on_the_item() -> None:
    state, rows = run(
        [
            sample_command_approval_request(98, thread_id="thread-late"),
            sample_server_response(98, "accept", thread_id="thread-late"),
        ],
        prepared(),
    )
    assert rows == []
    assert state.drops["missing_context:thread_connection"] == 1
    _, rows = run([sample_thread_response("thread-late", request_id=3), *completed_command_item("thread-late")], state)
    assert as_json(rows) == golden("review_on_thread_without_context_still_counts_on_the_item")


def test_guardian_in_progress_notification_emits_nothing() -> None:
    _, rows = run([sample_guardian_review_completed(status="inProgress"), *completed_command_item()], prepared())
    assert [row["event_params"]["review_count"] for row in as_json(rows)] == [0]


def test_review_completed_before_it_started_has_null_duration() -> None:
    _, rows = run(
        [sample_command_approval_request(97), sample_server_response(97, "accept", completed_at_ms=900)], prepared()
    )
    assert as_json(rows) == golden("review_completed_before_it_started_has_null_duration")
