"""Connections and threads: ``Initialize``, thread start/resume/fork responses, sub-agent threads.

They give every other row its context (spec 4.2): the connection's client and runtime, and the
thread's metadata (source, sub-agent source, parent).
"""

from __future__ import annotations

from reducer.context import bump, connection_key, shared, shared_or_none
from schemas.events import (
    AppServerClient,
    Row,
    ThreadInitializationMode,
    ThreadInitializedEvent,
    ThreadInitializedEventParams,
)
from schemas.facts import ClientResponseFact, Initialize, SubAgentThreadStarted
from schemas.protocol import (
    SessionSource,
    SessionSourceObject,
    SubAgentSource,
    ThreadForkResult,
    ThreadResponse,
    ThreadResumeResult,
    ThreadStartResult,
)
from schemas.state import ConnectionState, FamilyState, PartitionState, ThreadMetadata, ThreadState


def on_initialize(state: PartitionState, producer: str, fact: Initialize) -> None:
    """Cache the connection's client and runtime; a re-initialise replaces them."""
    capabilities = fact.params.capabilities
    state.connections[connection_key(producer, fact.connection_id)] = ConnectionState(
        app_server_client=AppServerClient(
            product_client_id=fact.product_client_id,
            client_name=fact.params.client_info.name,
            client_version=fact.params.client_info.version,
            rpc_transport=fact.rpc_transport,
            experimental_api_enabled=None if capabilities is None else capabilities.experimental_api,
        ),
        runtime=fact.runtime,
    )


def subagent_source_name(source: SubAgentSource) -> str:
    if isinstance(source, str):
        return source
    if source.thread_spawn is not None:
        return "thread_spawn"
    if source.other is not None:
        return source.other
    return "unknown"


def _session_subagent(source: SessionSource) -> SubAgentSource | None:
    if isinstance(source, SessionSourceObject):
        return source.sub_agent
    return None


def _thread_metadata(response: ThreadResponse, mode: ThreadInitializationMode) -> ThreadMetadata:
    thread = response.thread
    subagent = _session_subagent(thread.source)
    return ThreadMetadata(
        session_id=thread.session_id,
        thread_source=shared_or_none(thread.thread_source),
        initialization_mode=mode,
        subagent_source=None if subagent is None else shared(subagent_source_name(subagent)),
        parent_thread_id=shared_or_none(thread.parent_thread_id),
    )


def on_thread_response(
    state: PartitionState,
    family: FamilyState,
    producer: str,
    fact: ClientResponseFact,
    result: ThreadStartResult | ThreadResumeResult | ThreadForkResult,
    rows: list[Row],
) -> None:
    """Record the thread's connection and metadata (overwrite) and emit ``codex_thread_initialized``.

    On a connection that was never initialised nothing is recorded and nothing emitted (spec T1).
    """
    key = connection_key(producer, fact.connection_id)
    connection = state.connections.get(key)
    if connection is None:
        bump(state, "missing_context:connection")
        return
    mode: ThreadInitializationMode
    match result:
        case ThreadStartResult():
            mode = "new"
        case ThreadResumeResult():
            mode = "resumed"
        case ThreadForkResult():
            mode = "forked"
    response = result.response
    metadata = _thread_metadata(response, mode)
    if not family.threads:
        family.threads = {}
    family.threads[shared(response.thread.id)] = ThreadState(connection=key, metadata=metadata)
    rows.append(
        ThreadInitializedEvent(
            event_params=ThreadInitializedEventParams(
                thread_id=response.thread.id,
                session_id=metadata.session_id,
                app_server_client=connection.app_server_client,
                runtime=connection.runtime,
                model=response.model,
                ephemeral=response.thread.ephemeral,
                thread_source=metadata.thread_source,
                initialization_mode=mode,
                subagent_source=metadata.subagent_source,
                parent_thread_id=metadata.parent_thread_id,
                forked_from_thread_id=response.thread.forked_from_id,
                created_at=max(response.thread.created_at, 0),
            )
        )
    )


def on_subagent_thread_started(family: FamilyState, fact: SubAgentThreadStarted, rows: list[Row]) -> None:
    """Always emit; adopt metadata if absent and the parent thread's connection if unset (spec 4.9).

    The parent is the fact's ``parent_thread_id`` only, as at b39f943a6 (the producer fills it in; a
    ``thread_spawn`` source's parent is not read, and the producer's router routes by it).
    """
    parent = fact.parent_thread_id
    source_name = subagent_source_name(fact.subagent_source)
    thread = family.threads.get(fact.thread_id)
    if thread is None:
        if not family.threads:
            family.threads = {}
        thread = family.threads[shared(fact.thread_id)] = ThreadState()
    if thread.metadata is None:
        thread.metadata = ThreadMetadata(
            session_id=fact.session_id,
            thread_source="subagent",
            initialization_mode="new",
            subagent_source=shared(source_name),
            parent_thread_id=shared_or_none(parent),
        )
    if thread.connection is None and parent is not None:
        parent_thread = family.threads.get(parent)
        if parent_thread is not None:
            thread.connection = parent_thread.connection
    rows.append(
        ThreadInitializedEvent(
            event_params=ThreadInitializedEventParams(
                thread_id=fact.thread_id,
                session_id=fact.session_id,
                app_server_client=AppServerClient(
                    product_client_id=fact.product_client_id,
                    client_name=fact.client_name,
                    client_version=fact.client_version,
                    rpc_transport="in_process",
                    experimental_api_enabled=None,
                ),
                runtime=fact.runtime,
                model=fact.model,
                ephemeral=fact.ephemeral,
                thread_source="subagent",
                initialization_mode="new",
                subagent_source=source_name,
                parent_thread_id=parent,
                forked_from_thread_id=fact.forked_from_thread_id,
                created_at=fact.created_at,
            )
        )
    )
