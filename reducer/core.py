"""The reducer: ``reduce(state, envelope) -> (state, rows)``, pure and deterministic.

No I/O, no clock, no globals: every time comes from the facts. ``reduce`` dispatches on the fact kind
to one ``on_*`` handler per kind (codex's ``ingest`` match); handlers mutate the partition state in
place for speed and append rows. The state is still returned, so callers (tests, replay, the Kafka
processor, the changelog) treat it as a value.

Routing contract (``schemas.facts``): a fact only touches its own family (``envelope.thread_id``) and
the partition's connection table, so families are independent of each other.
"""

from __future__ import annotations

from reducer import items, reviews, threads, turns
from schemas.events import Row
from schemas.facts import (
    ClientRequestFact,
    ClientResponseFact,
    Compaction,
    EffectivePermissionsApprovalResponseFact,
    ErrorResponseFact,
    FactEnvelope,
    GuardianReviewFact,
    Initialize,
    NotificationFact,
    ServerRequestAbortedFact,
    ServerRequestFact,
    ServerResponseFact,
    SubAgentThreadStarted,
)
from schemas.protocol import (
    GuardianReviewCompleted,
    ItemCompleted,
    ItemStarted,
    ThreadForkResult,
    ThreadResumeResult,
    ThreadStartResult,
    TurnStarted,
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


def reduce(state: PartitionState, envelope: FactEnvelope) -> tuple[PartitionState, list[Row]]:
    """Apply one fact; return the (same, updated) state and the rows it completes, in order."""
    rows: list[Row] = []
    if envelope.observed_at_ms > state.watermark_ms:
        state.watermark_ms = envelope.observed_at_ms
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
        case ClientRequestFact() | ErrorResponseFact():
            pass
        case NotificationFact():
            _on_notification(state, envelope, fact, rows)
        case SubAgentThreadStarted():
            threads.on_subagent_thread_started(_family(state, envelope), fact, rows)
        case Compaction() | GuardianReviewFact():
            pass
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
        case _:
            pass
