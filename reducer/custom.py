"""Custom facts that become rows on their own: compaction, guardian review, skills, apps, hooks, plugins.

Compaction and guardian-review rows need the thread's context (connection client and runtime, thread
metadata, spec 4.2) and are dropped, counted, without it. Skill, app, hook and plugin rows need no
reducer state and are never dropped: one row per invocation / mention / fact.
"""

from __future__ import annotations

import hashlib
from pathlib import PurePosixPath

from reducer.context import thread_context
from schemas.events import (
    AppEventParams,
    AppMentionedEvent,
    AppUsedEvent,
    CompactionEvent,
    CompactionEventParams,
    GuardianReviewEvent,
    GuardianReviewEventParams,
    HookRunEvent,
    HookRunEventParams,
    PluginDisabledEvent,
    PluginEnabledEvent,
    PluginEventParams,
    PluginInstalledEvent,
    PluginUninstalledEvent,
    PluginUsedEvent,
    PluginUsedEventParams,
    Row,
    SkillInvocationEvent,
    SkillInvocationEventParams,
)
from schemas.facts import (
    AppInvocation,
    AppMentioned,
    AppUsed,
    Compaction,
    GuardianReviewFact,
    HookRun,
    PluginStateChanged,
    PluginTelemetryMetadata,
    PluginUsed,
    SkillInvoked,
    TrackEventsContext,
)
from schemas.state import FamilyState, PartitionState

# --- thread-scoped rows ---------------------------------------------------------------------------


def on_compaction(state: PartitionState, family: FamilyState | None, fact: Compaction, rows: list[Row]) -> None:
    context = thread_context(state, family, fact.thread_id)
    if context is None:
        return
    metadata = context.metadata
    rows.append(
        CompactionEvent(
            event_params=CompactionEventParams(
                thread_id=fact.thread_id,
                session_id=metadata.session_id,
                turn_id=fact.turn_id,
                app_server_client=context.app_server_client,
                runtime=context.runtime,
                thread_source=metadata.thread_source,
                subagent_source=metadata.subagent_source,
                parent_thread_id=metadata.parent_thread_id,
                trigger=fact.trigger,
                reason=fact.reason,
                implementation=fact.implementation,
                phase=fact.phase,
                strategy=fact.strategy,
                status=fact.status,
                error=fact.error,
                active_context_tokens_before=fact.active_context_tokens_before,
                active_context_tokens_after=fact.active_context_tokens_after,
                retained_image_count=fact.retained_image_count,
                compaction_summary_tokens=fact.compaction_summary_tokens,
                started_at=fact.started_at,
                completed_at=fact.completed_at,
                duration_ms=fact.duration_ms,
            )
        )
    )


def on_guardian_review(
    state: PartitionState, family: FamilyState | None, fact: GuardianReviewFact, rows: list[Row]
) -> None:
    """``codex_guardian_review``: the fact's fields plus the thread's context.

    Independent of ``codex_review_event``: it touches no review summary.
    """
    context = thread_context(state, family, fact.thread_id)
    if context is None:
        return
    rows.append(
        GuardianReviewEvent(
            event_params=GuardianReviewEventParams(
                session_id=context.metadata.session_id,
                app_server_client=context.app_server_client,
                runtime=context.runtime,
                thread_id=fact.thread_id,
                turn_id=fact.turn_id,
                review_id=fact.review_id,
                target_item_id=fact.target_item_id,
                approval_request_source=fact.approval_request_source,
                reviewed_action=fact.reviewed_action,
                reviewed_action_truncated=fact.reviewed_action_truncated,
                decision=fact.decision,
                terminal_status=fact.terminal_status,
                failure_reason=fact.failure_reason,
                attempt_count=fact.attempt_count,
                risk_level=fact.risk_level,
                user_authorization=fact.user_authorization,
                outcome=fact.outcome,
                guardian_thread_id=fact.guardian_thread_id,
                guardian_session_kind=fact.guardian_session_kind,
                guardian_model=fact.guardian_model,
                guardian_reasoning_effort=fact.guardian_reasoning_effort,
                had_prior_review_context=fact.had_prior_review_context,
                review_timeout_ms=fact.review_timeout_ms,
                tool_call_count=fact.tool_call_count,
                time_to_first_token_ms=fact.time_to_first_token_ms,
                completion_latency_ms=fact.completion_latency_ms,
                started_at=fact.started_at,
                completed_at=fact.completed_at,
                input_tokens=fact.input_tokens,
                cached_input_tokens=fact.cached_input_tokens,
                output_tokens=fact.output_tokens,
                reasoning_output_tokens=fact.reasoning_output_tokens,
                total_tokens=fact.total_tokens,
            )
        )
    )


# --- skills ---------------------------------------------------------------------------------------


def normalize_path_for_skill_id(repo_url: str | None, repo_root: str | None, skill_path: str) -> str:
    """Rust ``normalize_path_for_skill_id`` over already-canonicalised paths.

    Repo-scoped skills (both ``repo_url`` and ``repo_root`` known) use the path relative to the repo
    root when the skill lies under it (component-wise, like ``Path::strip_prefix``); otherwise the
    absolute path. Backslashes become ``/``.
    """
    path = skill_path.replace("\\", "/")
    if repo_url is not None and repo_root is not None:
        root = PurePosixPath(repo_root.replace("\\", "/"))
        candidate = PurePosixPath(path)
        if candidate == root:
            return ""
        if candidate.is_relative_to(root):
            return candidate.relative_to(root).as_posix()
    return path


def skill_id_for_local_skill(repo_url: str | None, repo_root: str | None, skill_path: str, skill_name: str) -> str:
    """Lowercase hex SHA-1 of ``"<prefix>_<path>_<name>"``; prefix ``repo_<url>`` or ``personal``."""
    path = normalize_path_for_skill_id(repo_url, repo_root, skill_path)
    prefix = f"repo_{repo_url}" if repo_url is not None else "personal"
    return hashlib.sha1(f"{prefix}_{path}_{skill_name}".encode(), usedforsecurity=False).hexdigest()


def on_skill_invoked(fact: SkillInvoked, rows: list[Row]) -> None:
    tracking = fact.tracking
    for invocation in fact.invocations:
        rows.append(
            SkillInvocationEvent(
                skill_id=skill_id_for_local_skill(
                    invocation.repo_url, invocation.repo_root, invocation.skill_path, invocation.skill_name
                ),
                skill_name=invocation.skill_name,
                event_params=SkillInvocationEventParams(
                    product_client_id=fact.product_client_id,
                    skill_scope=invocation.skill_scope,
                    plugin_id=invocation.plugin_id,
                    repo_url=invocation.repo_url,
                    thread_id=tracking.thread_id,
                    turn_id=tracking.turn_id,
                    invoke_type=invocation.invocation_type,
                    model_slug=tracking.model_slug,
                ),
            )
        )


# --- apps and hooks -------------------------------------------------------------------------------


def _app_params(tracking: TrackEventsContext, app: AppInvocation, product_client_id: str) -> AppEventParams:
    return AppEventParams(
        connector_id=app.connector_id,
        thread_id=tracking.thread_id,
        turn_id=tracking.turn_id,
        app_name=app.app_name,
        product_client_id=product_client_id,
        invoke_type=app.invocation_type,
        model_slug=tracking.model_slug,
    )


def on_app_mentioned(fact: AppMentioned, rows: list[Row]) -> None:
    for mention in fact.mentions:
        rows.append(AppMentionedEvent(event_params=_app_params(fact.tracking, mention, fact.product_client_id)))


def on_app_used(fact: AppUsed, rows: list[Row]) -> None:
    rows.append(AppUsedEvent(event_params=_app_params(fact.tracking, fact.app, fact.product_client_id)))


def on_hook_run(fact: HookRun, rows: list[Row]) -> None:
    hook = fact.hook
    rows.append(
        HookRunEvent(
            event_params=HookRunEventParams(
                thread_id=fact.tracking.thread_id,
                turn_id=fact.tracking.turn_id,
                model_slug=fact.tracking.model_slug,
                hook_name=hook.event_name,
                hook_source=hook.hook_source,
                # ``running`` is not terminal; Rust reports it defensively as ``failed``.
                status="failed" if hook.status == "running" else hook.status,
            )
        )
    )


# --- plugins --------------------------------------------------------------------------------------


def _plugin_fields(plugin: PluginTelemetryMetadata, product_client_id: str) -> PluginEventParams:
    """Rust ``codex_plugin_metadata``: ``plugin_id`` is the remote id if any, else ``name@marketplace``."""
    summary = plugin.capability_summary
    key = f"{plugin.plugin_id.plugin_name}@{plugin.plugin_id.marketplace_name}"
    return PluginEventParams(
        plugin_id=plugin.remote_plugin_id if plugin.remote_plugin_id is not None else key,
        plugin_name=plugin.plugin_id.plugin_name,
        marketplace_name=plugin.plugin_id.marketplace_name,
        has_skills=None if summary is None else summary.has_skills,
        mcp_server_count=None if summary is None else len(summary.mcp_server_names),
        connector_ids=None if summary is None else list(summary.app_connector_ids),
        product_client_id=product_client_id,
    )


def on_plugin_used(fact: PluginUsed, rows: list[Row]) -> None:
    base = _plugin_fields(fact.plugin, fact.product_client_id)
    rows.append(
        PluginUsedEvent(
            event_params=PluginUsedEventParams(
                plugin_id=base.plugin_id,
                plugin_name=base.plugin_name,
                marketplace_name=base.marketplace_name,
                has_skills=base.has_skills,
                mcp_server_count=base.mcp_server_count,
                connector_ids=base.connector_ids,
                product_client_id=base.product_client_id,
                mcp_server_names=None
                if fact.plugin.capability_summary is None
                else list(fact.plugin.capability_summary.mcp_server_names),
                thread_id=fact.tracking.thread_id,
                turn_id=fact.tracking.turn_id,
                model_slug=fact.tracking.model_slug,
            )
        )
    )


def on_plugin_state_changed(fact: PluginStateChanged, rows: list[Row]) -> None:
    params = _plugin_fields(fact.plugin, fact.product_client_id)
    row: Row
    match fact.state:
        case "installed":
            row = PluginInstalledEvent(event_params=params)
        case "uninstalled":
            row = PluginUninstalledEvent(event_params=params)
        case "enabled":
            row = PluginEnabledEvent(event_params=params)
        case "disabled":
            row = PluginDisabledEvent(event_params=params)
    rows.append(row)
