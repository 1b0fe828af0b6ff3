"""``sample_*`` fact builders, like codex's ``tests/support.rs``.

Every builder returns a :class:`FactEnvelope` built through the real decoder from the JSON an app-server
would publish, so the tests exercise the wire schema too. Defaults reproduce the Rust tests'
"review prerequisites": connection 7, ``codex-tui`` 1.0.0, ``thread-1`` on ``turn-1``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from reducer import initial_state, reduce
from schemas.codec import decode_fact, encode_row
from schemas.events import Row
from schemas.facts import FactEnvelope
from schemas.state import PartitionState

PRODUCER = "app-server-1"
RUNTIME = {
    "codex_rs_version": "0.99.0",
    "runtime_os": "linux",
    "runtime_os_version": "24.04",
    "runtime_arch": "x86_64",
}


def envelope(
    fact: dict[str, Any], *, thread_id: str | None = "thread-1", producer: str = PRODUCER, observed_at_ms: int = 0
) -> FactEnvelope:
    """Wrap a fact payload (``{"kind": ..., ...}``) and decode it like the reducer service does."""
    raw = msgspec.json.encode(
        {"v": 1, "producer": producer, "thread_id": thread_id, "observed_at_ms": observed_at_ms, "fact": fact}
    )
    return decode_fact(raw)


def run(facts: list[FactEnvelope], state: PartitionState | None = None) -> tuple[PartitionState, list[Row]]:
    """Reduce ``facts`` in order; return the final state and all rows."""
    state = initial_state() if state is None else state
    rows: list[Row] = []
    for fact in facts:
        state, out = reduce(state, fact)
        rows.extend(out)
    return state, rows


def as_json(rows: list[Row]) -> list[dict[str, Any]]:
    """Rows as the endpoint will see them."""
    return [msgspec.json.decode(encode_row(row)) for row in rows]


# --- connections and threads ----------------------------------------------------------------------


def sample_initialize(
    *,
    connection_id: int = 7,
    client_name: str = "codex-tui",
    client_version: str = "1.0.0",
    experimental_api: bool | None = False,
    product_client_id: str = "codex_cli_rs",
    runtime: dict[str, str] | None = None,
    rpc_transport: str = "websocket",
    producer: str = PRODUCER,
) -> FactEnvelope:
    capabilities = None if experimental_api is None else {"experimentalApi": experimental_api}
    return envelope(
        {
            "kind": "initialize",
            "connection_id": connection_id,
            "params": {"clientInfo": {"name": client_name, "version": client_version}, "capabilities": capabilities},
            "product_client_id": product_client_id,
            "runtime": runtime or RUNTIME,
            "rpc_transport": rpc_transport,
        },
        thread_id=None,
        producer=producer,
    )


def sample_thread(
    thread_id: str = "thread-1",
    *,
    session_id: str | None = None,
    source: Any = "exec",
    thread_source: str | None = "user",
    ephemeral: bool = False,
    created_at: int = 1_700_000_000,
    parent_thread_id: str | None = None,
) -> dict[str, Any]:
    thread: dict[str, Any] = {
        "id": thread_id,
        "sessionId": session_id if session_id is not None else f"session-{thread_id}",
        "ephemeral": ephemeral,
        "createdAt": created_at,
        "source": source,
        "threadSource": thread_source,
        "cwd": "/tmp",
        "status": {"type": "idle"},
    }
    if parent_thread_id is not None:
        thread["parentThreadId"] = parent_thread_id
    return thread


def sample_thread_response(
    thread_id: str = "thread-1",
    *,
    method: str = "thread/start",
    connection_id: int = 7,
    request_id: int | str = 1,
    model: str = "gpt-5",
    family: str | None = None,
    producer: str = PRODUCER,
    **thread: Any,
) -> FactEnvelope:
    return envelope(
        {
            "kind": "client_response",
            "connection_id": connection_id,
            "request_id": request_id,
            "response": {
                "method": method,
                "id": request_id,
                "response": {"thread": sample_thread(thread_id, **thread), "model": model},
            },
        },
        thread_id=family or thread_id,
        producer=producer,
    )


def review_prerequisites() -> list[FactEnvelope]:
    """Initialize connection 7 and start ``thread-1`` on it (the Rust tests' RP)."""
    return [sample_initialize(), sample_thread_response()]


# --- turns and items ------------------------------------------------------------------------------


def sample_turn_started(
    thread_id: str = "thread-1", turn_id: str = "turn-1", *, started_at: int | None = 455, family: str | None = None
) -> FactEnvelope:
    return envelope(
        {
            "kind": "notification",
            "notification": {
                "method": "turn/started",
                "params": {
                    "threadId": thread_id,
                    "turn": {"id": turn_id, "status": "inProgress", "items": [], "startedAt": started_at},
                },
            },
        },
        thread_id=family or thread_id,
    )


def sample_command_item(
    item_id: str = "item-1",
    *,
    status: str = "completed",
    source: str = "agent",
    exit_code: int | None = 0,
    duration_ms: int | None = 42,
    actions: tuple[str, ...] = (),
) -> dict[str, Any]:
    return {
        "type": "commandExecution",
        "id": item_id,
        "command": "echo hi",
        "cwd": "/tmp",
        "processId": None,
        "source": source,
        "status": status,
        "commandActions": [{"type": kind, "command": "x"} for kind in actions],
        "aggregatedOutput": None,
        "exitCode": exit_code,
        "durationMs": duration_ms,
    }


def sample_item_started(
    item: dict[str, Any],
    *,
    thread_id: str = "thread-1",
    turn_id: str = "turn-1",
    started_at_ms: int = 1000,
    family: str | None = None,
) -> FactEnvelope:
    return envelope(
        {
            "kind": "notification",
            "notification": {
                "method": "item/started",
                "params": {"item": item, "threadId": thread_id, "turnId": turn_id, "startedAtMs": started_at_ms},
            },
        },
        thread_id=family or thread_id,
    )


def sample_item_completed(
    item: dict[str, Any],
    *,
    thread_id: str = "thread-1",
    turn_id: str = "turn-1",
    completed_at_ms: int = 1042,
    family: str | None = None,
) -> FactEnvelope:
    return envelope(
        {
            "kind": "notification",
            "notification": {
                "method": "item/completed",
                "params": {"item": item, "threadId": thread_id, "turnId": turn_id, "completedAtMs": completed_at_ms},
            },
        },
        thread_id=family or thread_id,
    )


def completed_command_item(
    thread_id: str = "thread-1", item_id: str = "item-1", *, family: str | None = None
) -> list[FactEnvelope]:
    """The Rust tests' CCI helper: turn started, item started at 1000, completed at 1042."""
    return [
        sample_turn_started(thread_id, family=family),
        sample_item_started(sample_command_item(item_id, status="inProgress"), thread_id=thread_id, family=family),
        sample_item_completed(sample_command_item(item_id), thread_id=thread_id, family=family),
    ]


# --- approvals ------------------------------------------------------------------------------------


def sample_command_approval_request(
    request_id: int | str = 41,
    *,
    thread_id: str = "thread-1",
    turn_id: str = "turn-1",
    item_id: str = "item-1",
    started_at_ms: int = 1000,
    approval_id: str | None = None,
    network_approval_context: dict[str, Any] | None = None,
    additional_permissions: dict[str, Any] | None = None,
    proposed_network_policy_amendments: list[dict[str, Any]] | None = None,
    connection_id: int = 7,
    family: str | None = None,
) -> FactEnvelope:
    return envelope(
        {
            "kind": "server_request",
            "connection_id": connection_id,
            "request": {
                "method": "item/commandExecution/requestApproval",
                "id": request_id,
                "params": {
                    "threadId": thread_id,
                    "turnId": turn_id,
                    "itemId": item_id,
                    "startedAtMs": started_at_ms,
                    "approvalId": approval_id,
                    "reason": None,
                    "networkApprovalContext": network_approval_context,
                    "command": None,
                    "cwd": None,
                    "commandActions": None,
                    "additionalPermissions": additional_permissions,
                    "proposedExecpolicyAmendment": None,
                    "proposedNetworkPolicyAmendments": proposed_network_policy_amendments,
                },
            },
        },
        thread_id=family or thread_id,
    )


def sample_file_change_approval_request(
    request_id: int | str = 81,
    *,
    thread_id: str = "thread-1",
    turn_id: str = "turn-1",
    item_id: str = "item-1",
    started_at_ms: int = 1000,
    grant_root: str | None = None,
) -> FactEnvelope:
    return envelope(
        {
            "kind": "server_request",
            "connection_id": 7,
            "request": {
                "method": "item/fileChange/requestApproval",
                "id": request_id,
                "params": {
                    "threadId": thread_id,
                    "turnId": turn_id,
                    "itemId": item_id,
                    "startedAtMs": started_at_ms,
                    "reason": None,
                    "grantRoot": grant_root,
                },
            },
        },
        thread_id=thread_id,
    )


def sample_permissions_approval_request(
    request_id: int | str = 51,
    *,
    thread_id: str = "thread-1",
    turn_id: str = "turn-1",
    item_id: str = "permissions-1",
    started_at_ms: int = 1000,
    permissions: dict[str, Any] | None = None,
) -> FactEnvelope:
    return envelope(
        {
            "kind": "server_request",
            "connection_id": 7,
            "request": {
                "method": "item/permissions/requestApproval",
                "id": request_id,
                "params": {
                    "threadId": thread_id,
                    "turnId": turn_id,
                    "itemId": item_id,
                    "startedAtMs": started_at_ms,
                    "cwd": "/tmp",
                    "reason": None,
                    "permissions": (
                        permissions if permissions is not None else {"network": {"enabled": True}, "fileSystem": None}
                    ),
                },
            },
        },
        thread_id=thread_id,
    )


def sample_server_response(
    request_id: int | str,
    decision: Any,
    *,
    completed_at_ms: int = 1042,
    method: str = "item/commandExecution/requestApproval",
    thread_id: str = "thread-1",
) -> FactEnvelope:
    return envelope(
        {
            "kind": "server_response",
            "completed_at_ms": completed_at_ms,
            "response": {"method": method, "id": request_id, "response": {"decision": decision}},
        },
        thread_id=thread_id,
    )


def sample_effective_permissions_response(
    request_id: int | str,
    *,
    permissions: dict[str, Any] | None = None,
    scope: str = "turn",
    completed_at_ms: int = 1042,
    thread_id: str = "thread-1",
) -> FactEnvelope:
    return envelope(
        {
            "kind": "effective_permissions_approval_response",
            "completed_at_ms": completed_at_ms,
            "request_id": request_id,
            "response": {"permissions": permissions or {}, "scope": scope},
        },
        thread_id=thread_id,
    )


def sample_server_request_aborted(
    request_id: int | str, *, completed_at_ms: int = 1042, thread_id: str = "thread-1"
) -> FactEnvelope:
    return envelope(
        {"kind": "server_request_aborted", "completed_at_ms": completed_at_ms, "request_id": request_id},
        thread_id=thread_id,
    )


def sample_guardian_review_completed(
    *,
    thread_id: str = "thread-1",
    turn_id: str = "turn-1",
    review_id: str = "guardian-review-1",
    target_item_id: str | None = "item-1",
    status: str = "denied",
    action: dict[str, Any] | None = None,
    started_at_ms: int = 1000,
    completed_at_ms: int = 1042,
    family: str | None = None,
) -> FactEnvelope:
    return envelope(
        {
            "kind": "notification",
            "notification": {
                "method": "item/autoApprovalReview/completed",
                "params": {
                    "threadId": thread_id,
                    "turnId": turn_id,
                    "startedAtMs": started_at_ms,
                    "completedAtMs": completed_at_ms,
                    "reviewId": review_id,
                    "targetItemId": target_item_id,
                    "decisionSource": "agent",
                    "review": {"status": status, "riskLevel": "low", "userAuthorization": "high", "rationale": "ok"},
                    "action": action or {"type": "command", "source": "shell", "command": "echo hi", "cwd": "/tmp"},
                },
            },
        },
        thread_id=family or thread_id,
    )


def sample_subagent_thread_started(
    thread_id: str = "thread-subagent",
    *,
    parent_thread_id: str | None = "thread-1",
    subagent_source: Any = "review",
    family: str = "thread-1",
    product_client_id: str = "codex_cli_rs",
) -> FactEnvelope:
    return envelope(
        {
            "kind": "subagent_thread_started",
            "thread_id": thread_id,
            "parent_thread_id": parent_thread_id,
            "product_client_id": product_client_id,
            "client_name": "codex-tui",
            "client_version": "1.0.0",
            "model": "gpt-5",
            "ephemeral": False,
            "subagent_source": subagent_source,
            "created_at": 1_700_000_000,
            "runtime": RUNTIME,
        },
        thread_id=family,
    )
