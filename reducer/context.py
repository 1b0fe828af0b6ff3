"""Shared lookups: state keys and the thread context every row needs (spec 4.2)."""

from __future__ import annotations

import sys
from typing import NamedTuple

from schemas.events import AppServerClient
from schemas.keys import request_id_key
from schemas.protocol import RequestId, RuntimeMetadata
from schemas.state import KEY_SEP, FamilyState, PartitionState, ThreadMetadata

RUST_WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
"""Characters Rust's ``str::trim`` removes (Unicode ``White_Space``); Python's ``str.strip()`` differs."""


def rust_trim(text: str) -> str:
    return text.strip(RUST_WHITESPACE)


def shared(text: str) -> str:
    """``text`` as the one shared string object of its value (``sys.intern``), to keep in state.

    For strings kept in state that take few distinct values (connection keys, model, policies, sources):
    thousands of open turns then hold references to a handful of strings instead of a copy each
    (docs/performance.md, B5). Interning changes identity only, never a value, so the reducer stays
    pure: no output and no comparison depends on it. Interned strings are freed with their last
    reference, so the interpreter's table does not grow with the stream.
    """
    return sys.intern(text)


def shared_or_none(text: str | None) -> str | None:
    return None if text is None else sys.intern(text)


def connection_key(producer: str, connection_id: int) -> str:
    """Key of a connection; shared (:func:`shared`) because every thread and turn of it keeps one."""
    return shared(f"{producer}{KEY_SEP}{connection_id}")


def request_key(producer: str, request_id: RequestId) -> str:
    """Key of a server request: ids are namespaced by producer and typed (:func:`~schemas.keys.request_id_key`)."""
    return f"{producer}{KEY_SEP}{request_id_key(request_id)}"


def client_request_key(producer: str, connection_id: int, request_id: RequestId) -> str:
    return f"{connection_key(producer, connection_id)}{KEY_SEP}{KEY_SEP}{request_id_key(request_id)}"


def item_key(thread_id: str, turn_id: str, item_id: str) -> str:
    return f"{thread_id}{KEY_SEP}{turn_id}{KEY_SEP}{item_id}"


def non_negative(value: int | None) -> int | None:
    """Rust's ``option_i64_to_u64``: negative or absent -> ``None``."""
    return value if value is not None and value >= 0 else None


def bump(state: PartitionState, reason: str) -> None:
    """Count a fact or row the rules drop (runtime diagnostics, exported as a metric)."""
    state.drops[reason] = state.drops.get(reason, 0) + 1


class ThreadContext(NamedTuple):
    app_server_client: AppServerClient
    runtime: RuntimeMetadata
    metadata: ThreadMetadata


def thread_context(state: PartitionState, family: FamilyState | None, thread_id: str) -> ThreadContext | None:
    """Connection and metadata of ``thread_id``, or ``None`` (counted) when either is unknown."""
    thread = family.threads.get(thread_id) if family is not None else None
    if thread is None or thread.connection is None:
        bump(state, "missing_context:thread_connection")
        return None
    connection = state.connections.get(thread.connection)
    if connection is None:
        bump(state, "missing_context:connection")
        return None
    if thread.metadata is None:
        bump(state, "missing_context:thread_metadata")
        return None
    return ThreadContext(connection.app_server_client, connection.runtime, thread.metadata)
