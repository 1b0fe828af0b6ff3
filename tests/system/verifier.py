"""The verifier: checks V1-V8 of issue 6, plus the ledger and dead-letter checks, as pure functions.

Each check returns a :class:`Check` (never raises), so a negative control can assert that the
verifier *fails* and which check caught it. Row identity is the ``row-id`` header of an ``events``
record (``<facts topic>-<partition>-<offset>-<index>``, deterministic from the source fact).

- V1 no expected row missing;
- V2 no row id appears twice;
- V3 per family (record key), the rows (id and bytes) equal the oracle's, in order, and nothing else;
- V4 per changelog partition, the latest value of every key (tombstone = absent) equals the
  oracle's final-state snapshot;
- V5 the reducer group's committed offset equals the facts end offset on every partition; the sender
  group's committed offset is past the last visible row of every events partition (the sender commits
  ``last row + 1``; a trailing commit marker is not a row);
- V6 no transaction left open: ``read_committed`` end == ``read_uncommitted`` end on every
  transactional output topic, within 2 x the transaction timeout after the last fault;
- V7 the witness consumer that ran during the whole test saw V1-V3 too (no row visible for a while
  and gone later, none twice, none out of order);
- V8 after the last fault (and the last publish), lag reached 0 within 60 s;
- L  the facts topic holds exactly what the generator's ledger says it sent;
- D  the dead-letter topic holds exactly the expected dead letters, once each, with their headers.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from schemas.headers import (
    DLQ_EXCEPTION,
    DLQ_REASON,
    DLQ_SOURCE_OFFSET,
    DLQ_SOURCE_PARTITION,
    DLQ_SOURCE_TOPIC,
    header,
)
from services.processor.partition import INPUT_OFFSET_KEY
from tests.system.oracle import Oracle
from tests.system.workload import Ledger

MAX_DETAIL_ITEMS = 8
DLQ_HEADERS = (DLQ_REASON, DLQ_EXCEPTION, DLQ_SOURCE_TOPIC, DLQ_SOURCE_PARTITION, DLQ_SOURCE_OFFSET)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""

    def __str__(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'} {self.name}{': ' + self.detail if self.detail else ''}"


@dataclass
class Verdict:
    checks: list[Check] = field(default_factory=list)

    def add(self, check: Check) -> Check:
        self.checks.append(check)
        return check

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failed(self) -> list[str]:
        return [c.name for c in self.checks if not c.ok]

    def get(self, name: str) -> Check:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)

    def __str__(self) -> str:
        return "\n".join(str(c) for c in self.checks)


@dataclass(frozen=True)
class Row:
    """One observed row: where it was seen and what it carried."""

    family: str
    row_id: str | None
    digest: str
    partition: int
    offset: int


def _sha1(value: bytes | None) -> str:
    return hashlib.sha1(value or b"").hexdigest()


def rows_from_records(records: Iterable[Any]) -> list[Row]:
    """``events`` records (aiokafka ``ConsumerRecord``) as rows, in (partition, offset) order."""
    rows = [
        Row(
            family=r.key.decode("utf-8", "replace") if r.key is not None else "",
            row_id=header(r.headers, "row-id"),
            digest=_sha1(r.value),
            partition=r.partition,
            offset=r.offset,
        )
        for r in records
    ]
    return sorted(rows, key=lambda r: (r.partition, r.offset))


def rows_from_watcher(lines: Iterable[Mapping[str, Any]]) -> list[Row]:
    """The witness's lines (``tests.system.watcher``) as rows, in the order it saw them per partition."""
    rows = [
        Row(family=line["k"] or "", row_id=line["id"], digest=line["h"], partition=line["p"], offset=line["o"])
        for line in lines
        if "p" in line
    ]
    return sorted(rows, key=lambda r: (r.partition, r.offset))


def sample(items: Iterable[Any]) -> str:
    items = list(items)
    shown = ", ".join(str(i) for i in items[:MAX_DETAIL_ITEMS])
    return f"{shown}{', ...' if len(items) > MAX_DETAIL_ITEMS else ''} ({len(items)} in all)"


def check_rows(oracle: Oracle, rows: Sequence[Row], *, prefix: str = "") -> list[Check]:
    """V1, V2 and V3 for one view of the events topic (the final read, or the witness)."""
    ids = Counter(r.row_id for r in rows)
    expected_ids = set(oracle.row_family)
    missing = sorted(expected_ids - set(ids))
    duplicated = sorted((i for i, n in ids.items() if n > 1), key=str)
    v1 = Check(
        f"{prefix}V1 no row missing",
        not missing,
        f"{len(rows)} rows seen, {len(expected_ids)} expected; missing: {sample(missing)}"
        if missing
        else f"{len(expected_ids)} expected rows all present",
    )
    v2 = Check(
        f"{prefix}V2 no row duplicated",
        not duplicated,
        f"duplicated row ids: {sample(f'{i} x{ids[i]}' for i in duplicated)}"
        if duplicated
        else f"{len(ids)} distinct row ids",
    )
    observed: dict[str, list[tuple[str | None, str]]] = defaultdict(list)
    partitions_of: dict[str, set[int]] = defaultdict(set)
    for row in rows:
        observed[row.family].append((row.row_id, row.digest))
        partitions_of[row.family].add(row.partition)
    wrong: list[str] = []
    for family, expected in oracle.rows_by_family.items():
        want = [(row_id, _sha1(value)) for row_id, value in expected]
        got = observed.get(family, [])
        if got != want:
            wrong.append(_first_difference(family, want, got))
    unexpected = sorted(set(observed) - set(oracle.rows_by_family))
    for family in unexpected:
        wrong.append(f"{family}: {len(observed[family])} rows for a family the oracle has none for")
    split = sorted(f for f, ps in partitions_of.items() if len(ps) > 1)
    for family in split:
        wrong.append(f"{family}: rows in several events partitions {sorted(partitions_of[family])}")
    v3 = Check(
        f"{prefix}V3 rows per family equal the oracle's, in order",
        not wrong,
        sample(wrong) if wrong else f"{len(oracle.rows_by_family)} families equal",
    )
    return [v1, v2, v3]


def _first_difference(family: str, want: list[tuple[str, str]], got: list[tuple[str | None, str]]) -> str:
    for index, (w, g) in enumerate(zip(want, got, strict=False)):
        if w != g:
            what = "bytes differ" if w[0] == g[0] else f"expected {w[0]}, got {g[0]}"
            return f"{family}: row {index} {what} ({len(got)} rows, {len(want)} expected)"
    return f"{family}: {len(got)} rows, {len(want)} expected"


def check_changelog(oracle: Oracle, changelog_records: Iterable[Any]) -> Check:
    """V4: the latest changelog record per key, per partition, against the oracle's snapshot."""
    latest: dict[int, dict[str, bytes | None]] = defaultdict(dict)
    for record in sorted(changelog_records, key=lambda r: (r.partition, r.offset)):
        # The processor's copy of its committed input offset (INPUT_OFFSET_KEY) is not reducer state.
        if record.key is not None and record.key != INPUT_OFFSET_KEY:
            latest[record.partition][record.key.decode()] = record.value
    problems: list[str] = []
    for partition in range(oracle.partitions):
        have = {k: v for k, v in latest.get(partition, {}).items() if v is not None}
        want = oracle.states.get(partition, {})
        for key in sorted(set(want) | set(have)):
            if key not in have:
                problems.append(f"p{partition} {key!r}: missing in changelog")
            elif key not in want:
                problems.append(f"p{partition} {key!r}: in changelog, not in the oracle's state")
            elif have[key] != want[key]:
                problems.append(f"p{partition} {key!r}: value differs")
    keys = sum(len(s) for s in oracle.states.values())
    return Check(
        "V4 latest changelog state equals the oracle's final state",
        not problems,
        sample(problems) if problems else f"{keys} keys over {oracle.partitions} partitions equal",
    )


def check_processor_offsets(committed: Mapping[int, int | None], facts_end: Mapping[int, int], oracle: Oracle) -> Check:
    """V5 (reducer group): committed == facts end offset (== the oracle's last fact + 1) everywhere."""
    problems = [
        f"p{p}: committed {committed.get(p)}, end {end}"
        for p, end in sorted(facts_end.items())
        if committed.get(p) != end or oracle.facts_end.get(p, 0) != end
    ]
    return Check(
        "V5 reducer committed offsets equal end offsets",
        not problems,
        sample(problems) if problems else f"{len(facts_end)} partitions at {dict(sorted(facts_end.items()))}",
    )


def check_sender_offsets(committed: Mapping[int, int | None], rows: Sequence[Row]) -> Check:
    """V5 (sender group): committed offset past the last visible row of each events partition."""
    last: dict[int, int] = {}
    for row in rows:
        last[row.partition] = max(last.get(row.partition, -1), row.offset)
    problems = [
        f"p{p}: committed {committed.get(p)}, last row at {offset}"
        for p, offset in sorted(last.items())
        if (committed.get(p) or 0) <= offset
    ]
    return Check(
        "V5 sender committed offsets past the last row",
        not problems,
        sample(problems) if problems else f"{len(last)} partitions drained",
    )


def check_open_transactions(ends: Mapping[str, tuple[Mapping[int, int], Mapping[int, int]]], waited_s: float) -> Check:
    """V6: ``ends[topic] = (read_committed ends, read_uncommitted ends)``."""
    problems = [
        f"{topic} p{p}: stable {committed.get(p)} < end {end}"
        for topic, (committed, uncommitted) in ends.items()
        for p, end in sorted(uncommitted.items())
        if committed.get(p) != end
    ]
    return Check(
        "V6 no transaction left open",
        not problems,
        sample(problems) if problems else f"stable == end on {len(ends)} topics (after {waited_s:.1f} s)",
    )


def check_ledger(ledger: Ledger, facts_records: Iterable[Any]) -> Check:
    """L: the facts topic holds exactly the ledger's records (digest multiset)."""
    seen = Counter(_sha1(r.value) for r in facts_records)
    missing = ledger.digests - seen
    extra = seen - ledger.digests
    ok = not missing and not extra
    detail = (
        f"{sum(seen.values())} records == ledger ({ledger.sent} generated, {ledger.broadcasts} broadcast)"
        if ok
        else f"{sum(missing.values())} ledger records missing, {sum(extra.values())} unexpected on the facts topic"
    )
    return Check("L facts topic equals the generator's ledger", ok, detail)


def check_dead_letters(
    oracle: Oracle, dlq_records: Iterable[Any], *, facts_topic: str, ledger: Ledger | None = None
) -> Check:
    """D: DLQ == expected dead letters (once each, right reason, all headers); poison count == ledger."""
    problems: list[str] = []
    seen: Counter[tuple[int, int]] = Counter()
    reasons: Counter[str] = Counter()
    records = list(dlq_records)
    for record in records:
        headers = {name: header(record.headers, name) for name in DLQ_HEADERS}
        absent = [name for name, value in headers.items() if not value]
        if absent:
            problems.append(f"dlq offset {record.partition}/{record.offset}: headers missing {absent}")
            continue
        if headers["dlq.source.topic"] != facts_topic:
            problems.append(f"dlq {record.offset}: source topic {headers['dlq.source.topic']}")
        source = (int(headers["dlq.source.partition"] or -1), int(headers["dlq.source.offset"] or -1))
        seen[source] += 1
        reason = headers["dlq.reason"] or ""
        reasons[reason] += 1
        want = oracle.dead_letters.get(source)
        if want is None:
            problems.append(f"dead letter for {source} ({reason}) the oracle does not expect")
        elif want != reason:
            problems.append(f"dead letter for {source}: reason {reason}, expected {want}")
        original = oracle.dead_letter_values.get(source)
        if original is not None:
            problem = dead_letter_value_problem(record, original)
            if problem:
                problems.append(f"dead letter for {source}: {problem}")
        if record.partition != source[0]:
            problems.append(f"dead letter for {source} in dlq partition {record.partition}")
    duplicates = [s for s, n in seen.items() if n > 1]
    missing = [s for s in oracle.dead_letters if s not in seen]
    if duplicates:
        problems.append(f"duplicated dead letters: {sample(duplicates)}")
    if missing:
        problems.append(f"expected dead letters missing: {sample(missing)}")
    if ledger is not None:
        for reason, count in ledger.poison.items():
            if reasons.get(reason, 0) != count:
                problems.append(f"ledger sent {count} {reason} poison facts, dlq holds {reasons.get(reason, 0)}")
    return Check(
        "D dead letters equal the expected set, once each, with headers",
        not problems,
        sample(problems) if problems else f"{len(records)} dead letters {dict(reasons)}",
    )


def dead_letter_value_problem(record: Any, original: bytes) -> str | None:
    """The value must be the fact's bytes; a value cut for size must say so (``dlq.value.size`` and
    ``dlq.value.sha256`` of the original) and be a prefix of it."""
    value = record.value or b""
    size = header(record.headers, "dlq.value.size")
    if size is None:
        return None if value == original else f"value ({len(value)} B) is not the fact's bytes ({len(original)} B)"
    digest = header(record.headers, "dlq.value.sha256")
    if int(size) != len(original) or digest != hashlib.sha256(original).hexdigest():
        return f"cut value's size/digest headers ({size}, {digest}) do not describe the fact"
    if not original.startswith(value):
        return "cut value is not a prefix of the fact's bytes"
    return None


def check_lag(drain_s: float | None, limit_s: float = 60.0) -> Check:
    """V8: ``drain_s`` = seconds from the last fault (and last publish) until lag 0 (``None``: never)."""
    ok = drain_s is not None and drain_s <= limit_s
    detail = "lag never reached 0" if drain_s is None else f"lag 0 after {drain_s:.1f} s (limit {limit_s:.0f} s)"
    return Check("V8 lag reached 0 within 60 s after the last fault", ok, detail)
