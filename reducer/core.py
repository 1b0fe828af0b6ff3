"""The reducer: ``reduce(state, envelope) -> (state, rows)``, pure and deterministic.

No I/O, no clock, no globals: every time comes from the facts. ``reduce`` dispatches on the fact kind
to one ``_on_<kind>`` handler (codex's ``ingest`` match) through a table keyed by the fact's class: one
dict look-up instead of a chain of ``isinstance`` checks, which is most of the cost of a long ``match``
on the hot path. Handlers mutate the partition state in place for speed and append rows. The state is
still returned, so callers (tests, replay, the Kafka processor, the changelog) treat it as a value.
Strings kept in state are interned (``reducer.context.shared``): that changes object identity only,
never a value or a row.

Routing contract (``schemas.facts``): a fact only touches its own family (``envelope.thread_id``) and
the partition's connection table, so families are independent of each other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from reducer import custom, items, reviews, threads, turns
from reducer.context import shared
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
    TurnCodexErrorFact,
    TurnProfileFact,
    TurnResolvedConfig,
    TurnTokenUsage,
)
from schemas.keys import unrouted_key
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


def initial_state() -> PartitionState:
    return PartitionState()


def family_key(envelope: FactEnvelope) -> str:
    """The fact's family: its root thread id, or its producer's :func:`~schemas.keys.unrouted_key` without one."""
    return envelope.thread_id if envelope.thread_id is not None else unrouted_key(envelope.producer)


def _family(state: PartitionState, envelope: FactEnvelope) -> FamilyState:
    """The fact's family, created if new (``last_seen_ms`` is refreshed by :func:`reduce`)."""
    key = family_key(envelope)
    family = state.families.get(key)
    if family is None:
        # The root thread id is also the root thread's key in family.threads: one shared string (context.shared).
        family = state.families[shared(key)] = FamilyState(last_seen_ms=envelope.observed_at_ms)
    return family


def _existing_family(state: PartitionState, envelope: FactEnvelope) -> FamilyState | None:
    """The family if it exists; answers to unknown requests must not create state."""
    return state.families.get(family_key(envelope))


def _now_s(envelope: FactEnvelope) -> int:
    """Wall-clock unix seconds where Rust called ``now_unix_seconds()``: the fact's observation time."""
    return envelope.observed_at_ms // 1000


F = TypeVar("F")
Handler = Callable[[PartitionState, FactEnvelope, F, list[Row]], None]
"""The handler of one fact (or notification) type ``F``: mutates the state, appends the rows it completes."""


def _entry(kind: type[F], handler: Handler[F]) -> tuple[type, Handler[Any]]:
    """One entry of a dispatch table: mypy checks that ``handler`` takes a ``kind`` (the table then can't)."""
    return kind, handler


def reduce(state: PartitionState, envelope: FactEnvelope) -> tuple[PartitionState, list[Row]]:
    """Apply one fact; return the (same, updated) state and the rows it completes, in order.

    The partition's watermark is not moved here: :mod:`reducer.clock` moves it, once per batch, for the
    facts the containment boundary (:mod:`reducer.boundary`) reduced.
    """
    rows: list[Row] = []
    observed = envelope.observed_at_ms
    fact = envelope.fact
    if type(fact) is not Initialize:  # a broadcast belongs to no family, not even its producer's unrouted one
        family = state.families.get(family_key(envelope))
        if family is not None and observed > family.last_seen_ms:
            family.last_seen_ms = observed  # any fact of a family keeps it alive, even one that changes nothing
    _HANDLERS[type(fact)](state, envelope, fact, rows)
    return state, rows


# --- one handler per fact kind --------------------------------------------------------------------


def _on_initialize(state: PartitionState, envelope: FactEnvelope, fact: Initialize, rows: list[Row]) -> None:
    threads.on_initialize(state, envelope.producer, fact)


def _on_server_request(state: PartitionState, envelope: FactEnvelope, fact: ServerRequestFact, rows: list[Row]) -> None:
    reviews.on_server_request(state, _family(state, envelope), envelope.producer, fact)


def _on_server_response(
    state: PartitionState, envelope: FactEnvelope, fact: ServerResponseFact, rows: list[Row]
) -> None:
    reviews.on_server_response(state, _existing_family(state, envelope), envelope.producer, fact, rows)


def _on_effective_permissions(
    state: PartitionState, envelope: FactEnvelope, fact: EffectivePermissionsApprovalResponseFact, rows: list[Row]
) -> None:
    reviews.on_effective_permissions_response(state, _existing_family(state, envelope), envelope.producer, fact, rows)


def _on_server_request_aborted(
    state: PartitionState, envelope: FactEnvelope, fact: ServerRequestAbortedFact, rows: list[Row]
) -> None:
    reviews.on_server_request_aborted(state, _existing_family(state, envelope), envelope.producer, fact, rows)


def _on_client_response(
    state: PartitionState, envelope: FactEnvelope, fact: ClientResponseFact, rows: list[Row]
) -> None:
    result = fact.response
    producer = envelope.producer
    if isinstance(result, (ThreadStartResult, ThreadResumeResult, ThreadForkResult)):
        threads.on_thread_response(state, _family(state, envelope), producer, fact, result, rows)
    elif isinstance(result, TurnStartResult):
        turns.on_turn_start_response(
            state, _existing_family(state, envelope), producer, fact, result, _now_s(envelope), rows
        )
    elif isinstance(result, TurnSteerResult):
        turns.on_turn_steer_response(state, _existing_family(state, envelope), producer, fact, result, rows)


def _on_client_request(state: PartitionState, envelope: FactEnvelope, fact: ClientRequestFact, rows: list[Row]) -> None:
    # Only turn/start and turn/steer are remembered; other requests create no state.
    if isinstance(fact.request, (TurnStartRequest, TurnSteerRequest)):
        turns.on_client_request(_family(state, envelope), envelope.producer, fact, _now_s(envelope))


def _on_error_response(state: PartitionState, envelope: FactEnvelope, fact: ErrorResponseFact, rows: list[Row]) -> None:
    turns.on_error_response(state, _existing_family(state, envelope), envelope.producer, fact, rows)


def _on_subagent_thread_started(
    state: PartitionState, envelope: FactEnvelope, fact: SubAgentThreadStarted, rows: list[Row]
) -> None:
    threads.on_subagent_thread_started(_family(state, envelope), fact, rows)


def _on_compaction(state: PartitionState, envelope: FactEnvelope, fact: Compaction, rows: list[Row]) -> None:
    custom.on_compaction(state, _existing_family(state, envelope), fact, rows)


def _on_guardian_review(
    state: PartitionState, envelope: FactEnvelope, fact: GuardianReviewFact, rows: list[Row]
) -> None:
    custom.on_guardian_review(state, _existing_family(state, envelope), fact, rows)


def _on_turn_resolved_config(
    state: PartitionState, envelope: FactEnvelope, fact: TurnResolvedConfig, rows: list[Row]
) -> None:
    turns.on_turn_resolved_config(state, _family(state, envelope), fact, _now_s(envelope), rows)


def _on_turn_token_usage(state: PartitionState, envelope: FactEnvelope, fact: TurnTokenUsage, rows: list[Row]) -> None:
    turns.on_turn_token_usage(state, _family(state, envelope), fact, _now_s(envelope), rows)


def _on_turn_profile(state: PartitionState, envelope: FactEnvelope, fact: TurnProfileFact, rows: list[Row]) -> None:
    turns.on_turn_profile(state, _family(state, envelope), fact, _now_s(envelope), rows)


def _on_turn_codex_error(
    state: PartitionState, envelope: FactEnvelope, fact: TurnCodexErrorFact, rows: list[Row]
) -> None:
    turns.on_turn_codex_error(_family(state, envelope), fact)


def _stateless(emit: Callable[[F, list[Row]], None]) -> Handler[F]:
    """Handler of a custom fact that reads no state (skill, app, hook, plugin rows)."""

    def handle(state: PartitionState, envelope: FactEnvelope, fact: F, rows: list[Row]) -> None:
        emit(fact, rows)

    return handle


def _on_notification(state: PartitionState, envelope: FactEnvelope, fact: NotificationFact, rows: list[Row]) -> None:
    notification = fact.notification
    handler = _NOTIFICATION_HANDLERS.get(type(notification))
    if handler is not None:  # item/autoApprovalReview/started is ignored on purpose
        handler(state, envelope, notification, rows)


def _on_item_started(
    state: PartitionState, envelope: FactEnvelope, notification: ItemStarted, rows: list[Row]
) -> None:
    items.on_item_started(_family(state, envelope), notification.params)


def _on_item_completed(
    state: PartitionState, envelope: FactEnvelope, notification: ItemCompleted, rows: list[Row]
) -> None:
    items.on_item_completed(state, _existing_family(state, envelope), notification.params, rows)


def _on_guardian_review_completed(
    state: PartitionState, envelope: FactEnvelope, notification: GuardianReviewCompleted, rows: list[Row]
) -> None:
    reviews.on_guardian_review_completed(state, _family(state, envelope), notification.params, rows)


def _on_turn_started(
    state: PartitionState, envelope: FactEnvelope, notification: TurnStarted, rows: list[Row]
) -> None:
    turns.on_turn_started(_family(state, envelope), notification.params)


def _on_turn_completed(
    state: PartitionState, envelope: FactEnvelope, notification: TurnCompleted, rows: list[Row]
) -> None:
    turns.on_turn_completed(state, _family(state, envelope), notification.params, _now_s(envelope), rows)


def _on_turn_diff_updated(
    state: PartitionState, envelope: FactEnvelope, notification: TurnDiffUpdated, rows: list[Row]
) -> None:
    turns.on_turn_diff_updated(_family(state, envelope), notification.params)


_HANDLERS: dict[type, Handler[Any]] = dict(
    (
        _entry(Initialize, _on_initialize),
        _entry(ServerRequestFact, _on_server_request),
        _entry(ServerResponseFact, _on_server_response),
        _entry(EffectivePermissionsApprovalResponseFact, _on_effective_permissions),
        _entry(ServerRequestAbortedFact, _on_server_request_aborted),
        _entry(ClientResponseFact, _on_client_response),
        _entry(ClientRequestFact, _on_client_request),
        _entry(ErrorResponseFact, _on_error_response),
        _entry(NotificationFact, _on_notification),
        _entry(SubAgentThreadStarted, _on_subagent_thread_started),
        _entry(Compaction, _on_compaction),
        _entry(GuardianReviewFact, _on_guardian_review),
        _entry(TurnResolvedConfig, _on_turn_resolved_config),
        _entry(TurnTokenUsage, _on_turn_token_usage),
        _entry(TurnProfileFact, _on_turn_profile),
        _entry(TurnCodexErrorFact, _on_turn_codex_error),
        _entry(SkillInvoked, _stateless(custom.on_skill_invoked)),
        _entry(AppMentioned, _stateless(custom.on_app_mentioned)),
        _entry(AppUsed, _stateless(custom.on_app_used)),
        _entry(HookRun, _stateless(custom.on_hook_run)),
        _entry(PluginUsed, _stateless(custom.on_plugin_used)),
        _entry(PluginStateChanged, _stateless(custom.on_plugin_state_changed)),
    )
)
"""Exactly one handler per member of ``schemas.facts.FactKind`` (checked by a unit test)."""

_NOTIFICATION_HANDLERS: dict[type, Handler[Any]] = dict(
    (
        _entry(ItemStarted, _on_item_started),
        _entry(ItemCompleted, _on_item_completed),
        _entry(GuardianReviewCompleted, _on_guardian_review_completed),
        _entry(TurnStarted, _on_turn_started),
        _entry(TurnCompleted, _on_turn_completed),
        _entry(TurnDiffUpdated, _on_turn_diff_updated),
    )
)
