"""``sample_*`` fact builders, like codex's ``tests/support.rs``.

Every builder returns a :class:`FactEnvelope` built through the real decoder from the JSON an app-server
would publish, so the tests exercise the wire schema too. Defaults reproduce the Rust tests'
"review prerequisites": connection 7, ``codex-tui`` 1.0.0, ``thread-1`` on ``turn-1``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from reducer import initial_state, reduce
from schemas.codec import decode_fact, encode_fact, encode_row
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


def notification(method: str, params: dict[str, Any], *, family: str | None = None) -> FactEnvelope:
    """A ``notification`` fact, routed to ``family`` (default: the notification's own ``threadId``)."""
    return envelope(
        {"kind": "notification", "notification": {"method": method, "params": params}},
        thread_id=family or params["threadId"],
    )


def sample_item_started(
    item: dict[str, Any],
    *,
    thread_id: str = "thread-1",
    turn_id: str = "turn-1",
    started_at_ms: int = 1000,
    family: str | None = None,
) -> FactEnvelope:
    params = {"item": item, "threadId": thread_id, "turnId": turn_id, "startedAtMs": started_at_ms}
    return notification("item/started", params, family=family)


def sample_item_completed(
    item: dict[str, Any],
    *,
    thread_id: str = "thread-1",
    turn_id: str = "turn-1",
    completed_at_ms: int = 1042,
    family: str | None = None,
) -> FactEnvelope:
    params = {"item": item, "threadId": thread_id, "turnId": turn_id, "completedAtMs": completed_at_ms}
    return notification("item/completed", params, family=family)


def completed_command_item(
    thread_id: str = "thread-1", item_id: str = "item-1", *, family: str | None = None
) -> list[FactEnvelope]:
    """The Rust tests' CCI helper: turn started, item started at 1000, completed at 1042."""
    return [
        sample_turn_started(thread_id, family=family),
        sample_item_started(sample_command_item(item_id, status="inProgress"), thread_id=thread_id, family=family),
        sample_item_completed(sample_command_item(item_id), thread_id=thread_id, family=family),
    ]


def reviewed_family(thread: str, request_id: int) -> list[tuple[str | None, bytes]]:
    """One thread family as keyed, encoded records: the thread started, a command approval requested and
    accepted, the command run to completion (a review row and a tool-item row once reduced)."""
    envelopes = [
        sample_thread_response(thread, request_id=request_id),
        sample_command_approval_request(request_id, thread_id=thread),
        sample_server_response(request_id, "accept", thread_id=thread),
        *completed_command_item(thread),
    ]
    return [(env.thread_id, encode_fact(env)) for env in envelopes]


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


# --- turns, steers and accepted lines (codex_turn_event & co.) ------------------------------------
#
# Defaults reproduce the Rust turn tests (``ingest_turn_prerequisites``): connection 7 initialised by
# ``codex-tui`` without capabilities over stdio on the 0.1.0/macos runtime, ``thread-2`` started on it,
# ``turn/start`` request 3 with one image, answered with ``turn-2``.

MAC_RUNTIME = {
    "codex_rs_version": "0.1.0",
    "runtime_os": "macos",
    "runtime_os_version": "15.3.1",
    "runtime_arch": "aarch64",
}
STEER_OBSERVED_AT_MS = 1_710_000_100_250
"""``observed_at_ms`` of steer requests: their rows' ``created_at`` is this in seconds (1710000100)."""
COMPLETED_OBSERVED_AT_MS = 1_710_000_000_900
"""``observed_at_ms`` of ``turn/completed``: accepted-lines ``completed_at`` is this in seconds (1710000000)."""


def sample_turn_initialize(
    *, connection_id: int = 7, client_name: str = "codex-tui", product_client_id: str = "codex-tui"
) -> FactEnvelope:
    """The Rust ``ingest_initialize``: no capabilities, stdio, the 0.1.0/macos runtime."""
    return sample_initialize(
        connection_id=connection_id,
        client_name=client_name,
        experimental_api=None,
        product_client_id=product_client_id,
        runtime=MAC_RUNTIME,
        rpc_transport="stdio",
    )


def sample_turn_start_request(
    thread_id: str = "thread-2", *, request_id: int = 3, connection_id: int = 7, family: str | None = None
) -> FactEnvelope:
    """``turn/start`` with a text and an image input (one image)."""
    return envelope(
        {
            "kind": "client_request",
            "connection_id": connection_id,
            "request_id": request_id,
            "request": {
                "method": "turn/start",
                "id": request_id,
                "params": {
                    "threadId": thread_id,
                    "input": [
                        {"type": "text", "text": "hello", "text_elements": []},
                        {"type": "image", "url": "https://example.com/a.png"},
                    ],
                },
            },
        },
        thread_id=family or thread_id,
    )


def sample_turn_start_response(
    turn_id: str = "turn-2", *, request_id: int = 3, connection_id: int = 7, family: str = "thread-2"
) -> FactEnvelope:
    return envelope(
        {
            "kind": "client_response",
            "connection_id": connection_id,
            "request_id": request_id,
            "response": {
                "method": "turn/start",
                "id": request_id,
                "response": {
                    "turn": {
                        "id": turn_id,
                        "items": [],
                        "status": "inProgress",
                        "error": None,
                        "startedAt": None,
                        "completedAt": None,
                        "durationMs": None,
                    }
                },
            },
        },
        thread_id=family,
    )


def sample_turn_steer_request(
    thread_id: str = "thread-2",
    expected_turn_id: str = "turn-2",
    *,
    request_id: int = 4,
    connection_id: int = 7,
    observed_at_ms: int = STEER_OBSERVED_AT_MS,
    family: str | None = None,
) -> FactEnvelope:
    """``turn/steer`` with a text and a local-image input (one image)."""
    return envelope(
        {
            "kind": "client_request",
            "connection_id": connection_id,
            "request_id": request_id,
            "request": {
                "method": "turn/steer",
                "id": request_id,
                "params": {
                    "threadId": thread_id,
                    "expectedTurnId": expected_turn_id,
                    "input": [
                        {"type": "text", "text": "more", "text_elements": []},
                        {"type": "localImage", "path": "/tmp/a.png"},
                    ],
                },
            },
        },
        thread_id=family or thread_id,
        observed_at_ms=observed_at_ms,
    )


def sample_turn_steer_response(
    turn_id: str = "turn-2", *, request_id: int = 4, connection_id: int = 7, family: str = "thread-2"
) -> FactEnvelope:
    return envelope(
        {
            "kind": "client_response",
            "connection_id": connection_id,
            "request_id": request_id,
            "response": {"method": "turn/steer", "id": request_id, "response": {"turnId": turn_id}},
        },
        thread_id=family,
    )


def sample_error_response(
    request_id: int,
    error_type: str | None,
    *,
    connection_id: int = 7,
    code: int = -32600,
    message: str = "no active turn to steer",
    family: str = "thread-2",
) -> FactEnvelope:
    return envelope(
        {
            "kind": "error_response",
            "connection_id": connection_id,
            "request_id": request_id,
            "error": {"code": code, "message": message, "data": None},
            "error_type": error_type,
        },
        thread_id=family,
    )


def sample_turn_resolved_config(thread_id: str = "thread-2", turn_id: str = "turn-2", **overrides: Any) -> FactEnvelope:
    """The Rust ``sample_turn_resolved_config`` (read-only sandbox in ``/tmp``: no repo hash)."""
    fact: dict[str, Any] = {
        "kind": "turn_resolved_config",
        "turn_id": turn_id,
        "thread_id": thread_id,
        "num_input_images": 1,
        "submission_type": None,
        "ephemeral": False,
        "model": "gpt-5",
        "model_provider": "openai",
        "sandbox_policy": "read_only",
        "reasoning_effort": None,
        "reasoning_summary": None,
        "service_tier": None,
        "approval_policy": "on-request",
        "approvals_reviewer": "auto_review",
        "sandbox_network_access": True,
        "collaboration_mode": "plan",
        "personality": None,
        "is_first_turn": True,
        "repo_hash": None,
    }
    fact.update(overrides)
    return envelope(fact, thread_id=thread_id)


def sample_turn_token_usage(thread_id: str = "thread-2", turn_id: str = "turn-2") -> FactEnvelope:
    return envelope(
        {
            "kind": "turn_token_usage",
            "turn_id": turn_id,
            "thread_id": thread_id,
            "token_usage": {
                "total_tokens": 321,
                "input_tokens": 123,
                "cached_input_tokens": 45,
                "output_tokens": 140,
                "reasoning_output_tokens": 13,
            },
        },
        thread_id=thread_id,
    )


SAMPLE_TURN_PROFILE = {
    "before_first_sampling_ms": 100,
    "sampling_ms": 700,
    "between_sampling_overhead_ms": 50,
    "tool_blocking_ms": 250,
    "after_last_sampling_ms": 134,
    "sampling_request_count": 2,
    "sampling_retry_count": 1,
}
"""Rust's ``sample_turn_profile()``."""


def sample_turn_profile(turn_id: str = "turn-2", *, family: str = "thread-2") -> FactEnvelope:
    return envelope({"kind": "turn_profile", "turn_id": turn_id, "profile": SAMPLE_TURN_PROFILE}, thread_id=family)


def sample_turn_codex_error(
    kind: str, http_status_code: int | None = None, thread_id: str = "thread-2", turn_id: str = "turn-2"
) -> FactEnvelope:
    return envelope(
        {
            "kind": "turn_codex_error",
            "turn_id": turn_id,
            "thread_id": thread_id,
            "error_kind": kind,
            "http_status_code": http_status_code,
        },
        thread_id=thread_id,
    )


def sample_turn_completed(
    thread_id: str = "thread-2",
    turn_id: str = "turn-2",
    *,
    status: str = "completed",
    codex_error_info: Any = None,
    observed_at_ms: int = COMPLETED_OBSERVED_AT_MS,
) -> FactEnvelope:
    """``turn/completed`` at 456 s after 1234 ms; an error object only when ``codex_error_info`` is given."""
    error = None if codex_error_info is None else {"message": "turn failed", "codexErrorInfo": codex_error_info}
    return envelope(
        {
            "kind": "notification",
            "notification": {
                "method": "turn/completed",
                "params": {
                    "threadId": thread_id,
                    "turn": {
                        "id": turn_id,
                        "items": [],
                        "status": status,
                        "error": error,
                        "startedAt": None,
                        "completedAt": 456,
                        "durationMs": 1234,
                    },
                },
            },
        },
        thread_id=thread_id,
        observed_at_ms=observed_at_ms,
    )


def sample_turn_diff_updated(diff: str, thread_id: str = "thread-2", turn_id: str = "turn-2") -> FactEnvelope:
    return envelope(
        {
            "kind": "notification",
            "notification": {
                "method": "turn/diff/updated",
                "params": {"threadId": thread_id, "turnId": turn_id, "diff": diff},
            },
        },
        thread_id=thread_id,
    )


def turn_prerequisites(
    *,
    include_initialize: bool = True,
    include_resolved_config: bool = True,
    include_started: bool = True,
    include_token_usage: bool = True,
    include_profile: bool = True,
) -> list[FactEnvelope]:
    """The Rust ``ingest_turn_prerequisites`` (its callers clear the thread row; see :func:`drop_rows`)."""
    facts: list[FactEnvelope] = []
    if include_initialize:
        facts += [sample_turn_initialize(), sample_thread_response("thread-2", created_at=1)]
    facts += [sample_turn_start_request(), sample_turn_start_response()]
    if include_resolved_config:
        facts.append(sample_turn_resolved_config())
    if include_started:
        facts.append(sample_turn_started("thread-2", "turn-2"))
    if include_token_usage:
        facts.append(sample_turn_token_usage())
    if include_profile:
        facts.append(sample_turn_profile())
    return facts


def sample_completed_tool_items(thread_id: str = "thread-2", turn_id: str = "turn-2") -> list[FactEnvelope]:
    """One ``item/completed`` of each tracked tool type (and no ``item/started``), as in Rust's I4."""
    items: list[dict[str, Any]] = [
        sample_command_item("item-1", duration_ms=1),
        {"type": "fileChange", "id": "file-change-1", "changes": [], "status": "completed"},
        {
            "type": "mcpToolCall",
            "id": "mcp-1",
            "server": "server",
            "tool": "search",
            "status": "completed",
            "arguments": {},
            "result": None,
            "error": None,
            "durationMs": 2,
        },
        {
            "type": "dynamicToolCall",
            "id": "dynamic-1",
            "tool": "render",
            "arguments": {},
            "status": "completed",
            "contentItems": None,
            "success": True,
            "durationMs": 3,
        },
        {
            "type": "collabAgentToolCall",
            "id": "collab-1",
            "tool": "spawnAgent",
            "status": "completed",
            "senderThreadId": thread_id,
            "receiverThreadIds": ["thread-child"],
            "prompt": "help",
            "model": "gpt-5",
            "reasoningEffort": None,
            "agentsStates": {},
        },
        {"type": "webSearch", "id": "web-1", "query": "codex", "action": None},
        {"type": "imageGeneration", "id": "image-1", "status": "completed", "revisedPrompt": None, "result": "ok"},
    ]
    return [sample_item_completed(item, thread_id=thread_id, turn_id=turn_id, completed_at_ms=1000) for item in items]


def drop_rows(facts: list[FactEnvelope]) -> PartitionState:
    """Reduce ``facts`` and discard their rows (the Rust tests' ``out.clear()``)."""
    state, _ = run(facts)
    return state


# --- custom facts: compaction, guardian, sub-agents, skills, apps, hooks, plugins -----------------


def sample_subagent_input(
    thread_id: str,
    *,
    subagent_source: Any,
    family: str,
    parent_thread_id: str | None = None,
    forked_from_thread_id: str | None = None,
    session_id: str = "session-root",
    client: str = "codex-tui",
    ephemeral: bool = False,
    created_at: int = 123,
    runtime: dict[str, str] | None = None,
) -> FactEnvelope:
    """A ``SubAgentThreadStartedInput`` as the Rust T-series tests build it (with ``session_id``)."""
    return envelope(
        {
            "kind": "subagent_thread_started",
            "session_id": session_id,
            "thread_id": thread_id,
            "parent_thread_id": parent_thread_id,
            "forked_from_thread_id": forked_from_thread_id,
            "product_client_id": client,
            "client_name": client,
            "client_version": "1.0.0",
            "model": "gpt-5",
            "ephemeral": ephemeral,
            "subagent_source": subagent_source,
            "created_at": created_at,
            "runtime": runtime or MAC_RUNTIME,
        },
        thread_id=family,
    )


def thread_spawn_source(parent_thread_id: str, *, depth: int = 1) -> dict[str, Any]:
    """Core ``SubAgentSource::ThreadSpawn`` JSON (snake_case)."""
    return {
        "thread_spawn": {
            "parent_thread_id": parent_thread_id,
            "depth": depth,
            "agent_path": None,
            "agent_nickname": None,
            "agent_role": None,
        }
    }


def sample_compaction(
    thread_id: str = "thread-1",
    *,
    turn_id: str = "turn-compact",
    family: str | None = None,
    **overrides: Any,
) -> FactEnvelope:
    """A manual, user-requested, standalone ``responses``/``memento`` compaction that completed."""
    fact: dict[str, Any] = {
        "kind": "compaction",
        "thread_id": thread_id,
        "turn_id": turn_id,
        "trigger": "manual",
        "reason": "user_requested",
        "implementation": "responses",
        "phase": "standalone_turn",
        "strategy": "memento",
        "status": "completed",
        "error": None,
        "active_context_tokens_before": 131_000,
        "active_context_tokens_after": 64_000,
        "started_at": 100,
        "completed_at": 101,
        "duration_ms": 1200,
    }
    fact.update(overrides)
    return envelope(fact, thread_id=family or thread_id)


def sample_guardian_review_fact(thread_id: str = "thread-guardian", **overrides: Any) -> FactEnvelope:
    """The Rust R10 ``GuardianReviewEventParams``: a timed-out network-access review without a target item."""
    fact: dict[str, Any] = {
        "kind": "guardian_review",
        "thread_id": thread_id,
        "turn_id": "turn-guardian",
        "review_id": "review-guardian",
        "target_item_id": None,
        "approval_request_source": "delegated_subagent",
        "reviewed_action": {"type": "network_access", "protocol": "https", "port": 443},
        "reviewed_action_truncated": False,
        "decision": "denied",
        "terminal_status": "timed_out",
        "failure_reason": "timeout",
        "risk_level": None,
        "user_authorization": None,
        "outcome": None,
        "guardian_thread_id": None,
        "guardian_session_kind": None,
        "guardian_model": None,
        "guardian_reasoning_effort": None,
        "had_prior_review_context": None,
        "review_timeout_ms": 90_000,
        "tool_call_count": None,
        "time_to_first_token_ms": None,
        "completion_latency_ms": 90_000,
        "started_at": 100,
        "completed_at": 190,
        "input_tokens": None,
        "cached_input_tokens": None,
        "output_tokens": None,
        "reasoning_output_tokens": None,
        "total_tokens": None,
    }
    fact.update(overrides)
    return envelope(fact, thread_id=thread_id)


def tracking(thread_id: str = "thread-1", turn_id: str = "turn-1", model_slug: str = "gpt-5") -> dict[str, str]:
    """A ``TrackEventsContext``."""
    return {"model_slug": model_slug, "thread_id": thread_id, "turn_id": turn_id}


def sample_skill_invoked(
    invocations: list[dict[str, Any]], *, context: dict[str, str] | None = None, product_client_id: str = "codex_cli_rs"
) -> FactEnvelope:
    context = context or tracking()
    return envelope(
        {
            "kind": "skill_invoked",
            "tracking": context,
            "invocations": invocations,
            "product_client_id": product_client_id,
        },
        thread_id=context["thread_id"],
    )


def skill_invocation(
    skill_name: str,
    skill_path: str,
    *,
    skill_scope: str = "user",
    plugin_id: str | None = None,
    invocation_type: str = "explicit",
    repo_root: str | None = None,
    repo_url: str | None = None,
) -> dict[str, Any]:
    return {
        "skill_name": skill_name,
        "skill_scope": skill_scope,
        "skill_path": skill_path,
        "plugin_id": plugin_id,
        "invocation_type": invocation_type,
        "repo_root": repo_root,
        "repo_url": repo_url,
    }


def app_invocation(connector_id: str | None, app_name: str | None, invocation_type: str | None) -> dict[str, Any]:
    return {"connector_id": connector_id, "app_name": app_name, "invocation_type": invocation_type}


def sample_app_mentioned(
    mentions: list[dict[str, Any]], *, context: dict[str, str] | None = None, product_client_id: str = "codex_cli_rs"
) -> FactEnvelope:
    context = context or tracking()
    return envelope(
        {"kind": "app_mentioned", "tracking": context, "mentions": mentions, "product_client_id": product_client_id},
        thread_id=context["thread_id"],
    )


def sample_app_used(
    app: dict[str, Any], *, context: dict[str, str] | None = None, product_client_id: str = "codex_cli_rs"
) -> FactEnvelope:
    context = context or tracking()
    return envelope(
        {"kind": "app_used", "tracking": context, "app": app, "product_client_id": product_client_id},
        thread_id=context["thread_id"],
    )


def sample_hook_run(
    event_name: str, hook_source: str, status: str, *, context: dict[str, str] | None = None
) -> FactEnvelope:
    context = context or tracking()
    return envelope(
        {
            "kind": "hook_run",
            "tracking": context,
            "hook": {"event_name": event_name, "hook_source": hook_source, "status": status},
        },
        thread_id=context["thread_id"],
    )


def sample_plugin_metadata(*, remote_plugin_id: str | None = None) -> dict[str, Any]:
    """The Rust ``sample_plugin_metadata``: ``sample@test`` with skills, two MCP servers, two connectors."""
    return {
        "plugin_id": {"plugin_name": "sample", "marketplace_name": "test"},
        "remote_plugin_id": remote_plugin_id,
        "capability_summary": {
            "config_name": "sample@test",
            "display_name": "sample",
            "description": None,
            "has_skills": True,
            "mcp_server_names": ["mcp-1", "mcp-2"],
            "app_connector_ids": ["calendar", "drive"],
        },
    }


def sample_plugin_used(
    *,
    plugin: dict[str, Any] | None = None,
    context: dict[str, str] | None = None,
    product_client_id: str = "codex_cli_rs",
) -> FactEnvelope:
    context = context or tracking()
    return envelope(
        {
            "kind": "plugin_used",
            "tracking": context,
            "plugin": plugin or sample_plugin_metadata(),
            "product_client_id": product_client_id,
        },
        thread_id=context["thread_id"],
    )


def sample_plugin_state_changed(
    state: str, *, plugin: dict[str, Any] | None = None, product_client_id: str = "codex_cli_rs"
) -> FactEnvelope:
    return envelope(
        {
            "kind": "plugin_state_changed",
            "plugin": plugin or sample_plugin_metadata(),
            "state": state,
            "product_client_id": product_client_id,
        },
        thread_id=None,
    )
