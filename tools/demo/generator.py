"""A seeded, realistic fact stream: what a few app-servers would publish, for the demo, benchmarks and tests.

``Workload(seed, threads, ...).facts()`` yields :class:`GeneratedFact` records, ready to publish:

1. Per producer (an app-server process), ``Initialize`` facts for a couple of connections
   (``key=None``: broadcast to every partition, as the publisher does).
2. Then ``threads`` thread *families* (a root thread and its sub-agent threads, key = root thread id),
   spread over the producers, at most ``concurrency`` open at once and interleaved fact by fact, so many
   threads are in flight together. Each family runs a script: thread start/resume/fork response;
   sometimes sub-agent threads; turns (``turn/start`` request and response, ``turn/started``,
   steers, resolved config, diffs, token usage, ``turn/completed``); tool items of every type
   (``item/started`` + ``item/completed``, every status); user reviews of every kind and decision
   (answers, effective-permissions answers, aborts, duplicate answers); guardian reviews of every
   action and status (notifications and the guardian's own custom fact); compactions; skill, app, hook
   and plugin facts; and, now and then, answers for request ids nobody asked about.
3. Optionally, *poison*: records a reducer must refuse (dead-letter), each labelled in
   :attr:`GeneratedFact.poison` with the :class:`schemas.codec.FactDecodeError` ``reason`` it must
   produce, so a ledger can count them: ``undecodable`` (random bytes), ``invalid`` (a valid JSON
   envelope with a wrong field type), ``oversized`` (more than 1 MiB).

Times come from one simulated clock that advances a little before every good fact: ``observed_at_ms``
strictly increases along the good facts (a poison record shares the time of the good fact after it,
so poison never shifts the good facts' bytes), and every time inside a fact (``startedAtMs``,
``completed_at_ms``, ``turn.startedAt`` seconds, ...) is read from the same clock when the fact is
made, so answers never precede their requests. The same seed and options always give the same bytes.

CLI (writes JSON lines, one fact per line)::

    python -m tools.demo.generator --seed 7 --threads 20 --out tools/demo/sample_facts.jsonl
"""

from __future__ import annotations

import argparse
import random
import sys
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final, Generic, NamedTuple, TypeVar

import msgspec

from schemas.codec import MAX_FACT_BYTES
from schemas.facts import SCHEMA_VERSION
from schemas.keys import unrouted_key

__all__ = [
    "DEFAULT_START_MS",
    "POISON_REASONS",
    "GeneratedFact",
    "Workload",
    "main",
    "write_jsonl",
]

T = TypeVar("T")
Json = dict[str, Any]

DEFAULT_START_MS: Final = 1_750_000_000_000
"""Simulated clock start (2025-06-15T15:06:40Z)."""

POISON_REASONS: Final = ("undecodable", "invalid", "oversized")
"""Values of :attr:`GeneratedFact.poison`; each equals the ``reason`` of the decode error it causes."""

RUNTIMES: Final[tuple[Json, ...]] = (
    {"codex_rs_version": "0.99.0", "runtime_os": "linux", "runtime_os_version": "24.04", "runtime_arch": "x86_64"},
    {"codex_rs_version": "0.99.1", "runtime_os": "macos", "runtime_os_version": "15.3.1", "runtime_arch": "aarch64"},
    {"codex_rs_version": "0.98.2", "runtime_os": "windows", "runtime_os_version": "11", "runtime_arch": "x86_64"},
)
CLIENTS: Final = (
    ("codex-tui", "1.0.0", "codex_cli_rs"),
    ("codex-vscode", "0.4.2", "codex_vscode"),
    ("codex-desktop", "2.1.0", "codex_desktop"),
)
TRANSPORTS: Final = ("websocket", "stdio", "in_process")
THREAD_SOURCES: Final[tuple[Any, ...]] = ("cli", "vscode", "exec", "appServer", {"custom": "ci-bot"}, "unknown")

TOOL_TYPES: Final = (
    "commandExecution",
    "fileChange",
    "mcpToolCall",
    "dynamicToolCall",
    "collabAgentToolCall",
    "webSearch",
    "imageGeneration",
)
"""Every tracked tool item type (spec 2.3.8)."""

COMMAND_REQUEST_VARIANTS: Final = (
    "plain",
    "network_context",
    "execve",
    "additional_network",
    "additional_file_system",
    "additional_empty",
    "proposed_network_amendments",
)
"""Shapes of ``item/commandExecution/requestApproval`` that change subject or trigger (spec 4.3)."""

COMMAND_DECISIONS: Final = (
    "accept",
    "acceptForSession",
    "acceptWithExecpolicyAmendment",
    "applyNetworkPolicyAmendment:allow",
    "applyNetworkPolicyAmendment:deny",
    "decline",
    "cancel",
    "abort",
)
"""Every answer to a command approval; ``abort`` is a ``server_request_aborted`` fact."""

FILE_CHANGE_DECISIONS: Final = ("accept", "acceptForSession", "decline", "cancel", "abort")

PERMISSIONS_REQUEST_VARIANTS: Final = ("network", "file_system", "network_and_file_system", "nothing")
PERMISSIONS_ANSWERS: Final = ("empty", "turn", "session", "network_only", "abort")
"""Effective-permissions answers: empty grant (denied), turn / session scope, or an abort."""

GUARDIAN_ACTIONS: Final = ("command", "execve", "applyPatch", "networkAccess", "mcpToolCall", "requestPermissions")
GUARDIAN_STATUSES: Final = ("inProgress", "approved", "denied", "timedOut", "aborted")

_COMMAND_STATUSES: Final = ("completed", "completed", "failed", "declined", "completed", "inProgress")
_THREE_WAY_STATUSES: Final = ("completed", "completed", "failed", "inProgress")
_IMAGE_STATUSES: Final = ("completed", "failed", "error", "generating")
_COMMAND_SOURCES: Final = ("agent", "userShell", "unifiedExecStartup", "unifiedExecInteraction")
_COMMAND_ACTIONS: Final[tuple[Json, ...]] = (
    {"type": "read", "command": "cat src/lib.rs", "name": "lib.rs", "path": "/work/repo/src/lib.rs"},
    {"type": "listFiles", "command": "ls src", "path": "src"},
    {"type": "search", "command": "rg todo", "query": "todo", "path": None},
    {"type": "unknown", "command": "make"},
)
_THREAD_IDS: Final = uuid.UUID("6d1f4c3e-8a52-4c1e-9a57-3f0b2d9e7c11")
"""Namespace of the generated thread ids: real thread ids are UUIDs (``ThreadId``), and a
``thread_spawn`` parent must be one."""


def thread_uuid(label: str) -> str:
    """The deterministic UUID thread id named by ``label``."""
    return str(uuid.uuid5(_THREAD_IDS, label))


_COLLAB_TOOLS: Final = ("spawnAgent", "sendInput", "resumeAgent", "wait", "closeAgent")
_AGENT_STATES: Final = ("pendingInit", "running", "interrupted", "completed", "errored", "shutdown", "notFound")
_WEB_ACTIONS: Final = ("none", "search", "search_queries", "openPage", "findInPage", "other")
_TURN_END_STATUSES: Final = ("completed", "completed", "completed", "interrupted", "failed")
_STEER_OUTCOMES: Final = (
    "accepted",
    "no_active_turn",
    "expected_turn_mismatch",
    "non_steerable_review",
    "non_steerable_compact",
    "empty_input",
    "input_too_large",
    None,
)
_SUBAGENT_SOURCES: Final[tuple[Any, ...]] = (
    "review",
    "compact",
    "thread_spawn",
    "memory_consolidation",
    {"other": "guardian"},
)
_NON_TOOL_ITEMS: Final[dict[str, Json]] = {
    "userMessage": {"type": "userMessage", "clientId": None, "content": [{"type": "text", "text": "go on"}]},
    "agentMessage": {"type": "agentMessage", "text": "Done.", "phase": None, "memoryCitation": None},
    "reasoning": {"type": "reasoning", "summary": ["thinking"], "content": []},
    "plan": {"type": "plan", "text": "1. fix the test"},
    "contextCompaction": {"type": "contextCompaction"},
}
"""Items that are no tool, each with every field the protocol requires."""


class GeneratedFact(NamedTuple):
    """One record to publish.

    ``key`` is the Kafka key: the family's root thread id, ``None`` for a broadcast to every partition
    (``Initialize``), or the producer's fallback key for answers it could not route. ``value`` is the
    record value. ``kind`` is the fact kind, with ``":<method>"`` appended for facts that wrap a
    protocol message (``"notification:item/completed"``); ``"garbage"`` for random bytes. ``poison``
    is ``None`` for a good fact, else the decode-error ``reason`` the value must produce.
    """

    key: str | None
    value: bytes
    kind: str
    poison: str | None = None


class _Deck(Generic[T]):
    """Draws every value once, in a shuffled order, before repeating: full coverage in few draws."""

    def __init__(self, rng: random.Random, values: Sequence[T]) -> None:
        self._rng = rng
        self._values = list(values)
        self._pile: list[T] = []

    def draw(self) -> T:
        if not self._pile:
            self._pile = list(self._values)
            self._rng.shuffle(self._pile)
        return self._pile.pop()


class _Clock:
    def __init__(self, start_ms: int) -> None:
        self.now_ms = start_ms

    @property
    def now_s(self) -> int:
        return self.now_ms // 1000


class _Decks:
    """Every variant list the workload must cover, each drawn as a deck (shared by all families)."""

    def __init__(self, rng: random.Random) -> None:
        # Shell commands and patches are the most common tools (and the ones users review).
        self.tool = _Deck(rng, (*TOOL_TYPES, "commandExecution", "commandExecution", "fileChange"))
        self.command_request = _Deck(rng, COMMAND_REQUEST_VARIANTS)
        self.command_decision = _Deck(rng, COMMAND_DECISIONS)
        self.file_grant = _Deck(rng, (True, False))
        self.file_decision = _Deck(rng, FILE_CHANGE_DECISIONS)
        self.permissions_request = _Deck(rng, PERMISSIONS_REQUEST_VARIANTS)
        self.permissions_answer = _Deck(rng, PERMISSIONS_ANSWERS)
        self.guardian_status = _Deck(rng, GUARDIAN_STATUSES)
        self.command_guardian_action = _Deck(rng, ("command", "execve", "networkAccess"))
        self.command_status = _Deck(rng, _COMMAND_STATUSES)
        self.three_way_status = _Deck(rng, _THREE_WAY_STATUSES)
        self.image_status = _Deck(rng, _IMAGE_STATUSES)
        self.command_source = _Deck(rng, _COMMAND_SOURCES)
        self.collab_tool = _Deck(rng, _COLLAB_TOOLS)
        self.web_action = _Deck(rng, _WEB_ACTIONS)
        self.turn_end = _Deck(rng, _TURN_END_STATUSES)
        self.steer = _Deck(rng, _STEER_OUTCOMES)
        self.subagent_source = _Deck(rng, _SUBAGENT_SOURCES)
        self.thread_method = _Deck(
            rng, ("thread/start", "thread/start", "thread/start", "thread/resume", "thread/fork")
        )
        self.thread_source = _Deck(rng, THREAD_SOURCES)
        self.custom = _Deck(rng, ("skill", "app_mentioned", "app_used", "hook", "plugin_used", "plugin_state"))


class _Producer:
    """One app-server process: its connections and its id counters."""

    def __init__(self, name: str, connection_ids: list[int]) -> None:
        self.name = name
        self.connection_ids = connection_ids
        self.next_server_request = 1
        self.next_client_request: dict[int, int] = dict.fromkeys(connection_ids, 1)

    def server_request_id(self, rng: random.Random) -> int | str:
        """A fresh server-request id; about one in ten is a JSON string, as the protocol allows."""
        number = self.next_server_request
        self.next_server_request += 1
        return f"srv-{number}" if rng.random() < 0.1 else number

    def client_request_id(self, connection_id: int) -> int:
        number = self.next_client_request[connection_id]
        self.next_client_request[connection_id] = number + 1
        return number


# Fact payloads yielded by a family script: (fact, envelope thread_id). ``thread_id`` is the family key,
# or None for an answer the producer could not route.
_Out = tuple[Json, str | None]


@dataclass(frozen=True, kw_only=True)
class _Options:
    turns_per_thread: tuple[int, int]
    items_per_turn: tuple[int, int]
    subagent_rate: float
    review_rate: float
    unanswered_rate: float
    unknown_answer_rate: float
    custom_rate: float


@dataclass(frozen=True)
class Workload:
    """A deterministic fact stream; see the module docstring for what it contains.

    ``seed`` fixes every choice. ``threads`` is the number of root-thread families, spread round-robin
    over ``producers`` app-servers with ``connections`` connections each; ``concurrency`` families are
    open at once. Rates are probabilities per opportunity (per item, per answer, ...). Poison:
    ``poison_rate_garbage`` and ``poison_rate_invalid`` are per good fact; ``oversized`` is a count.
    """

    seed: int
    threads: int
    producers: int = 2
    connections: int = 2
    concurrency: int = 8
    turns_per_thread: tuple[int, int] = (1, 2)
    items_per_turn: tuple[int, int] = (0, 2)
    subagent_rate: float = 0.25
    review_rate: float = 0.6
    unanswered_rate: float = 0.03
    unknown_answer_rate: float = 0.04
    custom_rate: float = 0.15
    poison_rate_garbage: float = 0.0
    poison_rate_invalid: float = 0.0
    oversized: int = 0
    start_ms: int = DEFAULT_START_MS
    max_step_ms: int = 40

    def __post_init__(self) -> None:
        if self.threads < 0 or self.producers < 1 or self.connections < 1 or self.concurrency < 1:
            raise ValueError("threads >= 0, producers >= 1, connections >= 1 and concurrency >= 1 are required")
        if self.oversized < 0 or self.max_step_ms < 1:
            raise ValueError("oversized >= 0 and max_step_ms >= 1 are required")

    def facts(self) -> Iterator[GeneratedFact]:
        """The stream, from the start; every call gives the same records."""
        rng = random.Random(self.seed)
        clock = _Clock(self.start_ms)
        decks = _Decks(rng)
        options = _Options(
            turns_per_thread=self.turns_per_thread,
            items_per_turn=self.items_per_turn,
            subagent_rate=self.subagent_rate,
            review_rate=self.review_rate,
            unanswered_rate=self.unanswered_rate,
            unknown_answer_rate=self.unknown_answer_rate,
            custom_rate=self.custom_rate,
        )
        producers = [
            _Producer(f"app-server-{index}", list(range(1, self.connections + 1))) for index in range(self.producers)
        ]
        poison = _Poisoner(self, rng)
        emitted = 0

        def emit(producer: _Producer, fact: Json, thread_id: str | None, key: str | None) -> Iterator[GeneratedFact]:
            nonlocal emitted
            yield from poison.before(producer.name, key, clock, emitted)
            value = _envelope(producer.name, thread_id, clock.now_ms, fact)
            emitted += 1
            yield GeneratedFact(key, value, _kind(fact))

        # 1. Initialize every connection of every producer (broadcast).
        for producer in producers:
            for connection_id in producer.connection_ids:
                clock.now_ms += rng.randint(1, self.max_step_ms)
                yield from emit(producer, _initialize(rng, connection_id), None, None)

        # 2. Families, interleaved.
        pending = [
            (producers[index % len(producers)], thread_uuid(f"thr-{index:05d}-{rng.getrandbits(32):08x}"))
            for index in range(self.threads)
        ]
        pending.reverse()
        open_families: list[tuple[_Producer, str, Iterator[_Out]]] = []
        while pending or open_families:
            while pending and len(open_families) < self.concurrency:
                producer, root = pending.pop()
                script = _family_script(rng, clock, decks, options, producer, root)
                open_families.append((producer, root, script))
            index = rng.randrange(len(open_families))
            producer, root, script = open_families[index]
            clock.now_ms += rng.randint(1, self.max_step_ms)
            out = next(script, None)
            if out is None:
                open_families.pop(index)
                continue
            fact, thread_id = out
            key = thread_id if thread_id is not None else unrouted_key(producer.name)
            yield from emit(producer, fact, thread_id, key)

        # 3. Oversized records not placed yet (short streams) go at the end.
        yield from poison.remaining(producers[0].name, clock)


# --- envelope and poison --------------------------------------------------------------------------

_encode: Final = msgspec.json.encode


def _envelope(producer: str, thread_id: str | None, observed_at_ms: int, fact: Json) -> bytes:
    return _encode(
        {
            "v": SCHEMA_VERSION,
            "producer": producer,
            "thread_id": thread_id,
            "observed_at_ms": observed_at_ms,
            "fact": fact,
        }
    )


def _kind(fact: Json) -> str:
    kind: str = fact["kind"]
    for field in ("notification", "request", "response"):
        inner = fact.get(field)
        if isinstance(inner, dict) and "method" in inner:
            return f"{kind}:{inner['method']}"
    return kind


class _Poisoner:
    """Decides where poison records go and builds them.

    It draws from its own RNG and never advances the clock (a poison record carries the time of the
    good fact after it), so the good facts are byte-for-byte the same with or without poison.
    """

    def __init__(self, workload: Workload, rng: random.Random) -> None:
        self._rng = random.Random(rng.getrandbits(64))
        self._garbage = workload.poison_rate_garbage
        self._invalid = workload.poison_rate_invalid
        self._oversized_left = workload.oversized
        # Oversized records are spread over roughly the first stretch of the stream, one every ~50 facts.
        self._oversized_at = {50 * (index + 1) for index in range(workload.oversized)}

    def before(self, producer: str, key: str | None, clock: _Clock, emitted: int) -> Iterator[GeneratedFact]:
        route = key if key is not None else "poison"
        if self._garbage and self._rng.random() < self._garbage:
            yield GeneratedFact(route, self._garbage_bytes(), "garbage", "undecodable")
        if self._invalid and self._rng.random() < self._invalid:
            fact, kind = self._invalid_fact(clock)
            yield GeneratedFact(route, _envelope(producer, key, clock.now_ms, fact), kind, "invalid")
        if emitted in self._oversized_at and self._oversized_left:
            yield self._oversized_record(producer, route, clock)

    def remaining(self, producer: str, clock: _Clock) -> Iterator[GeneratedFact]:
        while self._oversized_left:
            yield self._oversized_record(producer, "poison", clock)

    def _garbage_bytes(self) -> bytes:
        # Starts with a byte no JSON text starts with; never contains a newline (JSON-lines safe).
        body = bytes(b for b in self._rng.randbytes(self._rng.randint(1, 200)) if b not in (0x0A, 0x0D))
        return b"\xff" + body

    def _invalid_fact(self, clock: _Clock) -> tuple[Json, str]:
        variant = self._rng.randrange(4)
        if variant == 0:
            item = {"type": "commandExecution", "id": "item-x", "status": "inProgress"}
            params = {"item": item, "threadId": "thr-x", "turnId": "turn-x", "startedAtMs": "x"}
            return {"kind": "notification", "notification": {"method": "item/started", "params": params}}, (
                "notification:item/started"
            )
        if variant == 1:
            return {"kind": "server_request_aborted", "completed_at_ms": "soon", "request_id": 1}, (
                "server_request_aborted"
            )
        if variant == 2:
            fact = {
                "kind": "server_request",
                "connection_id": "seven",
                "request": {"method": "item/tool/call", "id": 1},
            }
            return fact, "server_request:item/tool/call"
        return {"kind": "no_such_fact_kind", "at": clock.now_ms}, "no_such_fact_kind"

    def _oversized_record(self, producer: str, route: str, clock: _Clock) -> GeneratedFact:
        self._oversized_left -= 1
        item = {"type": "agentMessage", "id": "huge", "text": "x" * (MAX_FACT_BYTES + 1024)}
        params = {"item": item, "threadId": route, "turnId": "turn-huge", "completedAtMs": clock.now_ms}
        fact = {"kind": "notification", "notification": {"method": "item/completed", "params": params}}
        return GeneratedFact(route, _envelope(producer, route, clock.now_ms, fact), _kind(fact), "oversized")


# --- connection and thread facts ------------------------------------------------------------------


def _initialize(rng: random.Random, connection_id: int) -> Json:
    name, version, product = rng.choice(CLIENTS)
    capabilities = rng.choice((None, {"experimentalApi": False}, {"experimentalApi": True, "requestAttestation": True}))
    return {
        "kind": "initialize",
        "connection_id": connection_id,
        "params": {"clientInfo": {"name": name, "title": None, "version": version}, "capabilities": capabilities},
        "product_client_id": product,
        "runtime": rng.choice(RUNTIMES),
        "rpc_transport": rng.choice(TRANSPORTS),
    }


def _thread_response(
    decks: _Decks, clock: _Clock, connection_id: int, request_id: int, thread_id: str, model: str
) -> Json:
    method = decks.thread_method.draw()
    thread = {
        "id": thread_id,
        "sessionId": f"session-{thread_id}",
        "forkedFromId": thread_uuid(f"{thread_id}/forked-from") if method == "thread/fork" else None,
        "parentThreadId": None,
        "preview": "please fix the failing test",
        "ephemeral": method == "thread/fork",
        "modelProvider": "openai",
        "createdAt": clock.now_s,
        "updatedAt": clock.now_s,
        "status": {"type": "idle"},
        "path": None,
        "cwd": "/work/repo",
        "cliVersion": "0.99.0",
        "source": decks.thread_source.draw(),
        "threadSource": "user",
        "agentNickname": None,
        "agentRole": None,
        "gitInfo": None,
        "name": None,
        "turns": [],
    }
    return {
        "kind": "client_response",
        "connection_id": connection_id,
        "request_id": request_id,
        "response": {"method": method, "id": request_id, "response": {"thread": thread, **_thread_config(model)}},
    }


def _thread_config(model: str) -> Json:
    """The rest of a thread start/resume/fork response: every field the protocol requires."""
    return {
        "model": model,
        "modelProvider": "openai",
        "serviceTier": None,
        "cwd": "/work/repo",
        "approvalPolicy": "on-request",
        "approvalsReviewer": "user",
        "sandbox": {"type": "dangerFullAccess"},
        "reasoningEffort": None,
    }


def _subagent_started(decks: _Decks, clock: _Clock, thread_id: str, parent: str, model: str) -> Json:
    source = decks.subagent_source.draw()
    if source == "thread_spawn":
        source = {"thread_spawn": {"parent_thread_id": parent, "depth": 1, "agent_path": None}}
    return {
        "kind": "subagent_thread_started",
        "thread_id": thread_id,
        "parent_thread_id": parent,
        "product_client_id": "codex_cli_rs",
        "client_name": "codex-tui",
        "client_version": "1.0.0",
        "model": model,
        "ephemeral": False,
        "subagent_source": source,
        "created_at": clock.now_s,
        "session_id": f"session-{thread_id}",
        "runtime": RUNTIMES[0],
    }


# --- turns ----------------------------------------------------------------------------------------


def _user_input(rng: random.Random) -> list[Json]:
    items: list[Json] = [{"type": "text", "text": "please fix the failing test", "text_elements": []}]
    for _ in range(rng.choice((0, 0, 0, 1, 2))):
        items.append(
            rng.choice(
                ({"type": "image", "url": "https://example.com/a.png"}, {"type": "localImage", "path": "/tmp/b.png"})
            )
        )
    return items


def _client_request(connection_id: int, request_id: int, method: str, params: Json) -> Json:
    return {
        "kind": "client_request",
        "connection_id": connection_id,
        "request_id": request_id,
        "request": {"method": method, "id": request_id, "params": params},
    }


def _client_response(connection_id: int, request_id: int, method: str, response: Json) -> Json:
    return {
        "kind": "client_response",
        "connection_id": connection_id,
        "request_id": request_id,
        "response": {"method": method, "id": request_id, "response": response},
    }


def _notification(method: str, params: Json) -> Json:
    return {"kind": "notification", "notification": {"method": method, "params": params}}


def _turn(turn_id: str, status: str, **extra: Any) -> Json:
    return {"id": turn_id, "items": [], "status": status, "error": None, **extra}


def _resolved_config(rng: random.Random, thread_id: str, turn_id: str, images: int, first: bool, model: str) -> Json:
    return {
        "kind": "turn_resolved_config",
        "turn_id": turn_id,
        "thread_id": thread_id,
        "num_input_images": images,
        "submission_type": None,
        "ephemeral": False,
        "model": model,
        "model_provider": "openai",
        "sandbox_policy": rng.choice(("read_only", "workspace_write", "full_access", "external_sandbox")),
        "reasoning_effort": rng.choice((None, "low", "medium", "high")),
        "reasoning_summary": rng.choice((None, "none", "auto", "detailed")),
        "service_tier": rng.choice((None, "flex", "fast")),
        "approval_policy": rng.choice(("on-request", "untrusted", "on-failure", "never")),
        "approvals_reviewer": rng.choice(("user", "auto_review")),
        "sandbox_network_access": rng.random() < 0.3,
        "collaboration_mode": rng.choice(("default", "plan", "pair_programming", "execute")),
        "personality": rng.choice((None, "none", "pragmatic", "friendly")),
        "workspace_kind": rng.choice((None, "git", "non_git")),
        "is_first_turn": first,
        "repo_hash": rng.choice((None, "3f2c1e0d9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e")),
    }


def _token_usage(rng: random.Random, thread_id: str, turn_id: str) -> Json:
    input_tokens = rng.randint(500, 50_000)
    cached = rng.randint(0, input_tokens)
    output = rng.randint(10, 5_000)
    reasoning = rng.randint(0, output)
    return {
        "kind": "turn_token_usage",
        "turn_id": turn_id,
        "thread_id": thread_id,
        "token_usage": {
            "input_tokens": input_tokens,
            "cached_input_tokens": cached,
            "output_tokens": output,
            "reasoning_output_tokens": reasoning,
            "total_tokens": input_tokens + output,
        },
    }


def _turn_profile(rng: random.Random, turn_id: str) -> Json:
    return {
        "kind": "turn_profile",
        "turn_id": turn_id,
        "profile": {
            "before_first_sampling_ms": rng.randint(10, 500),
            "sampling_ms": rng.randint(100, 9_000),
            "between_sampling_overhead_ms": rng.randint(0, 200),
            "tool_blocking_ms": rng.randint(0, 5_000),
            "after_last_sampling_ms": rng.randint(0, 300),
            "sampling_request_count": rng.randint(1, 6),
            "sampling_retry_count": rng.choice((0, 0, 1)),
        },
    }


def _codex_error(rng: random.Random, thread_id: str, turn_id: str) -> Json:
    kind, status = rng.choice((("server_overloaded", None), ("unexpected_status", 500), ("stream", None)))
    return {
        "kind": "turn_codex_error",
        "turn_id": turn_id,
        "thread_id": thread_id,
        "error_kind": kind,
        "http_status_code": status,
    }


def _diff(rng: random.Random) -> str:
    added = "".join(f"+    let value_{n} = compute({n});\n" for n in range(rng.randint(0, 4)))
    deleted = "".join(f"-    old_line_{n}();\n" for n in range(rng.randint(0, 2)))
    return (
        f"diff --git a/src/lib.rs b/src/lib.rs\n--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1,3 +1,4 @@\n{deleted}{added}"
    )


def _compaction(rng: random.Random, clock: _Clock, thread_id: str, turn_id: str) -> Json:
    status = rng.choice(("completed", "completed", "failed", "interrupted"))
    before = rng.randint(50_000, 200_000)
    return {
        "kind": "compaction",
        "thread_id": thread_id,
        "turn_id": turn_id,
        "trigger": rng.choice(("manual", "auto")),
        "reason": rng.choice(("user_requested", "context_limit", "model_downshift")),
        "implementation": rng.choice(("responses", "responses_compact", "responses_compaction_v2")),
        "phase": rng.choice(("standalone_turn", "pre_turn", "mid_turn")),
        "strategy": rng.choice(("memento", "prefix_compaction")),
        "status": status,
        "error": "context window exceeded" if status == "failed" else None,
        "active_context_tokens_before": before,
        "active_context_tokens_after": before // rng.randint(2, 8),
        "retained_image_count": rng.choice((None, 0, 3)),
        "compaction_summary_tokens": rng.choice((None, 900)),
        "started_at": clock.now_s - 2,
        "completed_at": clock.now_s,
        "duration_ms": rng.choice((None, 1_800, 2_400)),
    }


def _tracking(thread_id: str, turn_id: str, model: str) -> Json:
    return {"model_slug": model, "thread_id": thread_id, "turn_id": turn_id}


_PLUGIN: Final[Json] = {
    "plugin_id": {"plugin_name": "sample", "marketplace_name": "test"},
    "remote_plugin_id": None,
    "capability_summary": {
        "config_name": "sample",
        "display_name": "Sample",
        "description": None,
        "has_skills": True,
        "mcp_server_names": ["docs"],
        "app_connector_ids": ["connector-1"],
    },
}


def _custom_fact(rng: random.Random, decks: _Decks, thread_id: str, turn_id: str, model: str) -> Json:
    tracking = _tracking(thread_id, turn_id, model)
    match decks.custom.draw():
        case "skill":
            return {
                "kind": "skill_invoked",
                "tracking": tracking,
                "product_client_id": "codex_cli_rs",
                "invocations": [
                    {
                        "skill_name": "doc",
                        "skill_scope": rng.choice(("user", "repo", "system", "admin")),
                        "skill_path": "/work/repo/.codex/skills/doc/SKILL.md",
                        "plugin_id": None,
                        "invocation_type": rng.choice(("explicit", "implicit")),
                        "repo_root": rng.choice((None, "/work/repo")),
                        "repo_url": rng.choice((None, "https://example.com/repo.git")),
                    }
                ],
            }
        case "app_mentioned":
            mention = {"connector_id": "connector-1", "app_name": "Calendar", "invocation_type": "explicit"}
            return {
                "kind": "app_mentioned",
                "tracking": tracking,
                "mentions": [mention],
                "product_client_id": "codex_cli_rs",
            }
        case "app_used":
            app = {
                "connector_id": rng.choice((None, "connector-2")),
                "app_name": "Drive",
                "invocation_type": "implicit",
            }
            return {"kind": "app_used", "tracking": tracking, "app": app, "product_client_id": "codex_cli_rs"}
        case "hook":
            hook = {
                "event_name": rng.choice(("PreToolUse", "PostToolUse", "SessionStart", "Stop")),
                "hook_source": rng.choice(("user", "project", "cloud_requirements")),
                "status": rng.choice(("running", "completed", "failed", "blocked", "stopped")),
            }
            return {"kind": "hook_run", "tracking": tracking, "hook": hook}
        case "plugin_used":
            return {"kind": "plugin_used", "tracking": tracking, "plugin": _PLUGIN, "product_client_id": "codex_cli_rs"}
        case _:
            state = rng.choice(("installed", "uninstalled", "enabled", "disabled"))
            return {
                "kind": "plugin_state_changed",
                "plugin": _PLUGIN,
                "state": state,
                "product_client_id": "codex_cli_rs",
            }


# --- tool items -----------------------------------------------------------------------------------


def _tool_item(
    rng: random.Random,
    decks: _Decks,
    tool: str,
    item_id: str,
    status: str | None,
    thread_id: str,
    subagents: list[str],
    mcp_tool: str,
) -> Json:
    """A tool item in its final shape; ``status=None`` picks a terminal status from the type's deck."""
    match tool:
        case "commandExecution":
            return {
                "type": tool,
                "id": item_id,
                "command": "cargo test",
                "cwd": "/work/repo",
                "processId": None,
                "source": decks.command_source.draw(),
                "status": status or decks.command_status.draw(),
                "commandActions": [dict(rng.choice(_COMMAND_ACTIONS)) for _ in range(rng.randint(0, 4))],
                "aggregatedOutput": None,
                "exitCode": rng.choice((0, 0, 1, 101, None)),
                "durationMs": rng.choice((None, rng.randint(5, 5_000))),
            }
        case "fileChange":
            kinds: list[Json] = [
                {"type": "add"},
                {"type": "delete"},
                {"type": "update", "move_path": None},
                {"type": "update", "move_path": "src/new.rs"},
            ]
            changes = [
                {"path": f"src/file_{n}.rs", "kind": rng.choice(kinds), "diff": "@@"} for n in range(rng.randint(0, 4))
            ]
            return {"type": tool, "id": item_id, "changes": changes, "status": status or decks.command_status.draw()}
        case "mcpToolCall":
            final = status or decks.three_way_status.draw()
            return {
                "type": tool,
                "id": item_id,
                "server": "docs",
                "tool": mcp_tool,
                "status": final,
                "arguments": {"q": "x"},
                "result": None,
                "error": {"message": "boom"} if final == "failed" else None,
                "durationMs": rng.choice((None, rng.randint(5, 3_000))),
            }
        case "dynamicToolCall":
            final = status or decks.three_way_status.draw()
            contents = rng.choice(
                (None, [], [{"type": "inputText", "text": "ok"}, {"type": "inputImage", "imageUrl": "x"}])
            )
            return {
                "type": tool,
                "id": item_id,
                "tool": "browser",
                "arguments": {},
                "status": final,
                "contentItems": contents,
                "success": None if final == "inProgress" else final == "completed",
                "durationMs": rng.choice((None, rng.randint(5, 3_000))),
            }
        case "collabAgentToolCall":
            receivers = subagents[:2] if subagents else [f"{thread_id}-peer"]
            return {
                "type": tool,
                "id": item_id,
                "tool": decks.collab_tool.draw(),
                "status": status or decks.three_way_status.draw(),
                "senderThreadId": thread_id,
                "receiverThreadIds": receivers,
                "prompt": None,
                "model": rng.choice((None, "gpt-5-mini")),
                "reasoningEffort": rng.choice((None, "low", "medium", "high")),
                "agentsStates": {r: {"status": rng.choice(_AGENT_STATES), "message": None} for r in receivers},
            }
        case "webSearch":
            action: Json | None
            match decks.web_action.draw():
                case "none":
                    action = None
                case "search":
                    action = {"type": "search", "query": "kafka exactly once", "queries": None}
                case "search_queries":
                    action = {"type": "search", "query": None, "queries": ["a", "b", "c"]}
                case "openPage":
                    action = {"type": "openPage", "url": "https://example.com"}
                case "findInPage":
                    action = {"type": "findInPage", "url": "https://example.com", "pattern": "EOS"}
                case _:
                    action = {"type": "other"}
            return {"type": tool, "id": item_id, "query": rng.choice(("", "  ", "kafka eos")), "action": action}
        case _:
            final = status or decks.image_status.draw()
            return {
                "type": "imageGeneration",
                "id": item_id,
                "status": final,
                "revisedPrompt": rng.choice((None, "a cat")),
                "result": "",
                "savedPath": rng.choice((None, "/tmp/cat.png")),
            }


def _in_progress(item: Json) -> Json:
    """The ``item/started`` form of a final item."""
    started = dict(item)
    if "status" in started and started["type"] != "imageGeneration":
        started["status"] = "inProgress"
    if started["type"] == "commandExecution":
        started.update(exitCode=None, durationMs=None)
    return started


# --- reviews --------------------------------------------------------------------------------------


def _command_approval(
    variant: str, request_id: int | str, thread_id: str, turn_id: str, item_id: str, now_ms: int
) -> Json:
    params: Json = {
        "threadId": thread_id,
        "turnId": turn_id,
        "itemId": item_id,
        "startedAtMs": now_ms,
        "approvalId": None,
        "reason": None,
        "networkApprovalContext": None,
        "command": "cargo test",
        "cwd": "/work/repo",
        "commandActions": None,
        "additionalPermissions": None,
        "proposedExecpolicyAmendment": ["cargo", "test"],
        "proposedNetworkPolicyAmendments": None,
        "availableDecisions": None,
    }
    match variant:
        case "network_context":
            params["networkApprovalContext"] = {"host": "crates.io", "protocol": "https"}
        case "execve":
            params["approvalId"] = f"approval-{request_id}"
        case "additional_network":
            params["additionalPermissions"] = {"network": {"enabled": True}, "fileSystem": None}
        case "additional_file_system":
            params["additionalPermissions"] = {"network": None, "fileSystem": {"write": ["/work/out"]}}
        case "additional_empty":
            params["additionalPermissions"] = {}
        case "proposed_network_amendments":
            params["proposedNetworkPolicyAmendments"] = [{"host": "crates.io", "action": "allow"}]
    return {"method": "item/commandExecution/requestApproval", "id": request_id, "params": params}


def _command_decision(decision: str) -> Any:
    match decision:
        case "acceptWithExecpolicyAmendment":
            return {"acceptWithExecpolicyAmendment": {"execpolicy_amendment": ["cargo", "test"]}}
        case "applyNetworkPolicyAmendment:allow" | "applyNetworkPolicyAmendment:deny":
            action = decision.split(":")[1]
            return {
                "applyNetworkPolicyAmendment": {"network_policy_amendment": {"host": "crates.io", "action": action}}
            }
        case _:
            return decision


def _permissions_profile(variant: str) -> Json:
    network = {"enabled": True} if variant in ("network", "network_and_file_system") else None
    file_system = {"read": ["/etc/hosts"]} if variant in ("file_system", "network_and_file_system") else None
    if variant == "nothing":
        network = {"enabled": False}
    return {"network": network, "fileSystem": file_system}


def _effective_permissions(answer: str) -> Json:
    match answer:
        case "empty":
            return {"permissions": {"network": None, "file_system": None}, "scope": "turn"}
        case "session":
            return {"permissions": {"network": {"enabled": True}, "file_system": None}, "scope": "session"}
        case "network_only":
            return {"permissions": {"network": {"enabled": None}}, "scope": "turn", "strict_auto_review": False}
        case _:
            return {"permissions": {"network": None, "file_system": {"read": ["/etc/hosts"]}}, "scope": "turn"}


def _guardian_action(action: str, item_tool: str | None) -> Json:
    match action:
        case "command":
            return {"type": "command", "source": "shell", "command": "rm -rf build", "cwd": "/work/repo"}
        case "execve":
            return {
                "type": "execve",
                "source": "unifiedExec",
                "program": "/bin/rm",
                "argv": ["rm", "-rf"],
                "cwd": "/work",
            }
        case "applyPatch":
            return {"type": "applyPatch", "cwd": "/work/repo", "files": ["/work/repo/src/lib.rs"]}
        case "networkAccess":
            return {
                "type": "networkAccess",
                "target": "https://crates.io:443",
                "host": "crates.io",
                "protocol": "https",
                "port": 443,
            }
        case "mcpToolCall":
            return {
                "type": "mcpToolCall",
                "server": "docs",
                "toolName": item_tool or "search_docs",
                "connectorId": None,
                "connectorName": None,
                "toolTitle": "Search docs",
            }
        case _:
            return {
                "type": "requestPermissions",
                "reason": "needs network",
                "permissions": _permissions_profile("network"),
            }


_REVIEWED_ACTIONS: Final[dict[str, Json]] = {
    "command": {"type": "shell", "sandbox_permissions": "require_escalated", "additional_permissions": None},
    "execve": {"type": "execve", "source": "unified_exec", "program": "/bin/rm", "additional_permissions": None},
    "applyPatch": {"type": "apply_patch"},
    "networkAccess": {"type": "network_access", "protocol": "https", "port": 443},
    "mcpToolCall": {
        "type": "mcp_tool_call",
        "server": "docs",
        "tool_name": "search_docs",
        "connector_id": None,
        "connector_name": None,
        "tool_title": "Search docs",
    },
    "requestPermissions": {"type": "request_permissions"},
}
_GUARDIAN_TERMINAL: Final = {
    "approved": ("approved", "approved", None, "allow"),
    "denied": ("denied", "denied", None, "deny"),
    "timedOut": ("denied", "timed_out", "timeout", None),
    "aborted": ("aborted", "aborted", "cancelled", None),
}


def _guardian_review_fact(
    rng: random.Random, review: Json, action: str, started_ms: int, completed_ms: int, subagent: bool
) -> Json:
    """The guardian's own ``GuardianReview`` custom fact for a terminal assessment."""
    decision, terminal, failure, outcome = _GUARDIAN_TERMINAL[review["review"]["status"]]
    tokens = rng.randint(200, 4_000)
    return {
        "kind": "guardian_review",
        "thread_id": review["threadId"],
        "turn_id": review["turnId"],
        "review_id": review["reviewId"],
        "target_item_id": review["targetItemId"],
        "approval_request_source": "delegated_subagent" if subagent else "main_turn",
        "reviewed_action": _REVIEWED_ACTIONS[action],
        "reviewed_action_truncated": False,
        "decision": decision,
        "terminal_status": terminal,
        "failure_reason": failure,
        "attempt_count": rng.choice((1, 1, 2)),
        "risk_level": rng.choice(("low", "medium", "high", "critical", None)),
        "user_authorization": rng.choice(("unknown", "low", "medium", "high", None)),
        "outcome": outcome,
        "guardian_thread_id": f"guardian-{review['reviewId']}",
        "guardian_session_kind": rng.choice(("trunk_new", "trunk_reused", "ephemeral_forked", None)),
        "guardian_model": "gpt-5-mini",
        "guardian_reasoning_effort": "low",
        "had_prior_review_context": rng.choice((True, False, None)),
        "review_timeout_ms": 90_000,
        "tool_call_count": None,
        "time_to_first_token_ms": rng.randint(50, 900),
        "completion_latency_ms": completed_ms - started_ms,
        "started_at": started_ms // 1000,
        "completed_at": completed_ms // 1000,
        "input_tokens": tokens,
        "cached_input_tokens": tokens // 2,
        "output_tokens": 64,
        "reasoning_output_tokens": 32,
        "total_tokens": tokens + 64,
    }


# --- family script --------------------------------------------------------------------------------


class _Family:
    """Everything one family script needs; methods are generators of ``(fact, envelope thread_id)``."""

    def __init__(
        self,
        rng: random.Random,
        clock: _Clock,
        decks: _Decks,
        options: _Options,
        producer: _Producer,
        root: str,
    ) -> None:
        self.rng = rng
        self.clock = clock
        self.decks = decks
        self.options = options
        self.producer = producer
        self.root = root
        self.connection_id = rng.choice(producer.connection_ids)
        self.model = rng.choice(("gpt-5", "gpt-5-codex", "o4-mini"))
        self.subagents: list[str] = []
        self.review_counter = 0

    def out(self, fact: Json) -> _Out:
        return fact, self.root

    def run(self) -> Iterator[_Out]:
        request_id = self.producer.client_request_id(self.connection_id)
        yield self.out(_thread_response(self.decks, self.clock, self.connection_id, request_id, self.root, self.model))
        threads = [self.root]
        while self.rng.random() < self.options.subagent_rate and len(self.subagents) < 3:
            sub = thread_uuid(f"{self.root}-sub{len(self.subagents) + 1}")
            parent = self.rng.choice(threads)
            self.subagents.append(sub)
            threads.append(sub)
            yield self.out(_subagent_started(self.decks, self.clock, sub, parent, self.model))
        for thread_id in threads:
            # Sub-agents do one task each; the root thread runs the configured number of turns.
            turns = self.rng.randint(*self.options.turns_per_thread) if thread_id == self.root else 1
            for number in range(turns):
                yield from self.turn(thread_id, f"{thread_id}-turn{number + 1}", first=number == 0)
        if self.rng.random() < self.options.unknown_answer_rate:
            yield self.unrouted_answer()

    def turn(self, thread_id: str, turn_id: str, *, first: bool) -> Iterator[_Out]:
        rng, clock, options = self.rng, self.clock, self.options
        is_root = thread_id == self.root
        inputs = _user_input(rng)
        images = sum(1 for item in inputs if item["type"] in ("image", "localImage"))
        turn_start_ms = clock.now_ms
        if is_root:
            # Sub-agent turns are started in-process: no client request, only notifications.
            request_id = self.producer.client_request_id(self.connection_id)
            yield self.out(
                _client_request(self.connection_id, request_id, "turn/start", {"threadId": thread_id, "input": inputs})
            )
            yield self.out(
                _client_response(self.connection_id, request_id, "turn/start", {"turn": _turn(turn_id, "inProgress")})
            )
        started_s = clock.now_s
        yield self.out(
            _notification(
                "turn/started", {"threadId": thread_id, "turn": _turn(turn_id, "inProgress", startedAt=started_s)}
            )
        )
        yield self.out(_resolved_config(rng, thread_id, turn_id, images, first, self.model))
        if is_root and rng.random() < 0.2:
            yield from self.steer(thread_id, turn_id)
        for number in range(rng.randint(*options.items_per_turn)):
            yield from self.item(thread_id, turn_id, f"item-{number + 1}")
        if rng.random() < 0.25:
            yield from self.turn_review(thread_id, turn_id)
        if rng.random() < 0.3:
            diff = {"threadId": thread_id, "turnId": turn_id, "diff": _diff(rng)}
            yield self.out(_notification("turn/diff/updated", diff))
        if rng.random() < options.custom_rate:
            yield self.out(_compaction(rng, clock, thread_id, turn_id))
        if rng.random() < options.custom_rate:
            yield self.out(_custom_fact(rng, self.decks, thread_id, turn_id, self.model))
        if rng.random() < 0.9:
            yield self.out(_token_usage(rng, thread_id, turn_id))
        status = self.decks.turn_end.draw()
        error = {
            "message": "model error",
            "codexErrorInfo": rng.choice(("badRequest", {"httpConnectionFailed": {"httpStatusCode": 502}})),
        }
        ended = _turn(
            turn_id,
            status,
            startedAt=started_s,
            completedAt=clock.now_s,
            durationMs=clock.now_ms - turn_start_ms,
        )
        if status == "failed":
            ended["error"] = error
            if rng.random() < 0.7:
                yield self.out(_codex_error(rng, thread_id, turn_id))
        profile_first = rng.random() < 0.7  # the turn row waits for both; either may come last
        if profile_first:
            yield self.out(_turn_profile(rng, turn_id))
        yield self.out(_notification("turn/completed", {"threadId": thread_id, "turn": ended}))
        if not profile_first and rng.random() < 0.95:
            yield self.out(_turn_profile(rng, turn_id))

    def steer(self, thread_id: str, turn_id: str) -> Iterator[_Out]:
        request_id = self.producer.client_request_id(self.connection_id)
        outcome = self.decks.steer.draw()
        expected = turn_id if outcome != "expected_turn_mismatch" else f"{turn_id}-stale"
        params = {"threadId": thread_id, "expectedTurnId": expected, "input": _user_input(self.rng)}
        yield self.out(_client_request(self.connection_id, request_id, "turn/steer", params))
        if outcome == "accepted":
            yield self.out(_client_response(self.connection_id, request_id, "turn/steer", {"turnId": turn_id}))
        else:
            yield self.out(
                {
                    "kind": "error_response",
                    "connection_id": self.connection_id,
                    "request_id": request_id,
                    "error": {"code": -32600, "message": f"steer rejected: {outcome}", "data": None},
                    "error_type": outcome,
                }
            )

    def item(self, thread_id: str, turn_id: str, item_id: str) -> Iterator[_Out]:
        rng, clock = self.rng, self.clock
        if rng.random() < 0.15:
            item = dict(_NON_TOOL_ITEMS[rng.choice(tuple(_NON_TOOL_ITEMS))], id=item_id)
            base = {"threadId": thread_id, "turnId": turn_id}
            yield self.out(_notification("item/started", {**base, "item": item, "startedAtMs": clock.now_ms}))
            yield self.out(_notification("item/completed", {**base, "item": item, "completedAtMs": clock.now_ms}))
            return
        tool = self.decks.tool.draw()
        mcp_tool = rng.choice(("search_docs", "fetch_page"))
        outcome_status: str | None = None
        reviews: list[Iterator[_Out]] = []
        if rng.random() < self.options.review_rate:
            review, outcome_status = self.item_review(tool, thread_id, turn_id, item_id, mcp_tool)
            if review is not None:
                reviews.append(review)
        final = _tool_item(rng, self.decks, tool, item_id, outcome_status, thread_id, self.subagents, mcp_tool)
        base = {"threadId": thread_id, "turnId": turn_id}
        if rng.random() < 0.97:  # now and then an item completes without having started (spec I4)
            yield self.out(
                _notification("item/started", {**base, "item": _in_progress(final), "startedAtMs": clock.now_ms})
            )
        for review in reviews:
            yield from review
        yield self.out(_notification("item/completed", {**base, "item": final, "completedAtMs": clock.now_ms}))

    def item_review(
        self, tool: str, thread_id: str, turn_id: str, item_id: str, mcp_tool: str
    ) -> tuple[Iterator[_Out] | None, str | None]:
        """A review of this item, and the item status its outcome implies (``None``: any)."""
        rng = self.rng
        match tool:
            case "commandExecution":
                if rng.random() < 0.6:
                    decision = self.decks.command_decision.draw()
                    status = "declined" if decision in ("decline", "applyNetworkPolicyAmendment:deny") else None
                    return self.user_command_review(thread_id, turn_id, item_id, decision), status
                action = self.decks.command_guardian_action.draw()
                return self.guardian_review(thread_id, turn_id, item_id, action, None), None
            case "fileChange":
                if rng.random() < 0.6:
                    decision = self.decks.file_decision.draw()
                    status = "declined" if decision == "decline" else None
                    return self.user_file_change_review(thread_id, turn_id, item_id, decision), status
                return self.guardian_review(thread_id, turn_id, item_id, "applyPatch", None), None
            case "mcpToolCall":
                return self.guardian_review(thread_id, turn_id, item_id, "mcpToolCall", mcp_tool), None
            case _:
                return None, None

    def turn_review(self, thread_id: str, turn_id: str) -> Iterator[_Out]:
        """A review not attached to a tool item: permissions (user or guardian) or network access."""
        self.review_counter += 1
        choice = self.rng.randrange(3)
        if choice == 0:
            yield from self.user_permissions_review(thread_id, turn_id, f"permissions-{self.review_counter}")
        elif choice == 1:
            yield from self.guardian_review(thread_id, turn_id, None, "requestPermissions", None)
        else:
            yield from self.guardian_review(thread_id, turn_id, None, "networkAccess", None)

    def answer(self, request_id: int | str, decision: str, method: str) -> Iterator[_Out]:
        """The client's answer (or an abort), and now and then a duplicate the reducer must ignore."""
        if self.rng.random() < self.options.unanswered_rate:
            return  # never answered: the pending review stays until its family expires
        if decision == "abort":
            fact: Json = {
                "kind": "server_request_aborted",
                "completed_at_ms": self.clock.now_ms,
                "request_id": request_id,
            }
        else:
            response = {"decision": _command_decision(decision)}
            fact = {
                "kind": "server_response",
                "completed_at_ms": self.clock.now_ms,
                "response": {"method": method, "id": request_id, "response": response},
            }
        yield self.out(fact)
        if self.rng.random() < self.options.unknown_answer_rate:
            duplicate = dict(fact, completed_at_ms=self.clock.now_ms)
            yield self.out(duplicate)

    def user_command_review(self, thread_id: str, turn_id: str, item_id: str, decision: str) -> Iterator[_Out]:
        request_id = self.producer.server_request_id(self.rng)
        variant = self.decks.command_request.draw()
        request = _command_approval(variant, request_id, thread_id, turn_id, item_id, self.clock.now_ms)
        yield self.out({"kind": "server_request", "connection_id": self.connection_id, "request": request})
        yield from self.answer(request_id, decision, "item/commandExecution/requestApproval")

    def user_file_change_review(self, thread_id: str, turn_id: str, item_id: str, decision: str) -> Iterator[_Out]:
        request_id = self.producer.server_request_id(self.rng)
        params = {
            "threadId": thread_id,
            "turnId": turn_id,
            "itemId": item_id,
            "startedAtMs": self.clock.now_ms,
            "reason": None,
            "grantRoot": "/work/repo" if self.decks.file_grant.draw() else None,
        }
        request = {"method": "item/fileChange/requestApproval", "id": request_id, "params": params}
        yield self.out({"kind": "server_request", "connection_id": self.connection_id, "request": request})
        yield from self.answer(request_id, decision, "item/fileChange/requestApproval")

    def user_permissions_review(self, thread_id: str, turn_id: str, item_id: str) -> Iterator[_Out]:
        request_id = self.producer.server_request_id(self.rng)
        params = {
            "threadId": thread_id,
            "turnId": turn_id,
            "itemId": item_id,
            "startedAtMs": self.clock.now_ms,
            "cwd": "/work/repo",
            "reason": "needs access",
            "permissions": _permissions_profile(self.decks.permissions_request.draw()),
        }
        request = {"method": "item/permissions/requestApproval", "id": request_id, "params": params}
        yield self.out({"kind": "server_request", "connection_id": self.connection_id, "request": request})
        answer = self.decks.permissions_answer.draw()
        if self.rng.random() < self.options.unanswered_rate:
            return
        if answer == "abort":
            yield from self.answer(request_id, "abort", "")
            return
        yield self.out(
            {
                "kind": "effective_permissions_approval_response",
                "completed_at_ms": self.clock.now_ms,
                "request_id": request_id,
                "response": _effective_permissions(answer),
            }
        )

    def guardian_review(
        self, thread_id: str, turn_id: str, item_id: str | None, action: str, item_tool: str | None
    ) -> Iterator[_Out]:
        self.review_counter += 1
        review_id = f"guardian-{self.root}-{self.review_counter}"
        started_ms = self.clock.now_ms
        status = self.decks.guardian_status.draw()
        common = {
            "threadId": thread_id,
            "turnId": turn_id,
            "startedAtMs": started_ms,
            "reviewId": review_id,
            "targetItemId": item_id,
            "action": _guardian_action(action, item_tool),
        }
        started_review = {"status": "inProgress", "riskLevel": None, "userAuthorization": None, "rationale": None}
        yield self.out(_notification("item/autoApprovalReview/started", {**common, "review": started_review}))
        completed_ms = self.clock.now_ms
        review = {"status": status, "riskLevel": "low", "userAuthorization": "high", "rationale": "looks safe"}
        completed = {**common, "completedAtMs": completed_ms, "decisionSource": "agent", "review": review}
        yield self.out(_notification("item/autoApprovalReview/completed", completed))
        if status != "inProgress":
            yield self.out(
                _guardian_review_fact(self.rng, completed, action, started_ms, completed_ms, thread_id != self.root)
            )

    def unrouted_answer(self) -> _Out:
        """An answer to a request id the producer never saw: published with no thread (fallback key)."""
        unknown = f"unknown-{self.root}"
        if self.rng.random() < 0.5:
            return {"kind": "server_request_aborted", "completed_at_ms": self.clock.now_ms, "request_id": unknown}, None
        response = {"method": "item/fileChange/requestApproval", "id": unknown, "response": {"decision": "accept"}}
        return {"kind": "server_response", "completed_at_ms": self.clock.now_ms, "response": response}, None


def _family_script(
    rng: random.Random, clock: _Clock, decks: _Decks, options: _Options, producer: _Producer, root: str
) -> Iterator[_Out]:
    return _Family(rng, clock, decks, options, producer, root).run()


# --- output ---------------------------------------------------------------------------------------


def write_jsonl(path: str | Path | IO[bytes], facts: Iterable[GeneratedFact]) -> int:
    """Write each fact's value as one line (``path`` may be an open binary stream); return the count."""
    if isinstance(path, str | Path):
        with open(path, "wb") as stream:
            return _write_lines(stream, facts)
    return _write_lines(path, facts)


def _write_lines(stream: IO[bytes], facts: Iterable[GeneratedFact]) -> int:
    count = 0
    chunk: list[bytes] = []
    for fact in facts:
        chunk.append(fact.value)
        chunk.append(b"\n")
        count += 1
        if len(chunk) >= 2048:
            stream.write(b"".join(chunk))
            chunk.clear()
    stream.write(b"".join(chunk))
    return count


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.demo.generator",
        description="Write a seeded, realistic analytics fact stream as JSON lines (one fact envelope per line).",
        epilog=(
            "Example: python -m tools.demo.generator --seed 7 --threads 20 "
            "--out tools/demo/sample_facts.jsonl (the bundled sample). "
            "The same options always give the same bytes."
        ),
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed (default: 7)")
    parser.add_argument("--threads", type=int, default=20, help="root-thread families (default: 20)")
    parser.add_argument("--producers", type=int, default=2, help="app-server processes (default: 2)")
    parser.add_argument("--connections", type=int, default=2, help="connections per producer (default: 2)")
    parser.add_argument("--concurrency", type=int, default=8, help="families open at once (default: 8)")
    parser.add_argument(
        "--poison-garbage", type=float, default=0.0, metavar="RATE", help="random-bytes records per fact"
    )
    parser.add_argument(
        "--poison-invalid", type=float, default=0.0, metavar="RATE", help="wrong-field-type facts per fact"
    )
    parser.add_argument("--oversized", type=int, default=0, metavar="N", help="facts larger than 1 MiB")
    parser.add_argument("--out", default="-", help="output file, or - for stdout (default: -)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    workload = Workload(
        args.seed,
        args.threads,
        producers=args.producers,
        connections=args.connections,
        concurrency=args.concurrency,
        poison_rate_garbage=args.poison_garbage,
        poison_rate_invalid=args.poison_invalid,
        oversized=args.oversized,
    )
    if args.out == "-":
        count = write_jsonl(sys.stdout.buffer, workload.facts())
        sys.stdout.buffer.flush()
    else:
        count = write_jsonl(args.out, workload.facts())
    print(f"wrote {count} facts", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
