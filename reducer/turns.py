"""Turns: ``codex_turn_event``, ``codex_turn_steer_event`` and ``codex_accepted_line_fingerprints``.

A turn's state (:class:`schemas.state.TurnState`, keyed by turn id inside the family) is filled from
several facts in any order (spec 4.8, other-events 3.3):

* ``turn/start`` response (matched to its pending request) -> connection, thread, image count;
* ``TurnResolvedConfig`` -> thread, image count, configuration;
* ``TurnTokenUsage`` -> thread, token usage;
* ``TurnProfile`` -> the time profile; ``TurnCodexError`` -> the core error (thread only if unset);
* ``turn/started`` -> start time; ``turn/diff/updated`` -> thread, latest diff;
* ``turn/completed`` -> status, error, end time, duration;
* tool items (:mod:`reducer.items`) -> tool counts; accepted steers -> steer count.

After a turn/start response, a resolved config, a token usage or a completion, :func:`maybe_emit_turn`
emits the turn row once thread, image count, configuration, profile and completion are all known (the
rule at b39f943a6; a profile also triggers it), followed by the accepted-lines row when the latest diff
changed lines, and then deletes the turn state.

Wall-clock reads of the Rust reducer come from the triggering fact's ``observed_at_ms``: a steer's
``created_at`` is the steer *request*'s, accepted-lines ``completed_at`` is the emitting fact's.
"""

from __future__ import annotations

from typing import cast

import msgspec

from reducer.context import bump, client_request_key, connection_key, non_negative, shared, shared_or_none
from schemas.events import (
    ACCEPTED_LINE_FINGERPRINTS_PARAMS_EVENT_TYPE,
    AcceptedLineFingerprintsEvent,
    AcceptedLineFingerprintsEventParams,
    Row,
    ThreadInitializationMode,
    TurnEvent,
    TurnEventParams,
    TurnEventStatus,
    TurnSteerEvent,
    TurnSteerEventParams,
    TurnSteerRejectionReason,
    TurnSteerResult,
    TurnSubmissionType,
)
from schemas.facts import (
    ClientRequestFact,
    ClientResponseFact,
    ErrorResponseFact,
    TurnCodexErrorFact,
    TurnProfileFact,
    TurnResolvedConfig,
    TurnTokenUsage,
)
from schemas.protocol import (
    RequestId,
    TurnDiffParams,
    TurnNotificationParams,
    TurnStartRequest,
    TurnStartResult,
    TurnSteerRequest,
    UserInput,
)
from schemas.protocol import (
    TurnSteerResult as TurnSteerResponseResult,
)
from schemas.state import (
    NO_ENTRIES,
    DiffLineCounts,
    FamilyState,
    PartitionState,
    PendingTurnRequest,
    ResolvedTurnConfig,
    TokenUsage,
    TurnCodexError,
    TurnCompletion,
    TurnState,
)

PRODUCT_SURFACE = "codex"
"""``product_surface`` of accepted-lines rows."""


def ensure_turn(family: FamilyState, turn_id: str) -> TurnState:
    turn = family.turns.get(turn_id)
    if turn is None:
        if not family.turns:
            family.turns = {}  # NO_ENTRIES is shared and read-only (schemas.state)
        turn = family.turns[turn_id] = TurnState()
    return turn


def num_input_images(inputs: list[UserInput]) -> int:
    """Inputs whose ``type`` is ``image`` or ``localImage``."""
    return sum(1 for item in inputs if item.type in ("image", "localImage"))


# --- client requests and their answers ------------------------------------------------------------


def on_client_request(family: FamilyState, producer: str, fact: ClientRequestFact, now_s: int) -> None:
    """Remember a ``turn/start`` or ``turn/steer`` request (overwriting one with the same key).

    ``now_s`` (the fact's ``observed_at_ms // 1000``) is the steer's ``created_at``: Rust reads the
    wall clock when it ingests the request.
    """
    key = client_request_key(producer, fact.connection_id, fact.request_id)
    request = fact.request
    if not family.requests and isinstance(request, (TurnStartRequest, TurnSteerRequest)):
        family.requests = {}  # NO_ENTRIES is shared and read-only (schemas.state)
    match request:
        case TurnStartRequest():
            family.requests[key] = PendingTurnRequest(
                thread_id=shared(request.params.thread_id), num_input_images=num_input_images(request.params.input)
            )
        case TurnSteerRequest():
            family.requests[key] = PendingTurnRequest(
                thread_id=shared(request.params.thread_id),
                num_input_images=num_input_images(request.params.input),
                expected_turn_id=request.params.expected_turn_id,
                created_at=now_s,
                is_steer=True,
            )
        case _:
            pass


def _take_request(
    state: PartitionState, family: FamilyState | None, producer: str, connection_id: int, request_id: RequestId
) -> PendingTurnRequest | None:
    """Remove and return the pending request an answer refers to (``None``, counted, if unknown)."""
    if family is None:
        bump(state, "unknown_client_request")
        return None
    pending = family.requests.pop(client_request_key(producer, connection_id, request_id), None)
    if pending is None:
        bump(state, "unknown_client_request")
    elif not family.requests:
        family.requests = NO_ENTRIES
    return pending


def on_turn_start_response(
    state: PartitionState,
    family: FamilyState | None,
    producer: str,
    fact: ClientResponseFact,
    result: TurnStartResult,
    now_s: int,
    rows: list[Row],
) -> None:
    """Attach the request's connection, thread and image count to the started turn.

    The pending entry is removed whatever its kind; a response that answers no pending ``turn/start``
    is ignored (no turn state is created).
    """
    pending = _take_request(state, family, producer, fact.connection_id, fact.request_id)
    if family is None or pending is None or pending.is_steer:
        return
    turn_id = result.response.turn.id
    turn = ensure_turn(family, turn_id)
    turn.connection = connection_key(producer, fact.connection_id)
    turn.thread_id = pending.thread_id
    turn.num_input_images = pending.num_input_images
    maybe_emit_turn(state, family, turn_id, now_s, rows)


def on_turn_steer_response(
    state: PartitionState,
    family: FamilyState | None,
    producer: str,
    fact: ClientResponseFact,
    result: TurnSteerResponseResult,
    rows: list[Row],
) -> None:
    """An accepted steer: count it on the accepted turn (if that turn has state) and emit it."""
    pending = _take_request(state, family, producer, fact.connection_id, fact.request_id)
    if family is None or pending is None or not pending.is_steer:
        return
    accepted_turn_id = result.response.turn_id
    turn = family.turns.get(accepted_turn_id)
    if turn is not None:
        turn.steer_count += 1
    _emit_steer(state, family, producer, fact.connection_id, pending, accepted_turn_id, "accepted", None, rows)


def on_error_response(
    state: PartitionState, family: FamilyState | None, producer: str, fact: ErrorResponseFact, rows: list[Row]
) -> None:
    """A failed request: a ``turn/start`` is forgotten, a ``turn/steer`` becomes a rejected steer row."""
    pending = _take_request(state, family, producer, fact.connection_id, fact.request_id)
    if family is None or pending is None or not pending.is_steer:
        return
    reason: TurnSteerRejectionReason | None = fact.error_type
    _emit_steer(state, family, producer, fact.connection_id, pending, None, "rejected", reason, rows)


def _emit_steer(
    state: PartitionState,
    family: FamilyState,
    producer: str,
    connection_id: int,
    pending: PendingTurnRequest,
    accepted_turn_id: str | None,
    result: TurnSteerResult,
    rejection_reason: TurnSteerRejectionReason | None,
    rows: list[Row],
) -> None:
    """Steer rows use the *request's* connection (not the thread's) and the thread's metadata."""
    connection = state.connections.get(connection_key(producer, connection_id))
    if connection is None:
        bump(state, "missing_context:connection")
        return
    thread = family.threads.get(pending.thread_id)
    metadata = thread.metadata if thread is not None else None
    if metadata is None:
        bump(state, "missing_context:thread_metadata")
        return
    rows.append(
        TurnSteerEvent(
            event_params=TurnSteerEventParams(
                thread_id=pending.thread_id,
                session_id=metadata.session_id,
                expected_turn_id=pending.expected_turn_id,
                accepted_turn_id=accepted_turn_id,
                app_server_client=connection.app_server_client,
                runtime=connection.runtime,
                thread_source=metadata.thread_source,
                subagent_source=metadata.subagent_source,
                parent_thread_id=metadata.parent_thread_id,
                num_input_images=pending.num_input_images,
                result=result,
                rejection_reason=rejection_reason,
                created_at=pending.created_at,
            )
        )
    )


# --- notifications --------------------------------------------------------------------------------


def on_turn_started(family: FamilyState, params: TurnNotificationParams) -> None:
    """Record the start time only (negative -> null); never emits."""
    turn = ensure_turn(family, params.turn.id)
    turn.started_at = non_negative(params.turn.started_at)


def on_turn_diff_updated(family: FamilyState, params: TurnDiffParams) -> None:
    """Keep the latest diff's line counts (a later diff replaces an earlier one); never emits."""
    turn = ensure_turn(family, params.turn_id)
    turn.thread_id = shared(params.thread_id)
    added, deleted = count_diff_lines(params.diff)
    turn.latest_diff = DiffLineCounts(added=added, deleted=deleted)


def on_turn_completed(
    state: PartitionState, family: FamilyState, params: TurnNotificationParams, now_s: int, rows: list[Row]
) -> None:
    turn_info = params.turn
    turn = ensure_turn(family, turn_info.id)
    completed_at = turn_info.completed_at
    turn.completed = TurnCompletion(
        status=None if turn_info.status == "inProgress" else turn_info.status,
        turn_error=turn_info.error.codex_error_info if turn_info.error is not None else None,
        completed_at=completed_at if completed_at is not None and completed_at >= 0 else 0,
        duration_ms=non_negative(turn_info.duration_ms),
    )
    maybe_emit_turn(state, family, turn_info.id, now_s, rows)


# --- custom facts ---------------------------------------------------------------------------------


def on_turn_resolved_config(
    state: PartitionState, family: FamilyState, fact: TurnResolvedConfig, now_s: int, rows: list[Row]
) -> None:
    turn = ensure_turn(family, fact.turn_id)
    turn.thread_id = shared(fact.thread_id)
    turn.num_input_images = fact.num_input_images
    # Every string is shared (reducer.context.shared): few distinct values, one copy per open turn otherwise.
    # submission_type and sandbox_policy are Literal fields: msgspec already decodes them to shared strings.
    turn.resolved_config = ResolvedTurnConfig(
        submission_type=fact.submission_type,
        ephemeral=fact.ephemeral,
        model=shared(fact.model),
        model_provider=shared(fact.model_provider),
        sandbox_policy=fact.sandbox_policy,
        reasoning_effort=shared_or_none(fact.reasoning_effort),
        reasoning_summary=shared_or_none(fact.reasoning_summary),
        service_tier=shared_or_none(fact.service_tier),
        approval_policy=shared(fact.approval_policy),
        approvals_reviewer=shared(fact.approvals_reviewer),
        sandbox_network_access=fact.sandbox_network_access,
        collaboration_mode=shared(fact.collaboration_mode),
        personality=shared_or_none(fact.personality),
        is_first_turn=fact.is_first_turn,
        repo_hash=shared_or_none(fact.repo_hash),
        workspace_kind=shared_or_none(fact.workspace_kind),
    )
    maybe_emit_turn(state, family, fact.turn_id, now_s, rows)


def on_turn_token_usage(
    state: PartitionState, family: FamilyState, fact: TurnTokenUsage, now_s: int, rows: list[Row]
) -> None:
    turn = ensure_turn(family, fact.turn_id)
    turn.thread_id = shared(fact.thread_id)
    usage = fact.token_usage
    turn.token_usage = TokenUsage(
        input_tokens=usage.input_tokens,
        cached_input_tokens=usage.cached_input_tokens,
        output_tokens=usage.output_tokens,
        reasoning_output_tokens=usage.reasoning_output_tokens,
        total_tokens=usage.total_tokens,
    )
    maybe_emit_turn(state, family, fact.turn_id, now_s, rows)


def on_turn_profile(
    state: PartitionState, family: FamilyState, fact: TurnProfileFact, now_s: int, rows: list[Row]
) -> None:
    ensure_turn(family, fact.turn_id).profile = fact.profile
    maybe_emit_turn(state, family, fact.turn_id, now_s, rows)


def on_turn_codex_error(family: FamilyState, fact: TurnCodexErrorFact) -> None:
    """Remember the turn's core error; the thread is set only if unknown (Rust ``get_or_insert``). No emit."""
    turn = ensure_turn(family, fact.turn_id)
    if turn.thread_id is None:
        turn.thread_id = shared(fact.thread_id)
    turn.codex_error = TurnCodexError(kind=shared(fact.error_kind), http_status_code=fact.http_status_code)


# --- emission -------------------------------------------------------------------------------------


def maybe_emit_turn(state: PartitionState, family: FamilyState, turn_id: str, now_s: int, rows: list[Row]) -> None:
    """Emit the turn row (and accepted lines) once the turn is complete enough, then forget the turn.

    Missing prerequisites: wait (nothing counted). Missing context: drop the rows, counted, and keep
    the turn state (a later fact for the turn tries again), as Rust does.
    """
    turn = family.turns.get(turn_id)
    if turn is None:
        return
    thread_id = turn.thread_id
    config = turn.resolved_config
    completed = turn.completed
    images = turn.num_input_images
    profile = turn.profile
    if thread_id is None or images is None or config is None or profile is None or completed is None:
        return
    thread = family.threads.get(thread_id)
    connection_ref = turn.connection if turn.connection is not None else thread.connection if thread else None
    if connection_ref is None:
        bump(state, "missing_context:thread_connection")
        return
    connection = state.connections.get(connection_ref)
    if connection is None:
        bump(state, "missing_context:connection")
        return
    metadata = thread.metadata if thread is not None else None
    if metadata is None:
        bump(state, "missing_context:thread_metadata")
        return
    counts = turn.tool_counts
    usage = turn.token_usage
    error = turn.codex_error
    rows.append(
        TurnEvent(
            event_params=TurnEventParams(
                thread_id=thread_id,
                session_id=metadata.session_id,
                turn_id=turn_id,
                submission_type=cast("TurnSubmissionType | None", config.submission_type),
                app_server_client=connection.app_server_client,
                runtime=connection.runtime,
                ephemeral=config.ephemeral,
                thread_source=metadata.thread_source,
                initialization_mode=cast("ThreadInitializationMode", metadata.initialization_mode),
                subagent_source=metadata.subagent_source,
                parent_thread_id=metadata.parent_thread_id,
                model=config.model,
                model_provider=config.model_provider,
                sandbox_policy=config.sandbox_policy,
                reasoning_effort=config.reasoning_effort,
                reasoning_summary=_none_is_null(config.reasoning_summary),
                service_tier=config.service_tier if config.service_tier is not None else "default",
                approval_policy=config.approval_policy,
                approvals_reviewer=config.approvals_reviewer,
                sandbox_network_access=config.sandbox_network_access,
                collaboration_mode="plan" if config.collaboration_mode == "plan" else "default",
                personality=_none_is_null(config.personality),
                workspace_kind=config.workspace_kind,
                num_input_images=images,
                is_first_turn=config.is_first_turn,
                status=cast("TurnEventStatus | None", completed.status),
                turn_error=completed.turn_error,
                codex_error_kind=None if error is None else error.kind,
                codex_error_http_status_code=None if error is None else error.http_status_code,
                steer_count=turn.steer_count,
                total_tool_call_count=counts.total,
                shell_command_count=counts.shell_command,
                file_change_count=counts.file_change,
                mcp_tool_call_count=counts.mcp_tool_call,
                dynamic_tool_call_count=counts.dynamic_tool_call,
                subagent_tool_call_count=counts.subagent_tool_call,
                web_search_count=counts.web_search,
                image_generation_count=counts.image_generation,
                input_tokens=None if usage is None else usage.input_tokens,
                cached_input_tokens=None if usage is None else usage.cached_input_tokens,
                output_tokens=None if usage is None else usage.output_tokens,
                reasoning_output_tokens=None if usage is None else usage.reasoning_output_tokens,
                total_tokens=None if usage is None else usage.total_tokens,
                **msgspec.structs.asdict(profile),
                duration_ms=completed.duration_ms,
                started_at=turn.started_at,
                completed_at=completed.completed_at,
            )
        )
    )
    diff = turn.latest_diff
    if diff is not None and (diff.added or diff.deleted):
        rows.append(
            AcceptedLineFingerprintsEvent(
                event_params=AcceptedLineFingerprintsEventParams(
                    event_type=ACCEPTED_LINE_FINGERPRINTS_PARAMS_EVENT_TYPE,
                    turn_id=turn_id,
                    thread_id=thread_id,
                    product_surface=PRODUCT_SURFACE,
                    model_slug=config.model,
                    completed_at=now_s,
                    repo_hash=config.repo_hash,
                    accepted_added_lines=diff.added,
                    accepted_deleted_lines=diff.deleted,
                    line_fingerprints=[],
                )
            )
        )
    del family.turns[turn_id]
    if not family.turns:
        family.turns = NO_ENTRIES


def _none_is_null(value: str | None) -> str | None:
    """``reasoning_summary`` / ``personality``: the ``none`` variant is reported as null."""
    return None if value is None or value == "none" else value


def count_diff_lines(diff: str) -> tuple[int, int]:
    """(added, deleted) lines of a unified diff, as ``accepted_line_fingerprints_from_unified_diff`` counts.

    Per line: ``diff --git `` resets the file and leaves the hunk; ``@@ `` enters a hunk; outside a
    hunk ``+++ `` / ``--- `` are file headers; otherwise a leading ``+`` is an added line and a leading
    ``-`` a deleted one. Inside a hunk ``+++ x`` / ``--- x`` are ordinary added / deleted lines.
    (Rust splits with ``str::lines``; the trailing ``\\r`` it strips never changes a line's prefix.)
    """
    added = deleted = 0
    in_hunk = False
    for line in diff.split("\n"):
        if line.startswith("diff --git "):
            in_hunk = False
        elif line.startswith("@@ "):
            in_hunk = True
        elif not in_hunk and (line.startswith("+++ ") or line.startswith("--- ")):
            continue
        elif line.startswith("+"):
            added += 1
        elif line.startswith("-"):
            deleted += 1
    return added, deleted
