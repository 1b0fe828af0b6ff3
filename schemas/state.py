"""Reducer state: what one input partition remembers, and what its changelog stores.

Layout (one :class:`PartitionState` per input partition)::

    PartitionState
      connections: "<producer>\\x1f<connection id>" -> ConnectionState     (changelog key "c:<same>")
      families:    "<root thread id>"               -> FamilyState         (changelog key "t:<same>")
        threads         thread id                              -> ThreadState
        requests        "<producer>\\x1f<connection>\\x1f<request id>" -> PendingTurnRequest
        turns           turn id                                -> TurnState
        started_at_ms   "<thread>\\x1f<turn>\\x1f<item>"          -> started_at_ms
        pending_reviews "<producer>\\x1f<request id>"            -> PendingReview
        summaries       "<thread>\\x1f<turn>\\x1f<item>"          -> ItemReviewSummary

A *family* is a root thread and its sub-agent threads: every fact of a family is routed to one
partition (key = root thread id), so a fact only ever touches its own family and the partition's
connection table. That makes a family the unit of changelog records, eviction and isolation.

Every struct here is ``gc=False``: the state holds millions of small objects that never form reference
cycles, and leaving them out of the cyclic garbage collector's scans removes the full collections that
otherwise dominate pauses and restores (docs/performance.md).

Request ids are keyed with their JSON type (``i41`` vs ``s41``): ``41`` and ``"41"`` are different ids.
"""

from __future__ import annotations

from typing import Any, Final, NoReturn

import msgspec

from schemas.events import AppServerClient, FinalApprovalOutcome, ReviewSubjectKind, ReviewTrigger
from schemas.facts import TurnProfile
from schemas.protocol import RuntimeMetadata

KEY_SEP = "\x1f"


class _NoEntries(dict[Any, Any]):
    """The type of :data:`NO_ENTRIES`: an empty ``dict`` that refuses every insertion."""

    __slots__ = ()

    def _read_only(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("NO_ENTRIES is shared by every family: replace it with a new dict before inserting")

    __setitem__ = _read_only
    setdefault = _read_only
    update = _read_only
    __ior__ = _read_only


NO_ENTRIES: Final[dict[Any, Any]] = _NoEntries()
"""The value of every :class:`FamilyState` map that holds nothing: one shared, read-only empty dict.

A family uses two of its six maps at a time on average, and an emptied dict keeps its allocated
table, so giving each family six dicts of its own was most of its memory (docs/performance.md, B5).
Reads (``get``, ``pop``, ``in``, ``len``, iteration, ``== {}``) work as on any empty dict. Writers
give the family a dict of its own when the map is empty (``if not family.turns: family.turns = {}``)
and put ``NO_ENTRIES`` back when they empty it; inserting into ``NO_ENTRIES`` raises ``TypeError``
instead of leaking entries into every family. Being the fields' default, it is omitted from changelog
values (``omit_defaults``) and decoded as the same shared object. Which empty value a map holds never
changes a row or a comparison (``NO_ENTRIES == {}``).
"""


class ConnectionState(msgspec.Struct, kw_only=True, array_like=True, gc=False):
    app_server_client: AppServerClient
    runtime: RuntimeMetadata


class ThreadMetadata(msgspec.Struct, kw_only=True, array_like=True, gc=False):
    session_id: str | None
    thread_source: str | None
    initialization_mode: str
    subagent_source: str | None
    parent_thread_id: str | None


class ThreadState(msgspec.Struct, kw_only=True, array_like=True, gc=False):
    connection: str | None = None
    metadata: ThreadMetadata | None = None


class PendingReview(msgspec.Struct, kw_only=True, array_like=True, gc=False):
    """A review whose request was seen and whose answer (response / abort) was not, yet.

    Guardian reviews use the same record, built and emitted in one step.
    """

    thread_id: str
    turn_id: str
    item_id: str | None
    review_id: str
    subject_kind: ReviewSubjectKind
    subject_name: str
    trigger: ReviewTrigger
    started_at_ms: int
    requested_additional_permissions: bool
    requested_network_access: bool


class ItemReviewSummary(msgspec.Struct, kw_only=True, array_like=True, gc=False):
    """Reviews of one tool item, denormalised onto its terminal row."""

    review_count: int = 0
    guardian_review_count: int = 0
    user_review_count: int = 0
    final_approval_outcome: FinalApprovalOutcome | None = None
    requested_additional_permissions: bool = False
    requested_network_access: bool = False


class PendingTurnRequest(msgspec.Struct, kw_only=True, array_like=True, gc=False):
    """A ``turn/start`` (``expected_turn_id is None``) or ``turn/steer`` request awaiting its answer."""

    thread_id: str
    num_input_images: int
    expected_turn_id: str | None = None
    created_at: int = 0
    is_steer: bool = False


class TurnCodexError(msgspec.Struct, kw_only=True, array_like=True, gc=False):
    """A ``turn_codex_error`` fact: the core error's kind and HTTP status."""

    kind: str
    http_status_code: int | None = None


class ToolCounts(msgspec.Struct, kw_only=True, array_like=True, gc=False):
    total: int = 0
    shell_command: int = 0
    file_change: int = 0
    mcp_tool_call: int = 0
    dynamic_tool_call: int = 0
    subagent_tool_call: int = 0
    web_search: int = 0
    image_generation: int = 0


class TurnCompletion(msgspec.Struct, kw_only=True, array_like=True, gc=False):
    """What ``turn/completed`` said: status (null for ``inProgress``), error info, end time, duration."""

    status: str | None
    turn_error: Any
    """``turn.error.codexErrorInfo`` JSON verbatim (a string or an object), or null."""
    completed_at: int
    duration_ms: int | None


class TokenUsage(msgspec.Struct, kw_only=True, array_like=True, gc=False):
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    reasoning_output_tokens: int
    total_tokens: int


class ResolvedTurnConfig(msgspec.Struct, kw_only=True, array_like=True, gc=False):
    """The row-relevant part of a ``TurnResolvedConfig`` fact, as the fact sent it (mapped at emission)."""

    submission_type: str | None
    ephemeral: bool
    model: str
    model_provider: str
    sandbox_policy: str
    reasoning_effort: str | None
    reasoning_summary: str | None
    service_tier: str | None
    approval_policy: str
    approvals_reviewer: str
    sandbox_network_access: bool
    collaboration_mode: str
    personality: str | None
    is_first_turn: bool
    repo_hash: str | None
    workspace_kind: str | None = None


class DiffLineCounts(msgspec.Struct, kw_only=True, array_like=True, gc=False):
    """Added / deleted line counts of the latest ``turn/diff/updated`` diff.

    Rust keeps the whole diff text and counts it when the turn row is emitted; only the counts reach
    the row (fingerprints are uploaded empty), so the state keeps the counts, not the diff.
    """

    added: int
    deleted: int


class TurnState(msgspec.Struct, kw_only=True, array_like=True, gc=False):
    """One turn of the family, keyed by turn id; deleted when its ``codex_turn_event`` is emitted.

    ``connection`` is set only by a matched ``turn/start`` response (else the thread's connection is
    used); ``thread_id`` / ``num_input_images`` by that response or by the resolved config (last
    writer wins); ``tool_counts`` by :mod:`reducer.items`.
    """

    connection: str | None = None
    thread_id: str | None = None
    num_input_images: int | None = None
    resolved_config: ResolvedTurnConfig | None = None
    started_at: int | None = None
    token_usage: TokenUsage | None = None
    completed: TurnCompletion | None = None
    latest_diff: DiffLineCounts | None = None
    steer_count: int = 0
    tool_counts: ToolCounts = msgspec.field(default_factory=ToolCounts)
    profile: TurnProfile | None = None
    """The ``turn_profile`` fact's profile as it came (copied to the turn row)."""
    codex_error: TurnCodexError | None = None


class FamilyState(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """One family's maps; an empty map is :data:`NO_ENTRIES` (see there), never a dict of its own."""

    threads: dict[str, ThreadState] = NO_ENTRIES
    requests: dict[str, PendingTurnRequest] = NO_ENTRIES
    turns: dict[str, TurnState] = NO_ENTRIES
    started_at_ms: dict[str, int] = NO_ENTRIES
    pending_reviews: dict[str, PendingReview] = NO_ENTRIES
    summaries: dict[str, ItemReviewSummary] = NO_ENTRIES
    last_seen_ms: int = 0
    """Largest ``observed_at_ms`` of the family's facts: drives idle expiry (never the wall clock)."""

    def is_empty(self) -> bool:
        return not (
            self.threads or self.requests or self.turns or self.started_at_ms or self.pending_reviews or self.summaries
        )


class PartitionState(msgspec.Struct, kw_only=True, gc=False):
    connections: dict[str, ConnectionState] = {}
    families: dict[str, FamilyState] = {}
    watermark_ms: int = 0
    """The partition's fact time (``reducer.clock``); families idle for longer than the TTL before it expire."""
    ahead_run: int = 0
    """Consecutive facts (up to now) observed too far ahead of the watermark to move it (``reducer.clock``)."""
    ahead_min_ms: int = 0
    """Earliest ``observed_at_ms`` of that run (0 when there is none)."""
    drops: dict[str, int] = {}
    """Facts or rows the rules drop, by reason (``missing_context``, ``unknown_request``, ...).

    Runtime-only diagnostics for metrics and logs; never written to the changelog.
    """
