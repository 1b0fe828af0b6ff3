"""The containment boundary: everything that happens to one fact, and nothing that escapes it.

A :class:`PartitionReducer` is one input partition's state machine. It takes the partition's facts as raw
bytes, in offset order and in batches of any size, and says of every fact exactly one of:

* **reduced**: its rows (already encoded) and its state change are in the :class:`BatchResult`;
* **refused**: a :class:`Refusal` with a stable ``reason`` and the exception, for the dead-letter topic;
  the state is exactly as if the fact had never arrived;
* **dropped**: the fact was reduced but a rule dropped what it asked for (an answer to an unknown
  request, an evicted family, ...), counted by reason in ``state.drops``.

Inside the boundary: decoding (``schemas.codec``), reducing (:func:`reducer.core.reduce`), encoding the
rows, encoding the changed state, and checking both against ``limits.max_record_bytes``. No exception
raised for one fact leaves it, so a bug in the reducer costs one dead letter per affected fact, never the
partition.

Refusal reasons (the ``dlq.reason`` header):

=====================  =====================================================================
``undecodable`` ...    the decode reasons of :mod:`schemas.codec` (``FactDecodeError.reason``)
``reducer_error``      the reducer raised
``row_unencodable``    a row it emitted cannot be encoded as JSON
``row_too_large``      a row's record would exceed ``limits.max_record_bytes``
``state_unencodable``  the fact's family (or connection) can no longer be encoded for the changelog
``state_too_large``    the family's changelog record would exceed ``limits.max_record_bytes``
=====================  =====================================================================

How "as if it never arrived" stays cheap (docs/reliability.md, "The containment boundary"): the reducer
mutates state in place, and copying a family before every fact would cost a fifth of the throughput. So a
batch runs optimistically and only the families that need it pay:

1. **Fast pass.** Facts are reduced in place. For every family the boundary keeps an upper bound of its
   encoded size: its last changelog value plus ``GROWTH_PER_BYTE`` bytes per byte of fact plus
   ``GROWTH_PER_FACT`` (a fact stores at most a few copies of its own strings). While the bound is under
   ``max_record_bytes`` no fact of the family can make its record too large, so nothing is checked.
2. **Careful mode**, for a fact that would take its family's bound over the limit: the family is encoded
   before it (the bytes to roll back to) and after it (its exact size, which becomes the new bound);
   a fact that fails is refused and the family decoded back. Only a family within a fact's growth of the
   limit pays this: one encode per fact, and a decode per refusal.
3. **Redo**, for a family whose fact failed in the fast pass (the reducer raised, a row could not be
   encoded or was too large) or whose record failed at the end of the batch: its rows of this batch are
   taken back, the family is decoded from its last changelog value (kept in :attr:`values`) and its facts
   of the batch are reduced again in careful mode. Connections, which its facts read, are wound back to
   the start of the batch and forward again fact by fact from a journal, so each fact sees the connection
   table it saw the first time. Reducing is deterministic, so the redo reproduces every good fact exactly.

``Initialize`` facts, which change only the connection table, are always handled carefully (they are
rare). Refused facts do not move the clock (:mod:`reducer.clock`), which is folded once per batch over the
reduced facts. After the batch: per-family caps, idle expiry (:class:`reducer.expiry.IdleIndex`), and the
byte budget (longest-idle families evicted until the state is under 90 % of ``state_budget_bytes``).

Every outcome depends only on the facts and their order, not on the batch sizes, except where a rule
applies at batch ends (caps, expiry and the budget, as before the boundary existed; and drop counters of a
redone family, which may count its good facts' drops twice). Replay and the system tests' oracle use this
class too, so they agree with the processor by construction.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, NamedTuple

from reducer.clock import advance
from reducer.context import bump, connection_key
from reducer.core import family_key, reduce
from reducer.expiry import IdleIndex, enforce_caps
from reducer.limits import DEFAULT_LIMITS, Limits
from reducer.snapshot import CONNECTION_PREFIX, FAMILY_PREFIX, WATERMARK_KEY, encode_clock, restore_values
from schemas.codec import FactDecodeError, decode_fact, decode_family, encode_connection, encode_family, row_encoder
from schemas.events import Row
from schemas.facts import FactEnvelope, Initialize
from schemas.state import ConnectionState, FamilyState, PartitionState

__all__ = [
    "GROWTH_PER_BYTE",
    "GROWTH_PER_FACT",
    "BatchResult",
    "PartitionReducer",
    "Refusal",
    "RowOut",
]

GROWTH_PER_BYTE: Final = 4
"""Upper bound of the bytes one byte of a fact can add to its family's changelog value. A fact's strings are
kept at most twice (a map key and a field of the entry), and MessagePack never takes more bytes for a
string, an integer or a boolean than its JSON text; 4 leaves a margin."""
GROWTH_PER_FACT: Final = 1024
"""Upper bound of what one fact adds beyond its own bytes (struct headers, counters, timestamps)."""
BUDGET_LOW_WATER: Final = 0.9
"""Over budget, families are evicted until the state is under this fraction of it."""

RECORD_OVERHEAD: Final = 64
"""Bytes a produced row record carries besides its key and value (its two headers, as the processor sets them)."""

_encode_row: Final = row_encoder()
_new_row: Final = tuple.__new__
"""Builds a :class:`RowOut` from a tuple in C, without the Python-level ``__new__`` a NamedTuple call runs."""


class RowOut(NamedTuple):
    """One row of a reduced fact: ``nth`` counts the fact's rows from 0."""

    position: int
    nth: int
    family: str
    value: bytes
    cls: type[Row]


class Refusal(NamedTuple):
    """A fact dead-lettered by the boundary: where it was in the batch, why, and the exception."""

    position: int
    reason: str
    # Quoted for mypyc: it fills a compiled NamedTuple's __annotations__ by looking unquoted class names up
    # in the module's globals, where a builtin such as BaseException is not (KeyError at import).
    error: "BaseException"  # noqa: UP037


@dataclass(slots=True)
class BatchResult:
    """What one batch produced, in the order to commit it."""

    rows: list[RowOut] = field(default_factory=list)
    """Rows in fact order (position, then index)."""
    refused: list[Refusal] = field(default_factory=list)
    """Refused facts in position order."""
    changelog: list[tuple[str, bytes | None]] = field(default_factory=list)
    """Changed state as changelog records (``None``: tombstone); the clock record last."""
    families: list[str] = field(default_factory=list)
    """Keys of the families the batch changed, created or evicted (each has a record in :attr:`changelog`)."""
    connections: list[str] = field(default_factory=list)
    """Keys of the connections the batch changed or evicted (each has a record in :attr:`changelog`)."""
    reduced: int = 0
    """Facts reduced (the batch's facts less the refused ones)."""
    ahead: int = 0
    """Reduced facts observed too far ahead of the watermark to move it (``reducer.clock``)."""


# ``reason`` is a ClassVar: without it mypyc makes an assignment in a class body an instance attribute's
# default, which an exception class never sets (AttributeError in the compiled build).
class _StateTooLarge(ValueError):
    reason: ClassVar[str] = "state_too_large"


class _StateUnencodable(ValueError):
    reason: ClassVar[str] = "state_unencodable"


class _RowTooLarge(ValueError):
    reason: ClassVar[str] = "row_too_large"


class _RowUnencodable(ValueError):
    reason: ClassVar[str] = "row_unencodable"


REDUCER_ERROR: Final = "reducer_error"
"""The refusal reason of a fact the reducer itself raised on."""


ConnectionChange = tuple[int, str, ConnectionState | None, ConnectionState | None]
"""(position, connection key, before, after) of one change to the connection table."""


_MISSING: Final = object()


@dataclass(slots=True)
class _Batch:
    """Book-keeping of one :meth:`PartitionReducer.run`."""

    envelopes: list[FactEnvelope | None]
    result: BatchResult
    clock: tuple[int, int, int]
    """The partition's clock (watermark, run, run minimum) at the start of the batch."""
    observed: list[int] = field(default_factory=list)
    """``observed_at_ms`` of the facts the fast pass reduced, in order (the clock's input unless a redo)."""
    redone: bool = False
    connections: set[str] = field(default_factory=set)
    """Connection keys this batch changed."""
    journal: list[ConnectionChange] = field(default_factory=list)
    """Connection changes in order: (position, key, before, after)."""
    bounds: dict[str, int] = field(default_factory=dict)
    """Every family a fact of the batch touched -> an upper bound of its encoded size (exact after careful mode)."""
    careful: dict[str, bytes | None] = field(default_factory=dict)
    """Families in careful mode -> their value after the last good fact (``None``: the family does not exist)."""
    failed: dict[str, int] = field(default_factory=dict)
    """Families to redo -> the last position the fast pass reduced (or tried to)."""
    refused: set[int] = field(default_factory=set)


class PartitionReducer:
    """One partition's state, its last changelog values and its bounds; see the module docstring."""

    __slots__ = ("idle_index", "idle_ttl_ms", "limits", "state", "state_bytes", "values")

    def __init__(
        self,
        state: PartitionState | None = None,
        *,
        idle_ttl_ms: int,
        limits: Limits = DEFAULT_LIMITS,
        values: dict[str, bytes] | None = None,
    ) -> None:
        """``values``: the families' changelog values (``{family key: value}``) when known, else computed."""
        if idle_ttl_ms < 0:
            raise ValueError(f"idle_ttl_ms must be >= 0, got {idle_ttl_ms}")
        self.state = state if state is not None else PartitionState()
        self.idle_ttl_ms = idle_ttl_ms
        self.limits = limits
        if values is None:
            values = {key: encode_family(family) for key, family in self.state.families.items()}
        self.values = values
        """The last changelog value of every family in the state, by family key (what a redo starts from)."""
        self.state_bytes = sum(len(value) for value in values.values())
        """Encoded size of the families (the byte budget's measure)."""
        self.idle_index = IdleIndex(self.state)

    @classmethod
    def restored(
        cls, records: Iterable[tuple[str, bytes | None]], *, idle_ttl_ms: int, limits: Limits = DEFAULT_LIMITS
    ) -> PartitionReducer:
        """From changelog records in offset order (see :func:`reducer.snapshot.restore`)."""
        state, values = restore_values(records)
        families = {key[len(FAMILY_PREFIX) :]: value for key, value in values.items() if key.startswith(FAMILY_PREFIX)}
        return cls(state, idle_ttl_ms=idle_ttl_ms, limits=limits, values=families)

    # --- a stream of facts ----------------------------------------------------------------------------

    def run_all(self, facts: Iterable[bytes | memoryview | None], *, batch: int = 1000) -> Iterator[BatchResult]:
        """:meth:`run` over ``facts`` in batches of ``batch``: the loop of every tool that reduces a stream.

        A result's positions count from the start of its own batch (``batch * n`` for the n-th result)."""
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        pending: list[bytes | memoryview | None] = []
        for fact in facts:
            pending.append(fact)
            if len(pending) >= batch:
                yield self.run(pending)
                pending = []
        if pending:
            yield self.run(pending)

    # --- one batch ------------------------------------------------------------------------------------

    def run(self, facts: Sequence[bytes | memoryview | None]) -> BatchResult:
        """Reduce a batch of facts (raw bytes; ``None`` for a record without a value), in order."""
        state = self.state
        batch = _Batch(
            envelopes=[], result=BatchResult(), clock=(state.watermark_ms, state.ahead_run, state.ahead_min_ms)
        )
        self._fast_pass(facts, batch)
        for key in list(batch.failed):
            self._redo(key, batch)
        self._finish(batch)
        return batch.result

    def _fast_pass(self, facts: Sequence[bytes | memoryview | None], batch: _Batch) -> None:
        state = self.state
        limit = self.limits.max_record_bytes
        row_room = limit - RECORD_OVERHEAD
        values = self.values
        envelopes = batch.envelopes
        observed = batch.observed
        bounds = batch.bounds
        careful = batch.careful
        failed = batch.failed
        rows = batch.result.rows
        encode_row = _encode_row
        new_row = _new_row
        for position, raw in enumerate(facts):
            try:
                if raw is None:
                    raise FactDecodeError("record has no value (tombstone)")
                envelope = decode_fact(raw)
            except Exception as error:  # decode_fact promises FactDecodeError only; a broken promise is contained too
                reason = error.reason if isinstance(error, FactDecodeError) else "undecodable"
                self._refuse(batch, position, reason, error)
                envelopes.append(None)
                continue
            envelopes.append(envelope)
            if type(envelope.fact) is Initialize:
                if self._initialize(position, envelope, batch):
                    observed.append(envelope.observed_at_ms)
                continue
            key = family_key(envelope)
            bound = bounds.get(key)
            if bound is None:
                value = values.get(key)
                bound = 0 if value is None else len(value)
            elif failed and key in failed:
                continue  # redone with the rest of its facts
            bound += GROWTH_PER_BYTE * len(raw) + GROWTH_PER_FACT
            bounds[key] = bound
            if bound > limit:
                if self._careful(position, key, envelope, batch, rows):  # sets the bound to the exact size
                    observed.append(envelope.observed_at_ms)
                continue
            if careful:
                careful.pop(key, None)  # the bytes kept for a rollback are stale once a fact changes it here
            try:
                emitted = reduce(state, envelope)[1]
                if emitted:
                    room = row_room - 4 * len(key)  # 4 bytes per character bound the key's UTF-8
                    for nth, row in enumerate(emitted):
                        value = encode_row(row)
                        if len(value) > room:
                            _check_row(row, value, key, limit)  # the exact rule, raises when too large
                        rows.append(new_row(RowOut, (position, nth, key, value, type(row))))
            except Exception:  # any failure of this fact: the family is redone carefully (its rows too)
                failed[key] = position
                continue
            observed.append(envelope.observed_at_ms)

    def _positions(self, key: str, batch: _Batch) -> list[int]:
        """Positions of the batch's facts of family ``key`` (found again: needed only for a redo)."""
        return [
            position
            for position, envelope in enumerate(batch.envelopes)
            if envelope is not None and type(envelope.fact) is not Initialize and family_key(envelope) == key
        ]

    def _refuse(self, batch: _Batch, position: int, reason: str, error: BaseException) -> None:
        batch.result.refused.append(Refusal(position, reason, error))
        batch.refused.add(position)

    def _initialize(self, position: int, envelope: FactEnvelope, batch: _Batch) -> bool:
        """An ``Initialize``: changes one connection only, always checked before it is kept; ``False`` if refused."""
        state = self.state
        connections = state.connections
        fact = envelope.fact
        assert isinstance(fact, Initialize)
        key = connection_key(envelope.producer, fact.connection_id)
        before = connections.get(key)
        try:
            reduce(state, envelope)
            after = connections.get(key)
            if after is not None:
                _check_record(CONNECTION_PREFIX + key, _encode_state(encode_connection, after), self.limits)
        except Exception as error:
            if before is None:
                connections.pop(key, None)
            else:
                connections[key] = before
            self._refuse(batch, position, _reason(error), error)
            return False
        batch.journal.append((position, key, before, after))
        batch.connections.add(key)
        if before is None and len(connections) > self.limits.max_connections:
            oldest = next(iter(connections))
            evicted = connections.pop(oldest)
            batch.journal.append((position, oldest, evicted, None))
            batch.connections.add(oldest)
            bump(state, "connection_evicted")
        return True

    def _careful(self, position: int, key: str, envelope: FactEnvelope, batch: _Batch, rows: list[RowOut]) -> bool:
        """Reduce one fact of ``key`` with its family encoded before and after, and roll back on any failure.

        ``True`` if the fact was reduced; ``False`` if it was refused, or if the family must be redone."""
        families = self.state.families
        limit = self.limits.max_record_bytes
        before = batch.careful.get(key, _MISSING)
        if before is _MISSING:
            family = families.get(key)
            try:
                before = None if family is None else _encode_state(encode_family, family)
            except _StateUnencodable:  # an earlier fact of the batch broke it (F8): redo the family
                batch.failed[key] = max((p for p in self._positions(key, batch) if p < position), default=-1)
                return False
        assert before is None or isinstance(before, bytes)
        try:
            emitted = reduce(self.state, envelope)[1]
            encoded = _encode_rows(emitted, key, limit) if emitted else []
            family = families.get(key)
            after = None if family is None else _encode_state(encode_family, family)
            if after is not None:
                _check_record(FAMILY_PREFIX + key, after, self.limits)
        except Exception as error:
            if before is None:
                families.pop(key, None)
            else:
                families[key] = decode_family(before)
            batch.careful[key] = before
            batch.bounds[key] = 0 if before is None else len(before)
            self._refuse(batch, position, _reason(error), error)
            return False
        batch.careful[key] = after
        batch.bounds[key] = 0 if after is None else len(after)
        rows.extend(
            RowOut(position, index, key, value, type(row))
            for index, (row, value) in enumerate(zip(emitted, encoded, strict=True))
        )
        return True

    def _redo(self, key: str, batch: _Batch) -> None:
        """Reduce ``key``'s facts of this batch again, carefully, from its last changelog value."""
        state = self.state
        rows = batch.result.rows
        rows[:] = [row for row in rows if row.family != key]
        reduced_until = batch.failed.pop(key)
        batch.redone = True
        value = self.values.get(key)
        if value is None:
            state.families.pop(key, None)
        else:
            state.families[key] = decode_family(value)
        batch.careful[key] = value
        journal = batch.journal
        _wind_back(state.connections, journal)
        applied = 0
        drops = state.drops
        for position in self._positions(key, batch):
            if position in batch.refused:
                continue  # refused in careful mode before the fast pass gave up on the family
            while applied < len(journal) and journal[applied][0] < position:
                _apply(state.connections, journal[applied])
                applied += 1
            envelope = batch.envelopes[position]
            assert envelope is not None
            if position <= reduced_until:
                state.drops = {}  # its drops were counted when the fast pass reduced it
            try:
                self._careful(position, key, envelope, batch, rows)
            finally:
                state.drops = drops
        for change in journal[applied:]:
            _apply(state.connections, change)
        batch.result.rows.sort(key=_row_order)

    def _finish(self, batch: _Batch) -> None:
        """Caps, the changelog values of what changed, the clock, expiry and the byte budget."""
        state = self.state
        result = batch.result
        dirty = sorted(batch.bounds)
        enforce_caps(state, dirty)
        changed = self._encode_families(dirty, batch)
        if batch.failed:  # a record that cannot be written: redo those families, then encode them again
            for key in list(batch.failed):
                self._redo(key, batch)
            enforce_caps(state, dirty)
            changed = self._encode_families(dirty, batch)
            for key in batch.failed:  # cannot happen (a redo keeps only checked values): never keep unwritable state
                state.families.pop(key, None)
                bump(state, "unwritable_family")
                changed.append((FAMILY_PREFIX + key, None))
        refused = batch.refused
        envelopes = batch.envelopes
        result.refused.sort(key=_refusal_order)
        result.reduced = len(envelopes) - len(refused)
        if batch.redone:  # the fast pass's order of reduced facts is not the final one: fold them again
            state.watermark_ms, state.ahead_run, state.ahead_min_ms = batch.clock
            batch.observed = [
                fact.observed_at_ms for p, fact in enumerate(envelopes) if fact is not None and p not in refused
            ]
        result.ahead = advance(state, batch.observed, self.limits)
        evicted = self.idle_index.expire(state, self.idle_ttl_ms, dirty)
        self._release(evicted)  # before the budget looks at the size: expired families weigh nothing (F9)
        over_budget = self._enforce_budget()
        if over_budget:
            self._release(over_budget)
            self.idle_index.forget(over_budget)
            evicted.extend(over_budget)
        records = result.changelog = changed
        gone = sorted(set(evicted))
        for key in gone:
            records.append((FAMILY_PREFIX + key, None))
        result.families = sorted({*dirty, *gone})
        result.connections = sorted(batch.connections)
        for key in result.connections:
            connection = state.connections.get(key)
            records.append((CONNECTION_PREFIX + key, None if connection is None else encode_connection(connection)))
        records.append((WATERMARK_KEY, encode_clock(state)))

    def _encode_families(self, keys: list[str], batch: _Batch) -> list[tuple[str, bytes | None]]:
        """Changelog records of ``keys`` (value ``None``: gone), stored in :attr:`values`; failures go to redo."""
        families = self.state.families
        values = self.values
        limit = self.limits.max_record_bytes
        changed: list[tuple[str, bytes | None]] = []
        for key in keys:
            family = families.get(key)
            old = values.get(key)
            if family is None:
                new = None
            else:
                try:
                    new = encode_family(family)
                    if len(new) + 4 * len(key) + 2 > limit:  # maybe too large: the exact rule decides
                        _check_record(FAMILY_PREFIX + key, new, self.limits)
                except Exception:
                    batch.failed[key] = self._positions(key, batch)[-1]
                    continue
            if old is not None:
                self.state_bytes -= len(old)
            if new is None:
                values.pop(key, None)
            else:
                values[key] = new
                self.state_bytes += len(new)
            changed.append((FAMILY_PREFIX + key, new))
        return changed

    def _release(self, keys: Iterable[str]) -> None:
        """Forget the changelog values of evicted families."""
        values = self.values
        for key in keys:
            old = values.pop(key, None)
            if old is not None:
                self.state_bytes -= len(old)

    def _enforce_budget(self) -> list[str]:
        """Evict the longest-idle families while the state is over its byte budget; return their keys."""
        budget = self.limits.state_budget_bytes
        if self.state_bytes <= budget:
            return []
        state = self.state
        target = int(budget * BUDGET_LOW_WATER)
        future = state.watermark_ms + self.limits.max_clock_skew_ms
        # Families last seen far ahead of the watermark go first: only facts with implausible times keep them.
        order = [(family.last_seen_ms <= future, family.last_seen_ms, key) for key, family in state.families.items()]
        heapq.heapify(order)
        evicted: list[str] = []
        values = self.values
        size = self.state_bytes
        while order and size > target:
            _, _, key = heapq.heappop(order)
            del state.families[key]
            value = values.get(key)
            size -= 0 if value is None else len(value)
            evicted.append(key)
            bump(state, "budget_evicted_family")
        return evicted


# --- helpers ----------------------------------------------------------------------------------------------


def _encode_rows(rows: Sequence[Row], family: str, limit: int) -> list[bytes]:
    """Encode a fact's rows; raise when one cannot be encoded or would make a record over ``limit``."""
    encoded: list[bytes] = []
    for row in rows:
        try:
            value = _encode_row(row)
        except Exception as error:
            raise _RowUnencodable(f"{type(row).__name__}: {type(error).__name__}: {error}") from error
        _check_row(row, value, family, limit)
        encoded.append(value)
    return encoded


def _check_row(row: Row, value: bytes, family: str, limit: int) -> None:
    """The row rule: its record (key = family, the value, the headers' bytes) must fit ``limit``."""
    room = limit - len(family.encode()) - RECORD_OVERHEAD
    if len(value) > room:
        raise _RowTooLarge(f"{type(row).__name__} of {len(value)} bytes; a record allows {room} for it")


def _encode_state(encode: Callable[[Any], bytes], value: FamilyState | ConnectionState) -> bytes:
    try:
        return encode(value)
    except Exception as error:
        raise _StateUnencodable(f"{type(error).__name__}: {error}") from error


def _check_record(name: str, value: bytes, limits: Limits) -> None:
    size = len(name.encode()) + len(value)
    if size > limits.max_record_bytes:
        raise _StateTooLarge(f"changelog record {name[:80]!r} of {size} bytes exceeds {limits.max_record_bytes}")


_OWN_ERRORS: Final = (_StateTooLarge, _StateUnencodable, _RowTooLarge, _RowUnencodable)


def _reason(error: BaseException) -> str:
    """The refusal reason of an exception raised inside the boundary."""
    return error.reason if isinstance(error, _OWN_ERRORS) else REDUCER_ERROR


def _wind_back(connections: dict[str, ConnectionState], journal: list[ConnectionChange]) -> None:
    for _, key, before, _ in reversed(journal):
        if before is None:
            connections.pop(key, None)
        else:
            connections[key] = before


def _apply(connections: dict[str, ConnectionState], change: ConnectionChange) -> None:
    _, key, _, after = change
    if after is None:
        connections.pop(key, None)
    else:
        connections[key] = after


def _row_order(row: RowOut) -> tuple[int, int]:
    return row.position, row.nth


def _refusal_order(refusal: Refusal) -> int:
    return refusal.position
