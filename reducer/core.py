"""The reducer: ``reduce(state, envelope) -> (state, rows)``, pure and deterministic.

No I/O, no clock, no globals: every time comes from the facts. ``reduce`` dispatches on the fact kind
to one ``on_*`` handler per kind (codex's ``ingest`` match); handlers mutate the partition state in
place for speed and append rows. The state is still returned, so callers (tests, replay, the Kafka
processor, the changelog) treat it as a value.

Routing contract (``schemas.facts``): a fact only touches its own family (``envelope.thread_id``) and
the partition's connection table, so families are independent of each other.
"""

from __future__ import annotations

from reducer import custom, items, reviews, threads, turns
from schemas.events import Row
from schemas.facts import (
    AppMentioned,
    AppUsed,
    ClientRequestFact,
    ClientResponseFact,
    Compaction,
    EffectivePermissionsApprovalResponseFact,
    ErrorResponseFact,
    FactEnvelope,
    GuardianReviewFact,
    HookRun,
    Initialize,
    NotificationFact,
    PluginStateChanged,
    PluginUsed,
    ServerRequestAbortedFact,
    ServerRequestFact,
    ServerResponseFact,
    SkillInvoked,
    SubAgentThreadStarted,
    TurnResolvedConfig,
    TurnTokenUsage,
)
from schemas.protocol import (
    GuardianReviewCompleted,
    ItemCompleted,
    ItemStarted,
    ThreadForkResult,
    ThreadResumeResult,
    ThreadStartResult,
    TurnCompleted,
    TurnDiffUpdated,
    TurnStarted,
    TurnStartRequest,
    TurnStartResult,
    TurnSteerRequest,
    TurnSteerResult,
)
from schemas.state import FamilyState, PartitionState

UNROUTED_PREFIX = "~unrouted/"
"""Family key of facts that arrive without a thread id (answers the producer could not route)."""


def initial_state() -> PartitionState:
    return PartitionState()


def family_key(envelope: FactEnvelope) -> str:
    return envelope.thread_id if envelope.thread_id is not None else UNROUTED_PREFIX + envelope.producer


def _family(state: PartitionState, envelope: FactEnvelope) -> FamilyState:
    key = family_key(envelope)
    family = state.families.get(key)
    if family is None:
        family = state.families[key] = FamilyState()
    if envelope.observed_at_ms > family.last_seen_ms:
        family.last_seen_ms = envelope.observed_at_ms
    return family


def _existing_family(state: PartitionState, envelope: FactEnvelope) -> FamilyState | None:
    """The family if it exists; answers to unknown requests must not create state."""
    family = state.families.get(family_key(envelope))
    if family is not None and envelope.observed_at_ms > family.last_seen_ms:
        family.last_seen_ms = envelope.observed_at_ms
    return family


def _now_s(envelope: FactEnvelope) -> int:
    """Wall-clock unix seconds where Rust called ``now_unix_seconds()``: the fact's observation time."""
    return envelope.observed_at_ms // 1000


def reduce(state: PartitionState, envelope: FactEnvelope) -> tuple[PartitionState, list[Row]]:
    """Apply one fact; return the (same, updated) state and the rows it completes, in order."""
    rows: list[Row] = []
    observed = envelope.observed_at_ms
    if observed > state.watermark_ms:
        state.watermark_ms = observed
    family = state.families.get(family_key(envelope))
    if family is not None and observed > family.last_seen_ms:
        family.last_seen_ms = observed  # any fact of a family keeps it alive, even one that changes nothing
    fact = envelope.fact
    producer = envelope.producer
    match fact:
        case Initialize():
            threads.on_initialize(state, producer, fact)
        case ServerRequestFact():
            reviews.on_server_request(state, _family(state, envelope), producer, fact)
        case ServerResponseFact():
            reviews.on_server_response(state, _existing_family(state, envelope), producer, fact, rows)
        case EffectivePermissionsApprovalResponseFact():
            reviews.on_effective_permissions_response(
                state, _existing_family(state, envelope), producer, fact, rows
            )
        case ServerRequestAbortedFact():
            reviews.on_server_request_aborted(state, _existing_family(state, envelope), producer, fact, rows)
        case ClientResponseFact():
            result = fact.response
            if isinstance(result, ThreadStartResult | ThreadResumeResult | ThreadForkResult):
                threads.on_thread_response(state, _family(state, envelope), producer, fact, result, rows)
            elif isinstance(result, TurnStartResult):
                turns.on_turn_start_response(
                    state, _existing_family(state, envelope), producer, fact, result, _now_s(envelope), rows
                )
            elif isinstance(result, TurnSteerResult):
                turns.on_turn_steer_response(state, _existing_family(state, envelope), producer, fact, result, rows)
        case ClientRequestFact():
            # Only turn/start and turn/steer are remembered; other requests create no state.
            if isinstance(fact.request, TurnStartRequest | TurnSteerRequest):
                turns.on_client_request(_family(state, envelope), producer, fact, _now_s(envelope))
        case ErrorResponseFact():
            turns.on_error_response(state, _existing_family(state, envelope), producer, fact, rows)
        case NotificationFact():
            _on_notification(state, envelope, fact, rows)
        case SubAgentThreadStarted():
            threads.on_subagent_thread_started(_family(state, envelope), fact, rows)
        case Compaction():
            custom.on_compaction(state, _existing_family(state, envelope), fact, rows)
        case GuardianReviewFact():
            custom.on_guardian_review(state, _existing_family(state, envelope), fact, rows)
        case TurnResolvedConfig():
            turns.on_turn_resolved_config(state, _family(state, envelope), fact, _now_s(envelope), rows)
        case TurnTokenUsage():
            turns.on_turn_token_usage(state, _family(state, envelope), fact, _now_s(envelope), rows)
        case SkillInvoked():
            custom.on_skill_invoked(fact, rows)
        case AppMentioned():
            custom.on_app_mentioned(fact, rows)
        case AppUsed():
            custom.on_app_used(fact, rows)
        case HookRun():
            custom.on_hook_run(fact, rows)
        case PluginUsed():
            custom.on_plugin_used(fact, rows)
        case PluginStateChanged():
            custom.on_plugin_state_changed(fact, rows)
    return state, rows


def _on_notification(state: PartitionState, envelope: FactEnvelope, fact: NotificationFact, rows: list[Row]) -> None:
    notification = fact.notification
    match notification:
        case ItemStarted():
            items.on_item_started(_family(state, envelope), notification.params)
        case ItemCompleted():
            items.on_item_completed(state, _existing_family(state, envelope), notification.params, rows)
        case GuardianReviewCompleted():
            reviews.on_guardian_review_completed(state, _family(state, envelope), notification.params, rows)
        case TurnStarted():
            turns.on_turn_started(_family(state, envelope), notification.params)
        case TurnCompleted():
            turns.on_turn_completed(state, _family(state, envelope), notification.params, _now_s(envelope), rows)
        case TurnDiffUpdated():
            turns.on_turn_diff_updated(_family(state, envelope), notification.params)
        case _:
            pass
