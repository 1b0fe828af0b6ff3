"""Thread, compaction, guardian, skill, app, hook and plugin rows, whole, against golden JSON.

Spec 5: T1-T5 and R10; other-events section C (C.2, C.3, C.5-C.9). Each golden file in ``golden/`` was
written by hand from the Rust tests' inputs and expectations, not from this code's output. Test names
are the Rust test names; the few derived scenarios say what they prove. Rust's serialisation-only tests
(which call an ``events.rs`` builder function) run here through ``reduce`` with the equivalent fact.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reducer.custom import normalize_path_for_skill_id
from schemas.codec import encode_row
from schemas.events import AppServerClient, CompactionEvent, CompactionEventParams, ThreadInitializedEvent
from schemas.events import ThreadInitializedEventParams as ThreadParams
from schemas.protocol import RuntimeMetadata
from tests.support.builders import (
    MAC_RUNTIME,
    app_invocation,
    as_json,
    drop_rows,
    run,
    sample_app_mentioned,
    sample_app_used,
    sample_compaction,
    sample_guardian_review_fact,
    sample_hook_run,
    sample_initialize,
    sample_plugin_metadata,
    sample_plugin_state_changed,
    sample_plugin_used,
    sample_skill_invoked,
    sample_subagent_input,
    sample_thread_response,
    skill_invocation,
    thread_spawn_source,
    tracking,
)

GOLDEN = Path(__file__).parent / "golden"


def golden(name: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads((GOLDEN / f"{name}.json").read_text())
    return rows


CLI_STDIO_CLIENT = AppServerClient(
    product_client_id="codex_cli_rs",
    client_name="codex-tui",
    client_version="1.0.0",
    rpc_transport="stdio",
    experimental_api_enabled=True,
)
MAC = RuntimeMetadata(**MAC_RUNTIME)


def mac_initialize() -> Any:
    """Connection 7: ``codex-tui`` with capabilities, ``codex_cli_rs``, websocket, the 0.1.0/macos runtime."""
    return sample_initialize(runtime=MAC_RUNTIME)


# --- thread lifecycle (T1, T3, T5, C.2) -----------------------------------------------------------


def test_thread_initialized_event_serializes_expected_shape() -> None:
    row = ThreadInitializedEvent(
        event_params=ThreadParams(
            thread_id="thread-0",
            session_id="session-thread-0",
            app_server_client=CLI_STDIO_CLIENT,
            runtime=MAC,
            model="gpt-5",
            ephemeral=True,
            thread_source="user",
            initialization_mode="new",
            subagent_source=None,
            parent_thread_id=None,
            forked_from_thread_id=None,
            created_at=1,
        )
    )
    assert [json.loads(encode_row(row))] == golden("thread_initialized_event_serializes_expected_shape")


def test_initialize_caches_client_and_thread_lifecycle_publishes_once_initialized() -> None:
    """T1."""
    _, before = run([sample_thread_response("thread-no-client", created_at=1)])
    assert before == [], "thread events should require initialize"
    state, on_initialize = run([sample_initialize()])
    assert on_initialize == [], "initialize should not publish by itself"
    _, rows = run(
        [sample_thread_response("thread-1", method="thread/resume", request_id=2, ephemeral=True, created_at=1)],
        state,
    )
    assert as_json(rows) == golden("initialize_caches_client_and_thread_lifecycle_publishes_once_initialized")


def test_subagent_thread_started_publishes_without_initialize() -> None:
    """T3."""
    _, rows = run(
        [sample_subagent_input("thread-review", subagent_source="review", family="thread-review", created_at=127)]
    )
    assert as_json(rows) == golden("subagent_thread_started_publishes_without_initialize")


def test_subagent_thread_started_review_serializes_expected_shape() -> None:
    """T5."""
    _, rows = run([sample_subagent_input("thread-review", subagent_source="review", family="thread-review")])
    assert as_json(rows) == golden("subagent_thread_started_review_serializes_expected_shape")


def test_subagent_thread_started_thread_spawn_serializes_thread_lineage() -> None:
    """T5 at b39f943a6: the fact's parent and forked-from thread ids, as given."""
    parent = "11111111-1111-1111-1111-111111111111"
    fact = sample_subagent_input(
        "thread-spawn",
        subagent_source=thread_spawn_source(parent),
        family=parent,
        parent_thread_id=parent,
        forked_from_thread_id="22222222-2222-4222-8222-222222222222",
        ephemeral=True,
        created_at=124,
    )
    _, rows = run([fact])
    assert as_json(rows) == golden("subagent_thread_started_thread_spawn_serializes_thread_lineage")


def test_subagent_thread_started_does_not_take_the_parent_from_the_thread_spawn_source() -> None:
    """At b39f943a6 the row's parent is the fact's ``parent_thread_id`` only."""
    parent = "11111111-1111-1111-1111-111111111111"
    _, rows = run([sample_subagent_input("thread-spawn", subagent_source=thread_spawn_source(parent), family=parent)])
    assert as_json(rows)[0]["event_params"]["parent_thread_id"] is None


def test_subagent_thread_started_memory_consolidation_serializes_expected_shape() -> None:
    """T5."""
    fact = sample_subagent_input(
        "thread-memory", subagent_source="memory_consolidation", family="thread-memory", created_at=125
    )
    _, rows = run([fact])
    assert as_json(rows) == golden("subagent_thread_started_memory_consolidation_serializes_expected_shape")


def test_subagent_thread_started_other_serializes_expected_shape() -> None:
    """T5."""
    fact = sample_subagent_input(
        "thread-guardian", subagent_source={"other": "guardian"}, family="thread-guardian", created_at=126
    )
    _, rows = run([fact])
    assert as_json(rows) == golden("subagent_thread_started_other_serializes_expected_shape")


def test_subagent_thread_started_other_serializes_explicit_parent_thread_id() -> None:
    """T5."""
    fact = sample_subagent_input(
        "thread-guardian",
        subagent_source={"other": "guardian"},
        parent_thread_id="parent-thread-guardian",
        family="parent-thread-guardian",
        created_at=126,
    )
    _, rows = run([fact])
    assert as_json(rows) == golden("subagent_thread_started_other_serializes_explicit_parent_thread_id")


# --- compaction (C.3, T2, T4) ---------------------------------------------------------------------


def test_compaction_event_serializes_expected_shape() -> None:
    row = CompactionEvent(
        event_params=CompactionEventParams(
            thread_id="thread-1",
            session_id="session-thread-1",
            turn_id="turn-1",
            app_server_client=CLI_STDIO_CLIENT,
            runtime=MAC,
            thread_source="user",
            subagent_source=None,
            parent_thread_id=None,
            trigger="auto",
            reason="context_limit",
            implementation="responses_compact",
            phase="mid_turn",
            strategy="memento",
            status="completed",
            error=None,
            active_context_tokens_before=120_000,
            active_context_tokens_after=18_000,
            retained_image_count=None,
            compaction_summary_tokens=None,
            started_at=100,
            completed_at=106,
            duration_ms=6543,
        )
    )
    assert [json.loads(encode_row(row))] == golden("compaction_event_serializes_expected_shape")


def test_subagent_thread_started_inherits_parent_connection_for_new_thread() -> None:
    """T2: the sub-agent thread's rows use the parent thread's connection."""
    parent = "44444444-4444-4444-4444-444444444444"
    state = drop_rows(
        [
            sample_initialize(
                client_name="parent-client",
                product_client_id="parent-client",
                experimental_api=None,
                runtime=MAC_RUNTIME,
                rpc_transport="stdio",
            ),
            sample_thread_response(parent, created_at=1),
            sample_subagent_input(
                "thread-review",
                subagent_source=thread_spawn_source(parent),
                family=parent,
                parent_thread_id=parent,
                client="parent-client",
                created_at=130,
            ),
        ]
    )
    _, rows = run([sample_compaction("thread-review", family=parent)], state)
    assert as_json(rows) == golden("subagent_thread_started_inherits_parent_connection_for_new_thread")


def _resumed_subagent_thread() -> list[Any]:
    return [
        mac_initialize(),
        sample_thread_response(
            "thread-1",
            method="thread/resume",
            request_id=2,
            source={"subAgent": thread_spawn_source("22222222-2222-2222-2222-222222222222")},
            parent_thread_id="22222222-2222-2222-2222-222222222222",
            thread_source="subagent",
            created_at=1,
        ),
    ]


def test_compaction_event_ingests_custom_fact() -> None:
    """T4."""
    state = drop_rows(_resumed_subagent_thread())
    fact = sample_compaction(status="failed", error="context limit exceeded", active_context_tokens_after=131_000)
    _, rows = run([fact], state)
    assert as_json(rows) == golden("compaction_event_ingests_custom_fact")


def test_compaction_implementation_serializes_remote_v2() -> None:
    state = drop_rows(_resumed_subagent_thread())
    fact = sample_compaction(
        status="failed",
        error="context limit exceeded",
        active_context_tokens_after=131_000,
        implementation="responses_compaction_v2",
    )
    _, rows = run([fact], state)
    assert as_json(rows) == golden("compaction_implementation_serializes_remote_v2")


def test_compaction_without_thread_context_is_dropped() -> None:
    """Derived (spec 4.2): no thread context, no row; the drop is counted."""
    state, rows = run([mac_initialize(), sample_compaction("thread-unknown")])
    assert as_json(rows) == golden("compaction_without_thread_context_is_dropped")
    assert state.drops == {"missing_context:thread_connection": 1}
    assert "thread-unknown" not in state.families, "a dropped compaction creates no family"


# --- guardian review (R10) ------------------------------------------------------------------------


def test_guardian_review_event_ingests_custom_fact_with_optional_target_item() -> None:
    """R10."""
    state = drop_rows([mac_initialize(), sample_thread_response("thread-guardian", created_at=1)])
    _, rows = run([sample_guardian_review_fact()], state)
    payload = as_json(rows)
    assert payload == golden("guardian_review_event_ingests_custom_fact_with_optional_target_item")
    params = payload[0]["event_params"]
    assert "retry_reason" not in params and "rationale" not in params
    assert "target" not in params["reviewed_action"] and "host" not in params["reviewed_action"]


def test_guardian_review_without_thread_context_is_dropped() -> None:
    """Derived (spec 4.2)."""
    state, rows = run([mac_initialize(), sample_guardian_review_fact("thread-unknown")])
    assert as_json(rows) == golden("guardian_review_without_thread_context_is_dropped")
    assert state.drops == {"missing_context:thread_connection": 1}


# --- apps (C.5) -----------------------------------------------------------------------------------


def test_app_mentioned_event_serializes_expected_shape() -> None:
    _, rows = run([sample_app_mentioned([app_invocation("calendar", "Calendar", "explicit")])])
    assert as_json(rows) == golden("app_mentioned_event_serializes_expected_shape")


def test_app_used_event_serializes_expected_shape() -> None:
    fact = sample_app_used(app_invocation("drive", "Google Drive", "implicit"), context=tracking("thread-2", "turn-2"))
    _, rows = run([fact])
    assert as_json(rows) == golden("app_used_event_serializes_expected_shape")


def test_reducer_ingests_app_and_plugin_facts() -> None:
    _, rows = run(
        [
            sample_app_mentioned([app_invocation("calendar", "Calendar", "explicit")]),
            sample_app_used(app_invocation("drive", "Drive", "implicit")),
            sample_plugin_used(),
        ]
    )
    assert as_json(rows) == golden("reducer_ingests_app_and_plugin_facts")


# --- plugins (C.6) --------------------------------------------------------------------------------


def test_plugin_used_event_serializes_expected_shape() -> None:
    _, rows = run([sample_plugin_used(context=tracking("thread-3", "turn-3"))])
    assert as_json(rows) == golden("plugin_used_event_serializes_expected_shape")


def test_plugin_management_event_serializes_expected_shape() -> None:
    _, rows = run([sample_plugin_state_changed("installed")])
    assert as_json(rows) == golden("plugin_management_event_serializes_expected_shape")


def test_plugin_management_event_can_use_remote_plugin_id_override() -> None:
    plugin = sample_plugin_metadata(remote_plugin_id="plugins~Plugin_remote")
    _, rows = run([sample_plugin_state_changed("installed", plugin=plugin)])
    assert as_json(rows) == golden("plugin_management_event_can_use_remote_plugin_id_override")


def test_reducer_ingests_plugin_state_changed_fact() -> None:
    _, rows = run([sample_plugin_state_changed("disabled")])
    assert as_json(rows) == golden("reducer_ingests_plugin_state_changed_fact")


# --- hooks (C.7) ----------------------------------------------------------------------------------


def test_hook_run_event_serializes_expected_shape() -> None:
    _, rows = run([sample_hook_run("PreToolUse", "user", "completed", context=tracking("thread-3", "turn-3"))])
    assert as_json(rows) == golden("hook_run_event_serializes_expected_shape")


def test_hook_run_metadata_maps_sources_and_statuses() -> None:
    _, rows = run(
        [
            sample_hook_run("SessionStart", "system", "completed"),
            sample_hook_run("Stop", "project", "blocked"),
            sample_hook_run("Stop", "cloud_requirements", "blocked"),
            sample_hook_run("UserPromptSubmit", "unknown", "failed"),
        ]
    )
    assert as_json(rows) == golden("hook_run_metadata_maps_sources_and_statuses")


def test_hook_run_metadata_maps_stopped_status() -> None:
    _, rows = run([sample_hook_run("Stop", "user", "stopped")])
    assert as_json(rows) == golden("hook_run_metadata_maps_stopped_status")


def test_reducer_ingests_hook_run_fact() -> None:
    _, rows = run([sample_hook_run("PostToolUse", "unknown", "failed")])
    assert as_json(rows) == golden("reducer_ingests_hook_run_fact")


def test_running_hook_status_is_reported_as_failed() -> None:
    """Derived (events.rs ``analytics_hook_status``)."""
    _, rows = run([sample_hook_run("Stop", "user", "running")])
    assert as_json(rows) == golden("running_hook_status_is_reported_as_failed")


# --- skills (C.8) ---------------------------------------------------------------------------------


def test_reducer_ingests_skill_invoked_fact() -> None:
    fact = sample_skill_invoked([skill_invocation("doc", "/Users/abc/.codex/skills/doc/SKILL.md")])
    _, rows = run([fact])
    assert as_json(rows) == golden("reducer_ingests_skill_invoked_fact")


def test_reducer_includes_plugin_id_for_plugin_skill_invocations() -> None:
    invocation = skill_invocation(
        "sample:doc", "/Users/abc/.codex/plugins/cache/test/sample/skills/doc/SKILL.md", plugin_id="sample@test"
    )
    _, rows = run([sample_skill_invoked([invocation])])
    assert as_json(rows) == golden("reducer_includes_plugin_id_for_plugin_skill_invocations")


def test_normalize_path_for_skill_id_repo_scoped_uses_relative_path() -> None:
    path = normalize_path_for_skill_id(
        "https://example.com/repo.git", "/repo/root", "/repo/root/.codex/skills/doc/SKILL.md"
    )
    assert path == ".codex/skills/doc/SKILL.md"


def test_normalize_path_for_skill_id_user_scoped_uses_absolute_path() -> None:
    path = normalize_path_for_skill_id(None, None, "/Users/abc/.codex/skills/doc/SKILL.md")
    assert path == "/Users/abc/.codex/skills/doc/SKILL.md"


def test_normalize_path_for_skill_id_admin_scoped_uses_absolute_path() -> None:
    assert normalize_path_for_skill_id(None, None, "/etc/codex/skills/doc/SKILL.md") == "/etc/codex/skills/doc/SKILL.md"


def test_normalize_path_for_skill_id_repo_root_not_in_skill_path_uses_absolute_path() -> None:
    path = normalize_path_for_skill_id(
        "https://example.com/repo.git", "/repo/root", "/other/path/.codex/skills/doc/SKILL.md"
    )
    assert path == "/other/path/.codex/skills/doc/SKILL.md"


def test_normalize_path_for_skill_id_prefix_match_is_by_component() -> None:
    """Derived (``Path::strip_prefix`` compares whole components): ``/repo/rootx`` is not under ``/repo/root``."""
    path = normalize_path_for_skill_id("https://example.com/repo.git", "/repo/root", "/repo/rootx/SKILL.md")
    assert path == "/repo/rootx/SKILL.md"
