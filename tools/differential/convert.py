"""Our fact envelopes -> the Rust oracle's neutral fact format (tools/rust-oracle/README.md).

Conversion reads the envelope's raw JSON, not the decoded struct: a payload field our schemas ignore
must still reach the oracle, whose protocol types may require it. Nothing is derived or repaired here;
a fact the real protocol types reject comes back from the oracle as a conversion error.
"""

from __future__ import annotations

from typing import Any, Final

PROTOCOL_KINDS: Final = frozenset(
    {
        "initialize",
        "client_request",
        "client_response",
        "error_response",
        "server_request",
        "server_response",
        "effective_permissions_approval_response",
        "server_request_aborted",
        "notification",
    }
)


class ConversionError(ValueError):
    """An envelope that has no neutral form (not an object, no ``fact.kind``)."""


def to_neutral(envelope: Any) -> dict[str, Any]:
    """One envelope (parsed JSON) -> one neutral fact."""
    if not isinstance(envelope, dict) or not isinstance(envelope.get("fact"), dict):
        raise ConversionError("envelope has no fact object")
    fact: dict[str, Any] = envelope["fact"]
    kind = fact.get("kind")
    if not isinstance(kind, str):
        raise ConversionError("fact has no kind")
    match kind:
        case "initialize":
            return {
                "fact": "initialize",
                "connection_id": fact.get("connection_id"),
                "product_client_id": fact.get("product_client_id"),
                "runtime": fact.get("runtime"),
                "rpc_transport": fact.get("rpc_transport"),
                "payload": fact.get("params"),
            }
        case "client_request":
            return {
                "fact": "client_request",
                "connection_id": fact.get("connection_id"),
                "payload": fact.get("request"),
            }
        case "client_response":
            response = fact.get("response") or {}
            return {
                "fact": "client_response",
                "connection_id": fact.get("connection_id"),
                "request_id": fact.get("request_id"),
                "method": response.get("method"),
                "payload": response.get("response"),
            }
        case "error_response":
            return {
                "fact": "error_response",
                "connection_id": fact.get("connection_id"),
                "request_id": fact.get("request_id"),
                "error": fact.get("error"),
                "error_type": fact.get("error_type"),
            }
        case "server_request":
            return {
                "fact": "server_request",
                "connection_id": fact.get("connection_id"),
                "payload": fact.get("request"),
            }
        case "server_response":
            response = fact.get("response") or {}
            return {
                "fact": "server_response",
                "completed_at_ms": fact.get("completed_at_ms"),
                "method": response.get("method"),
                "request_id": response.get("id"),
                "payload": response.get("response"),
            }
        case "effective_permissions_approval_response":
            return {
                "fact": "effective_permissions_response",
                "completed_at_ms": fact.get("completed_at_ms"),
                "request_id": fact.get("request_id"),
                "payload": fact.get("response"),
            }
        case "server_request_aborted":
            return {
                "fact": "server_request_aborted",
                "completed_at_ms": fact.get("completed_at_ms"),
                "request_id": fact.get("request_id"),
            }
        case "notification":
            return {"fact": "notification", "payload": fact.get("notification")}
        case _:
            return {"fact": "custom", "kind": kind, "payload": {k: v for k, v in fact.items() if k != "kind"}}
