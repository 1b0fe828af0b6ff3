"""Turn, steer and accepted-line rows, whole, against golden JSON (spec 5: I4, I5, C6; other-events C.1, C.4).

Each golden file in ``golden/`` was written by hand from the Rust tests' inputs and expectations (the
literal JSON where Rust asserts one, else the spec's derivation rules), not from this code's output.
Test names are the Rust test names. Rust reads the wall clock for steer ``created_at`` and
accepted-lines ``completed_at``; here they are the triggering facts' ``observed_at_ms`` in seconds
(``STEER_OBSERVED_AT_MS`` / ``COMPLETED_OBSERVED_AT_MS`` of the builders).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reducer.turns import count_diff_lines
from schemas.codec import encode_row
from schemas.events import (
    AcceptedLineFingerprintsEvent,
    AcceptedLineFingerprintsEventParams,
    AppServerClient,
    TurnEvent,
    TurnEventParams,
)
from schemas.protocol import RuntimeMetadata
from schemas.state import PartitionState
from tests.support.builders import (
    SAMPLE_TURN_PROFILE,
    as_json,
    drop_rows,
    envelope,
    run,
    sample_command_item,
    sample_completed_tool_items,
    sample_error_response,
    sample_item_completed,
    sample_thread_response,
    sample_turn_codex_error,
    sample_turn_completed,
    sample_turn_diff_updated,
    sample_turn_initialize,
    sample_turn_profile,
    sample_turn_resolved_config,
    sample_turn_start_request,
    sample_turn_start_response,
    sample_turn_steer_request,
    sample_turn_steer_response,
    turn_prerequisites,
)

GOLDEN = Path(__file__).parent / "golden"


def golden(name: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads((GOLDEN / f"{name}.json").read_text())
    return rows


def rows_after(state: PartitionState, *facts: Any) -> list[dict[str, Any]]:
    _, rows = run(list(facts), state)
    return as_json(rows)


MAC_RUNTIME = RuntimeMetadata(
    codex_rs_version="0.1.0", runtime_os="macos", runtime_os_version="15.3.1", runtime_arch="aarch64"
)


# --- turn rows ------------------------------------------------------------------------------------


def test_turn_event_serializes_expected_shape() -> None:
    row = TurnEvent(
        event_params=TurnEventParams(
            thread_id="thread-2",
            session_id="session-thread-2",
            turn_id="turn-2",
            submission_type=None,
            app_server_client=AppServerClient(
                product_client_id="codex_cli_rs",
                client_name="codex-tui",
                client_version="1.0.0",
                rpc_transport="stdio",
                experimental_api_enabled=True,
            ),
            runtime=MAC_RUNTIME,
            ephemeral=False,
            thread_source="user",
            initialization_mode="new",
            subagent_source=None,
            parent_thread_id=None,
            model="gpt-5",
            model_provider="openai",
            sandbox_policy="read_only",
            reasoning_effort="high",
            reasoning_summary="detailed",
            service_tier="flex",
            approval_policy="on-request",
            approvals_reviewer="auto_review",
            sandbox_network_access=True,
            collaboration_mode="plan",
            personality="pragmatic",
            workspace_kind=None,
            num_input_images=2,
            is_first_turn=True,
            status="completed",
            turn_error=None,
            codex_error_kind=None,
            codex_error_http_status_code=None,
            steer_count=0,
            total_tool_call_count=None,
            shell_command_count=None,
            file_change_count=None,
            mcp_tool_call_count=None,
            dynamic_tool_call_count=None,
            subagent_tool_call_count=None,
            web_search_count=None,
            image_generation_count=None,
            input_tokens=None,
            cached_input_tokens=None,
            output_tokens=None,
            reasoning_output_tokens=None,
            total_tokens=None,
            **SAMPLE_TURN_PROFILE,
            duration_ms=1234,
            started_at=455,
            completed_at=456,
        )
    )
    assert [json.loads(encode_row(row))] == golden("turn_event_serializes_expected_shape")


def test_turn_event_keys_are_written_in_rust_declaration_order() -> None:
    _, rows = run([*turn_prerequisites(), sample_turn_completed()])
    params = json.loads(encode_row(rows[-1]))["event_params"]
    assert list(params) == list(golden("turn_event_serializes_expected_shape")[0]["event_params"])


def test_turn_lifecycle_emits_turn_event() -> None:
    state = drop_rows(turn_prerequisites())
    assert rows_after(state, sample_turn_completed()) == golden("turn_lifecycle_emits_turn_event")
    assert "turn-2" not in state.families["thread-2"].turns, "the turn state is deleted once emitted"


def test_turn_event_waits_for_the_turn_profile() -> None:
    """b39f943a6: a completed turn without a profile emits nothing; the profile then emits it."""
    state = drop_rows(turn_prerequisites(include_profile=False))
    assert rows_after(state, sample_turn_completed()) == []
    rows = rows_after(state, sample_turn_profile())
    assert rows == golden("turn_lifecycle_emits_turn_event")


def test_turn_codex_error_is_reported_on_the_turn_event() -> None:
    state = drop_rows([*turn_prerequisites(), sample_turn_codex_error("server_overloaded", 529)])
    (row,) = rows_after(state, sample_turn_completed(status="failed"))
    params = row["event_params"]
    assert (params["codex_error_kind"], params["codex_error_http_status_code"]) == ("server_overloaded", 529)


def test_turn_lifecycle_emits_failed_turn_event() -> None:
    state = drop_rows(turn_prerequisites(include_token_usage=False))
    rows = rows_after(state, sample_turn_completed(status="failed", codex_error_info="badRequest"))
    assert rows == golden("turn_lifecycle_emits_failed_turn_event")


def test_turn_lifecycle_emits_interrupted_turn_event_without_error() -> None:
    state = drop_rows(turn_prerequisites(include_token_usage=False))
    rows = rows_after(state, sample_turn_completed(status="interrupted"))
    assert rows == golden("turn_lifecycle_emits_interrupted_turn_event_without_error")


def test_turn_completed_without_started_notification_emits_null_started_at() -> None:
    state = drop_rows(turn_prerequisites(include_started=False, include_token_usage=False))
    rows = rows_after(state, sample_turn_completed())
    assert rows == golden("turn_completed_without_started_notification_emits_null_started_at")


def test_turn_event_counts_completed_tool_items() -> None:
    """I4: counts every completed tool item; no item rows, since no ``item/started`` was seen."""
    state = drop_rows(turn_prerequisites(include_token_usage=False))
    rows = rows_after(state, *sample_completed_tool_items(), sample_turn_completed())
    assert rows == golden("turn_event_counts_completed_tool_items")


def test_item_completed_without_turn_state_does_not_create_turn_state() -> None:
    """I5."""
    state, rows = run(
        [
            sample_item_completed(
                sample_command_item("item-1", duration_ms=1),
                thread_id="thread-2",
                turn_id="turn-2",
                completed_at_ms=1000,
            ),
            sample_turn_completed(),
        ]
    )
    assert as_json(rows) == golden("item_completed_without_turn_state_does_not_create_turn_state")
    # The completion itself creates the (incomplete) turn, as Rust's entry().or_default() does; the
    # item did not count into it.
    assert state.families["thread-2"].turns["turn-2"].tool_counts.total == 0


def test_turn_does_not_emit_without_required_prerequisites() -> None:
    without_initialize = turn_prerequisites(include_initialize=False, include_started=False, include_token_usage=False)
    _, rows = run([*without_initialize, sample_turn_completed()])
    without_config = turn_prerequisites(include_resolved_config=False, include_started=False, include_token_usage=False)
    state = drop_rows(without_config)
    expected = golden("turn_does_not_emit_without_required_prerequisites")
    assert as_json(rows) == expected
    assert rows_after(state, sample_turn_completed()) == expected


def test_turn_start_error_response_discards_pending_start_request() -> None:
    state, rows = run(
        [
            sample_turn_initialize(),
            sample_turn_start_request(),
            sample_error_response(3, None),
            # A late response for the failed request must not resurrect it.
            sample_turn_start_response(),
            sample_turn_resolved_config(),
            sample_turn_profile(),
            sample_turn_completed(),
        ]
    )
    assert as_json(rows) == golden("turn_start_error_response_discards_pending_start_request")
    # With no turn/start connection and no started thread, the complete turn has no context.
    assert state.drops["missing_context:thread_connection"] == 1


def test_unrelated_client_requests_are_ignored_by_reducer() -> None:
    """C6: a thread/archive request makes no pending request, so a turn/start answer to its id is ignored."""
    archive = envelope(
        {
            "kind": "client_request",
            "connection_id": 7,
            "request_id": 3,
            "request": {"method": "thread/archive", "id": 3, "params": {"threadId": "thread-2"}},
        },
        thread_id="thread-2",
    )
    state, rows = run([archive, sample_turn_start_response()])
    assert as_json(rows) == golden("unrelated_client_requests_are_ignored_by_reducer")
    assert "thread-2" not in state.families, "unrelated requests must not create pending turn state"


def test_unrelated_client_responses_are_ignored_by_reducer() -> None:
    """C6."""
    archive = envelope(
        {
            "kind": "client_response",
            "connection_id": 7,
            "request_id": 9,
            "response": {"method": "thread/archive", "id": 9, "response": {}},
        },
        thread_id="thread-2",
    )
    _, rows = run([sample_turn_initialize(), archive])
    assert as_json(rows) == golden("unrelated_client_responses_are_ignored_by_reducer")


# --- steers ---------------------------------------------------------------------------------------

ONLY_TURN_START = turn_prerequisites(include_resolved_config=False, include_started=False, include_token_usage=False)
"""Initialize, thread-2 started, turn/start request and response (no config: no turn row)."""


def test_accepted_turn_steer_emits_expected_event() -> None:
    state = drop_rows(ONLY_TURN_START)
    rows = rows_after(state, sample_turn_steer_request(), sample_turn_steer_response())
    assert rows == golden("accepted_turn_steer_emits_expected_event")
    assert "product_client_id" not in rows[0]["event_params"]


def _rejected_steer(error_type: str, message: str) -> list[dict[str, Any]]:
    """The Rust ``ingest_rejected_turn_steer``: thread-2 later resumed on connection 8; steer on 7."""
    state = drop_rows(
        [
            *ONLY_TURN_START,
            sample_turn_initialize(connection_id=8, client_name="codex-web", product_client_id="codex-web"),
            sample_thread_response("thread-2", method="thread/resume", connection_id=8, request_id=6, created_at=1),
        ]
    )
    return rows_after(state, sample_turn_steer_request(), sample_error_response(4, error_type, message=message))


def test_rejected_turn_steer_uses_request_connection_metadata() -> None:
    rows = _rejected_steer("no_active_turn", "no active turn to steer")
    assert rows == golden("rejected_turn_steer_uses_request_connection_metadata")


def test_rejected_turn_steer_maps_active_turn_not_steerable_error_type() -> None:
    rows = _rejected_steer("non_steerable_review", "cannot steer a review turn")
    assert rows == golden("rejected_turn_steer_maps_active_turn_not_steerable_error_type")


def test_rejected_turn_steer_maps_input_too_large_error_type() -> None:
    rows = _rejected_steer("input_too_large", "Input exceeds the maximum length of 1048576 characters.")
    assert rows == golden("rejected_turn_steer_maps_input_too_large_error_type")


def test_turn_steer_does_not_emit_without_pending_request() -> None:
    _, rows = run([sample_error_response(4, "no_active_turn")])
    assert as_json(rows) == golden("turn_steer_does_not_emit_without_pending_request")


def test_accepted_steers_increment_turn_steer_count() -> None:
    state = drop_rows(turn_prerequisites(include_token_usage=False))
    rows = rows_after(
        state,
        sample_turn_steer_request(request_id=4),
        sample_turn_steer_response(request_id=4),
        sample_turn_steer_request(request_id=5),
        sample_error_response(5, "no_active_turn"),
        sample_turn_steer_request(request_id=6),
        sample_turn_steer_response(request_id=6),
        sample_turn_completed(),
    )
    assert rows == golden("accepted_steers_increment_turn_steer_count")


# --- accepted lines -------------------------------------------------------------------------------


def test_accepted_line_fingerprints_event_serializes_expected_shape() -> None:
    row = AcceptedLineFingerprintsEvent(
        event_params=AcceptedLineFingerprintsEventParams(
            event_type="codex.accepted_line_fingerprints",
            turn_id="turn-1",
            thread_id="thread-1",
            product_surface="codex",
            model_slug="gpt-5.1-codex",
            completed_at=1710000000,
            repo_hash="repo-hash-1",
            accepted_added_lines=42,
            accepted_deleted_lines=40,
            line_fingerprints=[],
        )
    )
    assert [json.loads(encode_row(row))] == golden("accepted_line_fingerprints_event_serializes_expected_shape")


DIFF_HEADER = "diff --git a/src/lib.rs b/src/lib.rs\nindex 1111111..2222222\n--- a/src/lib.rs\n+++ b/src/lib.rs\n"


def test_reducer_emits_large_accepted_line_aggregates_without_fingerprints() -> None:
    diff = DIFF_HEADER + "@@ -0,0 +1,20000 @@\n" + "".join(f"+let value_{i} = {i};\n" for i in range(20_000))
    state = drop_rows(turn_prerequisites())
    assert rows_after(state, sample_turn_diff_updated(diff)) == []
    _, rows = run([sample_turn_completed()], state)
    assert as_json(rows) == golden("reducer_emits_large_accepted_line_aggregates_without_fingerprints")
    assert len(encode_row(rows[1])) < 2_100_000


def test_reducer_emits_accepted_line_fingerprints_once_from_latest_turn_diff_on_completion() -> None:
    state = drop_rows(turn_prerequisites())
    diffs = [DIFF_HEADER + f"@@ -0,0 +1 @@\n+{line}\n" for line in ("let old_value = 1;", "let latest_value = 2;")]
    assert rows_after(state, *(sample_turn_diff_updated(diff) for diff in diffs)) == []
    rows = rows_after(state, sample_turn_completed())
    assert rows == golden("reducer_emits_accepted_line_fingerprints_once_from_latest_turn_diff_on_completion")


def test_accepted_line_counts_match_the_rust_test_vector() -> None:
    """accepted_lines.rs counting vector: one deleted line, three added ones (fingerprints aside)."""
    diff = (
        "diff --git a/src/lib.rs b/src/lib.rs\n--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1 +1,3 @@\n"
        "-old line\n+fn useful() {\n+}\n+    return user.id;\n"
    )
    assert count_diff_lines(diff) == (3, 1)


def test_parses_hunk_lines_that_look_like_file_headers() -> None:
    """Inside a hunk ``+++ x`` is an added line and ``--- x`` a deleted one."""
    diff = "diff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -1 +1 @@\n--- old header-like line\n+++ new header-like line\n"
    assert count_diff_lines(diff) == (1, 1)
