"""Checks of what the loopback endpoint received, against the oracle (sender tests 8, 9, 10).

Rows on the wire carry no row id (the reference wire shape is kept exactly); a request carries an
``Idempotency-Key`` derived from its rows' ids. So a received row is identified by its content: every
oracle row is canonicalised (msgspec decode + encode, which keeps key order) and mapped to its row
id(s); the endpoint's parsed rows are canonicalised the same way.

- E1 no row lost: every expected row was accepted by the endpoint or dead-lettered by the sender;
- E2 no duplicate a receiver cannot drop: after dropping requests whose idempotency key was accepted
  before, no row was accepted more often than expected (a repeat under a *new* key is a duplicate; this
  is the guarantee kafka-notes §6 gives receivers, and what finding F4 breaks);
- E3 nothing unexpected: every accepted row is an oracle row;
- E4 delivered + dead-lettered == total with rows deduplicated by identity (the issue's "after
  de-duplication by row id"), each dead letter once, no row both dead-lettered and accepted;
- R1 Retry-After honoured: a batch answered with ``Retry-After: R`` is not sent again within R s;
- R2 backoff capped: a batch that failed without Retry-After is sent again within
  request timeout + backoff cap (+1 s of scheduling slack);
- R3 no retry storm: while the endpoint is down, requests stay within what R1 allows (x1.5);
- P1 rows the endpoint refused (400/422/413 for their thread) are in the sender's dead-letter topic with
  the status and a response excerpt, and nothing else is;
- P2 a refused (400/422) batch is sent at most twice;
- P3 a 413 splits batches until each refused row travels alone (and a multi-row 413 happened).

R1/R2 skip pairs of attempts with a sender interruption in between (a kill, or a rebalance that moved
the partition: the new owner does not know the old one's wait).
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec

from schemas.headers import DLQ_HTTP_RESPONSE, DLQ_HTTP_STATUS, ROW_ID_HEADER, header
from tests.system.oracle import Oracle
from tests.system.verifier import Check, sample

_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


def canonical(row: Any) -> bytes:
    """A row (bytes as on Kafka, or the endpoint's parsed object) as canonical JSON bytes."""
    if isinstance(row, bytes | bytearray | memoryview):
        row = _decoder.decode(row)
    return _encoder.encode(row)


def expected_contents(oracle: Oracle) -> tuple[Counter[bytes], dict[str, bytes]]:
    """(multiset of canonical rows, row id -> canonical row)."""
    by_id = {row_id: canonical(value) for rows in oracle.rows_by_family.values() for row_id, value in rows}
    return Counter(by_id.values()), by_id


def check_delivery(
    oracle: Oracle, requests: Sequence[Any], sender_dlq: Sequence[Any]
) -> tuple[list[Check], dict[str, int]]:
    """E1-E4; returns the checks and figures (accepted, repeats dropped by key, dead-lettered...)."""
    expected, by_id = expected_contents(oracle)
    raw: Counter[bytes] = Counter()
    by_key: Counter[bytes] = Counter()
    seen_keys: set[str] = set()
    repeats_dropped = 0
    for request in requests:
        if not request.accepted:
            continue
        rows = [canonical(event) for event in request.events]
        raw.update(rows)
        key = request.idempotency_key
        if key is not None and key in seen_keys:
            repeats_dropped += len(rows)
            continue
        if key is not None:
            seen_keys.add(key)
        by_key.update(rows)
    dead_ids = Counter(header(record.headers, "row-id") for record in sender_dlq)
    dead: Counter[bytes] = Counter(by_id[i] for i in dead_ids if i in by_id)
    unknown_dead = [i for i in dead_ids if i not in by_id]
    lost = [c for c, n in expected.items() if raw[c] + dead[c] < n]
    dup = [c for c, n in by_key.items() if n + dead[c] > expected.get(c, 0) and c in expected]
    unexpected = [c for c in raw if c not in expected]
    twice_dead = [i for i, n in dead_ids.items() if n > 1]
    # E4 with rows identified by content (a row id, for a receiver that could see it): each expected row
    # counted once whether accepted once or more, dead letters once each, none both dead and accepted.
    delivered = sum(min(raw[c], n - dead[c]) for c, n in expected.items())
    both = [c for c, n in expected.items() if dead[c] and raw[c] > n - dead[c]]
    total_ok = (
        not unknown_dead and not twice_dead and not both and delivered + sum(dead.values()) == sum(expected.values())
    )
    checks = [
        Check(
            "E1 no row lost at the endpoint",
            not lost,
            f"{len(lost)} rows neither accepted nor dead-lettered, e.g. {sample(c[:120] for c in lost)}"
            if lost
            else f"{sum(expected.values())} rows accepted or dead-lettered",
        ),
        Check(
            "E2 no duplicate left after dropping repeated idempotency keys",
            not dup,
            f"{len(dup)} rows accepted again under another key: {sample(c[:120] for c in dup)}"
            if dup
            else f"{repeats_dropped} repeated rows dropped by key, none left over",
        ),
        Check(
            "E3 nothing unexpected accepted",
            not unexpected,
            sample(c[:120] for c in unexpected) if unexpected else "every accepted row is an oracle row",
        ),
        Check(
            "E4 delivered + dead-lettered == total, each dead letter once",
            total_ok,
            f"delivered {delivered} + dead-lettered {sum(dead.values())} vs {sum(expected.values())}; dead letters "
            f"twice: {len(twice_dead)}; of unknown rows: {len(unknown_dead)}; rows both dead and accepted: {len(both)}",
        ),
    ]
    figures = {
        "endpoint_requests": len(requests),
        "endpoint_accepted_rows": sum(raw.values()),
        "endpoint_repeats_dropped_by_key": repeats_dropped,
        "endpoint_unique_rows": sum(by_key.values()),
        "sender_dead_lettered": sum(dead_ids.values()),
    }
    return checks, figures


def check_retry_behaviour(
    requests: Sequence[Any],
    *,
    retry_after_by_fault: dict[str, float],
    interruptions: Iterable[float],
    request_timeout_s: float,
    backoff_cap_s: float,
    outage: tuple[float, float] | None = None,
) -> tuple[list[Check], dict[str, float]]:
    """R1-R3 from the endpoint's record. Times are unix times (``received_at``), as are ``interruptions``.

    ``interruptions``: unix times of sender kills and revocations. ``retry_after_by_fault``: the
    Retry-After (s) the endpoint sent with each fault kind, e.g.
    ``{"unavailable": 2.0, "throttle": 1.0}``.
    """
    kill_times = sorted(interruptions)
    attempts: dict[str, list[Any]] = defaultdict(list)
    for request in requests:
        if request.idempotency_key:
            attempts[request.idempotency_key].append(request)
    early: list[str] = []
    late: list[str] = []
    shortest_wait = float("inf")
    longest_backoff = 0.0
    for key, tries in attempts.items():
        tries.sort(key=lambda r: r.received_at)
        for a, b in itertools.pairwise(tries):
            if any(a.received_at < k < b.received_at for k in kill_times):
                continue
            gap = b.received_at - a.received_at
            if a.fault in retry_after_by_fault:
                wait = retry_after_by_fault[a.fault]
                shortest_wait = min(shortest_wait, gap)
                if gap < wait - 0.3:
                    early.append(f"{key[:12]} {a.fault}: again after {gap:.2f} s < {wait} s")
            elif a.status is None or a.status >= 500 or a.fault == "stall":
                longest_backoff = max(longest_backoff, gap)
                if gap > request_timeout_s + backoff_cap_s + 1.0:
                    late.append(f"{key[:12]} {a.fault or a.status}: again after {gap:.2f} s")
    checks = [
        Check(
            "R1 Retry-After honoured",
            not early,
            sample(early) if early else f"shortest wait after a Retry-After: {shortest_wait:.2f} s",
        ),
        Check(
            "R2 backoff capped",
            not late,
            sample(late)
            if late
            else f"longest wait after a failure: {longest_backoff:.2f} s "
            f"(limit {request_timeout_s + backoff_cap_s + 1.0:.1f} s)",
        ),
    ]
    figures: dict[str, float] = {"longest_backoff_s": round(longest_backoff, 2)}
    if outage is not None:
        start, end = outage
        during = [r for r in requests if start <= r.received_at <= end]
        keys = {r.idempotency_key for r in during}
        wait = retry_after_by_fault.get("unavailable", 1.0)
        allowed = 1.5 * len(keys) * ((end - start) / wait + 1)
        figures["outage_requests"] = len(during)
        figures["outage_requests_per_s"] = round(len(during) / max(end - start, 1e-9), 2)
        checks.append(
            Check(
                "R3 no retry storm during the outage",
                len(during) <= allowed,
                f"{len(during)} requests for {len(keys)} batches in {end - start:.0f} s (allowed {allowed:.0f})",
            )
        )
    return checks, figures


def check_refusals(
    oracle: Oracle, requests: Sequence[Any], sender_dlq: Sequence[Any], refused: Mapping[str, int]
) -> list[Check]:
    """P1-P3. ``refused``: thread id -> the status the endpoint answers any request holding its rows."""
    must_refuse: dict[str, int] = {}
    for rows in oracle.rows_by_family.values():
        for row_id, value in rows:
            thread = (_decoder.decode(value).get("event_params") or {}).get("thread_id")
            if thread in refused:
                must_refuse[row_id] = refused[thread]
    problems: list[str] = []
    dead = {header(r.headers, ROW_ID_HEADER): r for r in sender_dlq}
    for row_id, status in must_refuse.items():
        record = dead.get(row_id)
        if record is None:
            problems.append(f"{row_id}: refused with {status} but not dead-lettered")
            continue
        got = header(record.headers, DLQ_HTTP_STATUS)
        if got != str(status):
            problems.append(f"{row_id}: dead letter status {got}, expected {status}")
        if not header(record.headers, DLQ_HTTP_RESPONSE):
            problems.append(f"{row_id}: dead letter has no response excerpt")
    extra = sorted(set(dead) - set(must_refuse), key=str)
    if extra:
        problems.append(f"dead-lettered rows nobody refused: {extra[:5]}")
    attempts = Counter(r.idempotency_key for r in requests if r.status in (400, 422))
    retried = {k: n for k, n in attempts.items() if n > 2}
    canon = {row_id: canonical(value) for rows in oracle.rows_by_family.values() for row_id, value in rows}
    alone_413 = {canonical(r.events[0]) for r in requests if r.status == 413 and len(r.events) == 1}
    not_split = [i for i, s in must_refuse.items() if s == 413 and canon[i] not in alone_413]
    multi_413 = sum(1 for r in requests if r.status == 413 and len(r.events) > 1)
    return [
        Check(
            "P1 refused rows dead-lettered with status and excerpt, nothing else",
            not problems,
            sample(problems) if problems else f"{len(must_refuse)} rows ({dict(Counter(must_refuse.values()))})",
        ),
        Check(
            "P2 a refused batch is retried at most once",
            not retried,
            f"{len(retried)} keys sent more than twice"
            if retried
            else f"{len(attempts)} refused batches, at most 2 tries each",
        ),
        Check(
            "P3 a 413 splits the batch down to single rows",
            not not_split and multi_413 > 0,
            f"{len(not_split)} rows of C never sent alone; {multi_413} multi-row 413 answers",
        ),
    ]
