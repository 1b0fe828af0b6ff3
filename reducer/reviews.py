"""Reviews: approval requests and their answers, and guardian assessments, into ``codex_review_event``.

User reviews are two-step (spec 4.3): the approval request stores a :class:`PendingReview`; the first
answer (response, effective-permissions response or abort) removes it and emits. Guardian reviews are
one-step (4.4): the ``item/autoApprovalReview/completed`` notification emits directly. Both end in
:func:`emit_review`, which first updates the reviewed tool item's summary (4.6) and then emits.
"""

from __future__ import annotations

from typing import Literal

from reducer.context import bump, item_key, request_key, thread_context
from schemas.events import (
    FinalApprovalOutcome,
    Reviewer,
    ReviewEvent,
    ReviewEventParams,
    ReviewResolution,
    ReviewStatus,
    ReviewSubjectKind,
    ReviewTrigger,
    Row,
)
from schemas.facts import (
    EffectivePermissionsApprovalResponseFact,
    ServerRequestAbortedFact,
    ServerRequestFact,
    ServerResponseFact,
)
from schemas.protocol import (
    CommandDecision,
    CommandExecutionApprovalParams,
    CommandExecutionApprovalRequest,
    CommandExecutionApprovalResult,
    FileChangeApprovalParams,
    FileChangeApprovalRequest,
    FileChangeApprovalResult,
    FileChangeDecision,
    GuardianApplyPatchAction,
    GuardianApprovalReviewAction,
    GuardianCommandAction,
    GuardianExecveAction,
    GuardianMcpToolCallAction,
    GuardianNetworkAccessAction,
    GuardianRequestPermissionsAction,
    GuardianReviewCompletedParams,
    GuardianReviewStatus,
    PermissionProfile,
    PermissionsApprovalParams,
    PermissionsApprovalRequest,
    RequestId,
)
from schemas.state import NO_ENTRIES, FamilyState, ItemReviewSummary, PartitionState, PendingReview

ITEM_ATTACHED_SUBJECTS = frozenset({"command_execution", "file_change", "mcp_tool_call"})
SETTLING_RESPONSES = (CommandExecutionApprovalResult, FileChangeApprovalResult)
"""The ``ServerResponse`` answers that end a pending review (:func:`on_server_response`); every other one,
``item/permissions/requestApproval`` included, leaves it pending."""
SETTLING_RESPONSE_METHODS = frozenset(str(cls.__struct_config__.tag) for cls in SETTLING_RESPONSES)
"""Their JSON-RPC methods, for the producer's router (``services.producer.routing``)."""

Verdict = tuple[ReviewStatus, ReviewResolution]

# --- request -> pending review --------------------------------------------------------------------


def user_review_id(request_id: RequestId) -> str:
    """``"user:" + Display(request_id)``: ``41`` -> ``user:41``, ``"abc"`` -> ``user:abc``."""
    return f"user:{request_id}"


def _command_review(request_id: RequestId, p: CommandExecutionApprovalParams) -> PendingReview:
    is_network = p.network_approval_context is not None
    additional = p.additional_permissions
    requested_network_access = (
        is_network
        or bool(p.proposed_network_policy_amendments)
        or (additional is not None and additional.network is not None and additional.network.enabled is True)
    )
    requested_additional_permissions = additional is not None
    trigger: ReviewTrigger
    if p.approval_id is not None:
        trigger = "execve_intercept"
    elif requested_network_access:
        trigger = "network_policy_denial"
    elif requested_additional_permissions:
        trigger = "sandbox_denial"
    else:
        trigger = "initial"
    subject: ReviewSubjectKind = "network_access" if is_network else "command_execution"
    return _user_review(
        request_id, p, (subject, subject, trigger, requested_additional_permissions, requested_network_access)
    )


def _file_change_review(request_id: RequestId, p: FileChangeApprovalParams) -> PendingReview:
    grant = p.grant_root is not None
    trigger: ReviewTrigger = "sandbox_denial" if grant else "initial"
    return _user_review(request_id, p, ("file_change", "apply_patch", trigger, grant, False))


def _permission_flags(permissions: PermissionProfile) -> tuple[ReviewTrigger, bool, bool]:
    """(trigger, requested_additional_permissions, requested_network_access) of a permissions request."""
    network = permissions.network is not None and permissions.network.enabled is True
    additional = network or permissions.file_system is not None
    if network:
        return "network_policy_denial", additional, network
    if additional:
        return "sandbox_denial", additional, network
    return "initial", additional, network


def _permissions_review(request_id: RequestId, p: PermissionsApprovalParams) -> PendingReview:
    trigger, additional, network = _permission_flags(p.permissions)
    return _user_review(request_id, p, ("permissions", "permissions", trigger, additional, network))


Subject = tuple[ReviewSubjectKind, str, ReviewTrigger, bool, bool]
"""(subject_kind, subject_name, trigger, requested_additional_permissions, requested_network_access)."""


def _user_review(
    request_id: RequestId,
    p: CommandExecutionApprovalParams | FileChangeApprovalParams | PermissionsApprovalParams,
    subject: Subject,
) -> PendingReview:
    """The pending user review of an approval request about ``subject``."""
    kind, name, trigger, additional, network = subject
    return PendingReview(
        thread_id=p.thread_id,
        turn_id=p.turn_id,
        item_id=p.item_id,
        review_id=user_review_id(request_id),
        subject_kind=kind,
        subject_name=name,
        trigger=trigger,
        started_at_ms=p.started_at_ms,
        requested_additional_permissions=additional,
        requested_network_access=network,
    )


def on_server_request(state: PartitionState, family: FamilyState, producer: str, fact: ServerRequestFact) -> None:
    """Store a pending user review (overwriting one with the same id); other server requests are ignored."""
    request = fact.request
    match request:
        case CommandExecutionApprovalRequest():
            review = _command_review(request.id, request.params)
        case FileChangeApprovalRequest():
            review = _file_change_review(request.id, request.params)
        case PermissionsApprovalRequest():
            review = _permissions_review(request.id, request.params)
        case _:
            return
    if review.started_at_ms < 0:
        bump(state, "negative_started_at")
        return
    if not family.pending_reviews:
        family.pending_reviews = {}  # NO_ENTRIES is shared and read-only (schemas.state)
    family.pending_reviews[request_key(producer, request.id)] = review


# --- answers -> verdicts --------------------------------------------------------------------------


def command_verdict(decision: CommandDecision) -> Verdict:
    """The file-change table for the four plain decisions, plus the two amendment objects."""
    if isinstance(decision, str):
        return file_change_verdict(decision)
    match decision:
        case _ if decision.accept_with_execpolicy_amendment is not None:
            return "approved", "exec_policy_amendment"
        case _ if decision.apply_network_policy_amendment is not None:
            action = decision.apply_network_policy_amendment.network_policy_amendment.action
            return ("approved" if action == "allow" else "denied"), "network_policy_amendment"
        case _:
            raise ValueError("command decision object names no known variant")


def file_change_verdict(decision: FileChangeDecision) -> Verdict:
    match decision:
        case "accept":
            return "approved", "none"
        case "acceptForSession":
            return "approved", "session_approval"
        case "decline":
            return "denied", "none"
        case "cancel":
            return "aborted", "none"


def _take_pending(
    state: PartitionState, family: FamilyState | None, producer: str, request_id: RequestId
) -> PendingReview | None:
    review = family.pending_reviews.pop(request_key(producer, request_id), None) if family else None
    if review is None:
        bump(state, "unknown_request_id")
    elif family is not None and not family.pending_reviews:
        family.pending_reviews = NO_ENTRIES
    return review


def on_server_response(
    state: PartitionState, family: FamilyState | None, producer: str, fact: ServerResponseFact, rows: list[Row]
) -> None:
    response = fact.response
    match response:
        case CommandExecutionApprovalResult():
            verdict = command_verdict(response.response.decision)
        case FileChangeApprovalResult():
            verdict = file_change_verdict(response.response.decision)
        case _:
            return
    # The method of the answer is not checked against the pending review's kind (as in Rust).
    review = _take_pending(state, family, producer, response.id)
    if review is not None and family is not None:
        emit_review(state, family, review, "user", verdict, fact.completed_at_ms, rows)


def on_effective_permissions_response(
    state: PartitionState,
    family: FamilyState | None,
    producer: str,
    fact: EffectivePermissionsApprovalResponseFact,
    rows: list[Row],
) -> None:
    review = _take_pending(state, family, producer, fact.request_id)
    if review is None or family is None:
        return
    permissions = fact.response.permissions
    verdict: Verdict
    if permissions.network is None and permissions.file_system is None:
        verdict = ("denied", "none")
    elif fact.response.scope == "session":
        verdict = ("approved", "session_approval")
    else:
        verdict = ("approved", "none")
    emit_review(state, family, review, "user", verdict, fact.completed_at_ms, rows)


def on_server_request_aborted(
    state: PartitionState, family: FamilyState | None, producer: str, fact: ServerRequestAbortedFact, rows: list[Row]
) -> None:
    review = _take_pending(state, family, producer, fact.request_id)
    if review is not None and family is not None:
        emit_review(state, family, review, "user", ("aborted", "none"), fact.completed_at_ms, rows)


# --- guardian -------------------------------------------------------------------------------------


def guardian_verdict(status: GuardianReviewStatus) -> Verdict | None:
    """Terminal status of a guardian assessment; ``None`` for ``inProgress`` (not terminal)."""
    match status:
        case "inProgress":
            return None
        case "approved":
            return "approved", "none"
        case "denied":
            return "denied", "none"
        case "timedOut":
            return "timed_out", "none"
        case "aborted":
            return "aborted", "none"


def _guardian_subject(action: GuardianApprovalReviewAction) -> Subject:
    """The :data:`Subject` a guardian assessment is about."""
    match action:
        case GuardianCommandAction():
            return "command_execution", "command_execution", "initial", False, False
        case GuardianExecveAction():
            return "command_execution", "command_execution", "execve_intercept", False, False
        case GuardianApplyPatchAction():
            return "file_change", "apply_patch", "sandbox_denial", True, False
        case GuardianNetworkAccessAction():
            return "network_access", "network_access", "network_policy_denial", True, True
        case GuardianRequestPermissionsAction():
            trigger, additional, network = _permission_flags(action.permissions)
            return "permissions", "permissions", trigger, additional, network
        case GuardianMcpToolCallAction():
            return "mcp_tool_call", action.tool_name, "initial", False, False


def on_guardian_review_completed(
    state: PartitionState, family: FamilyState, params: GuardianReviewCompletedParams, rows: list[Row]
) -> None:
    verdict = guardian_verdict(params.review.status)
    if verdict is None:
        return
    if params.started_at_ms < 0 or params.completed_at_ms < 0:
        bump(state, "negative_timestamp")
        return
    kind, name, trigger, additional, network = _guardian_subject(params.action)
    review = PendingReview(
        thread_id=params.thread_id,
        turn_id=params.turn_id,
        item_id=params.target_item_id,
        review_id=params.review_id,
        subject_kind=kind,
        subject_name=name,
        trigger=trigger,
        started_at_ms=params.started_at_ms,
        requested_additional_permissions=additional,
        requested_network_access=network,
    )
    emit_review(state, family, review, "guardian", verdict, params.completed_at_ms, rows)


# --- emission -------------------------------------------------------------------------------------


def final_approval_outcome(reviewer: Reviewer, verdict: Verdict) -> FinalApprovalOutcome:
    status, resolution = verdict
    if reviewer == "guardian":
        if status == "approved":
            return "guardian_approved"
        return "guardian_denied" if status == "denied" else "guardian_aborted"
    if status == "approved":
        return "user_approved_for_session" if resolution == "session_approval" else "user_approved"
    return "user_denied" if status == "denied" else "user_aborted"


def _record_on_item(family: FamilyState, review: PendingReview, reviewer: Reviewer, verdict: Verdict) -> None:
    if review.item_id is None or review.subject_kind not in ITEM_ATTACHED_SUBJECTS:
        return
    key = item_key(review.thread_id, review.turn_id, review.item_id)
    summary = family.summaries.get(key)
    if summary is None:
        if not family.summaries:
            family.summaries = {}  # NO_ENTRIES is shared and read-only (schemas.state)
        summary = family.summaries[key] = ItemReviewSummary()
    summary.review_count += 1
    if reviewer == "guardian":
        summary.guardian_review_count += 1
    else:
        summary.user_review_count += 1
    summary.final_approval_outcome = final_approval_outcome(reviewer, verdict)
    summary.requested_additional_permissions |= review.requested_additional_permissions
    summary.requested_network_access |= review.requested_network_access


def emit_review(
    state: PartitionState,
    family: FamilyState,
    review: PendingReview,
    reviewer: Literal["user", "guardian"],
    verdict: Verdict,
    completed_at_ms: int,
    rows: list[Row],
) -> None:
    """Spec 4.5: update the item summary first, then emit if the thread has context."""
    _record_on_item(family, review, reviewer, verdict)
    context = thread_context(state, family, review.thread_id)
    if context is None:
        return
    duration = completed_at_ms - review.started_at_ms
    status, resolution = verdict
    rows.append(
        ReviewEvent(
            event_params=ReviewEventParams(
                thread_id=review.thread_id,
                turn_id=review.turn_id,
                item_id=review.item_id,
                review_id=review.review_id,
                app_server_client=context.app_server_client,
                runtime=context.runtime,
                thread_source=context.metadata.thread_source,
                subagent_source=context.metadata.subagent_source,
                parent_thread_id=context.metadata.parent_thread_id,
                subject_kind=review.subject_kind,
                subject_name=review.subject_name,
                reviewer=reviewer,
                trigger=review.trigger,
                status=status,
                resolution=resolution,
                started_at_ms=review.started_at_ms,
                completed_at_ms=completed_at_ms,
                duration_ms=duration if duration >= 0 else None,
            )
        )
    )
