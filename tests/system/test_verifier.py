"""Negative controls of every check (no broker needed): a check that cannot fail proves nothing.

Each control feeds a check a crafted violation and asserts that this check -- and, where the checks
share their input, only this one -- fails, next to the unbroken input that passes. ``@controls`` names
the checks a test is the negative control of, and ``test_every_check_has_a_negative_control`` finds
every check id the suite's modules build (``Check("<id> ...")``) and requires a control for each. The
end-to-end controls on a deliberately broken processor build are in ``test_crash_points.py`` (V1, V2).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import msgspec

from schemas.headers import DLQ_HTTP_RESPONSE, DLQ_HTTP_STATUS, ROW_ID_HEADER
from tests.system.delivery import check_delivery, check_refusals, check_retry_behaviour
from tests.system.history import History
from tests.system.hostile import CLASSES, REDUCED, HostileFact
from tests.system.oracle import Oracle
from tests.system.procs import Processes
from tests.system.test_hostile_input import (
    check_hostile_outcomes,
    check_no_stall,
    check_normal_traffic_untouched,
    check_rss,
)
from tests.system.verifier import (
    Check,
    Row,
    _sha1,
    check_changelog,
    check_dead_letters,
    check_lag,
    check_ledger,
    check_open_transactions,
    check_processor_offsets,
    check_rows,
    check_sender_offsets,
    rows_from_watcher,
)
from tests.system.workload import Ledger
from tools.demo.endpoint import RecordedRequest

T = TypeVar("T", bound=Callable[..., Any])
CONTROLLED: dict[str, list[str]] = {}
"""check id -> the tests here that are its negative control (filled by :func:`controls`)."""


def controls(*check_ids: str) -> Callable[[T], T]:
    """Mark a test as the negative control of ``check_ids`` (see the module docstring)."""

    def mark(test: T) -> T:
        for check_id in check_ids:
            CONTROLLED.setdefault(check_id, []).append(test.__name__)
        return test

    return mark


def oracle_with_rows() -> Oracle:
    oracle = Oracle(facts_topic="f", partitions=1)
    oracle.rows_by_family = {"a": [("f-0-1-0", b"r1"), ("f-0-2-0", b"r2")], "b": [("f-0-3-0", b"r3")]}
    oracle.row_family = {"f-0-1-0": "a", "f-0-2-0": "a", "f-0-3-0": "b"}
    return oracle


def rows(*spec: tuple[str, str, bytes]) -> list[Row]:
    return [Row(family=f, row_id=i, digest=_sha1(v), partition=0, offset=n) for n, (f, i, v) in enumerate(spec)]


GOOD = (("a", "f-0-1-0", b"r1"), ("a", "f-0-2-0", b"r2"), ("b", "f-0-3-0", b"r3"))


def failed(checks: Iterable[Check]) -> list[str]:
    return [c.name for c in checks if not c.ok]


def test_exact_rows_pass_every_row_check() -> None:
    assert failed(check_rows(oracle_with_rows(), rows(*GOOD))) == []


@controls("V1", "V3")
def test_a_missing_row_fails_v1_and_v3() -> None:
    assert failed(check_rows(oracle_with_rows(), rows(*GOOD[1:]))) == [
        "V1 no row missing",
        "V3 rows per family equal the oracle's, in order",
    ]


@controls("V2", "V3")
def test_a_duplicated_row_fails_v2_and_v3() -> None:
    assert failed(check_rows(oracle_with_rows(), rows(*GOOD, GOOD[0]))) == [
        "V2 no row duplicated",
        "V3 rows per family equal the oracle's, in order",
    ]


@controls("V3")
def test_reordered_or_altered_rows_fail_v3_only() -> None:
    reordered = rows(GOOD[1], GOOD[0], GOOD[2])
    assert failed(check_rows(oracle_with_rows(), reordered)) == ["V3 rows per family equal the oracle's, in order"]
    altered = rows(GOOD[0], ("a", "f-0-2-0", b"other"), GOOD[2])
    assert failed(check_rows(oracle_with_rows(), altered)) == ["V3 rows per family equal the oracle's, in order"]


@controls("V4")
def test_changelog_state_must_match_the_oracle_key_by_key() -> None:
    oracle = Oracle(facts_topic="f", partitions=1, states={0: {"t:a": b"A", "w:": b"1"}})

    def record(offset: int, key: str, value: bytes | None) -> SimpleNamespace:
        return SimpleNamespace(partition=0, offset=offset, key=key.encode(), value=value)

    same = [
        record(0, "t:a", b"old"),
        record(1, "t:a", b"A"),
        record(2, "w:", b"1"),
        record(3, "t:x", b"X"),
        record(4, "t:x", None),
    ]
    assert check_changelog(oracle, same).ok
    assert not check_changelog(oracle, same[:1] + same[2:]).ok  # latest value of t:a is stale
    assert not check_changelog(oracle, [*same, record(5, "t:y", b"Y")]).ok  # extra live key


@controls("V5", "V6", "V8")
def test_offsets_lag_and_open_transactions_checks_fail_when_they_should() -> None:
    oracle = Oracle(facts_topic="f", partitions=2, facts_end={0: 10, 1: 5})
    assert check_processor_offsets({0: 10, 1: 5}, {0: 10, 1: 5}, oracle).ok
    assert not check_processor_offsets({0: 10, 1: 4}, {0: 10, 1: 5}, oracle).ok
    assert not check_processor_offsets({0: 10, 1: None}, {0: 10, 1: 5}, oracle).ok
    seen = [Row("a", "x", "h", 0, 7)]
    assert check_sender_offsets({0: 8}, seen).ok
    assert not check_sender_offsets({0: 7}, seen).ok
    assert check_open_transactions({"t": ({0: 3}, {0: 3})}, 0).ok
    assert not check_open_transactions({"t": ({0: 2}, {0: 3})}, 0).ok
    assert check_lag(59.0).ok and not check_lag(61.0).ok and not check_lag(None).ok


@controls("D")
def test_dead_letters_must_be_exact_once_and_carry_their_headers() -> None:
    oracle = Oracle(facts_topic="f", partitions=1, dead_letters={(0, 4): "undecodable"})

    def letter(offset: int, reason: str = "undecodable", drop: str = "") -> SimpleNamespace:
        headers = [
            ("dlq.reason", reason.encode()),
            ("dlq.exception", b"UndecodableFact"),
            ("dlq.source.topic", b"f"),
            ("dlq.source.partition", b"0"),
            ("dlq.source.offset", str(offset).encode()),
        ]
        return SimpleNamespace(partition=0, offset=0, headers=[h for h in headers if h[0] != drop])

    assert check_dead_letters(oracle, [letter(4)], facts_topic="f").ok
    assert not check_dead_letters(oracle, [letter(4), letter(4)], facts_topic="f").ok  # duplicate
    assert not check_dead_letters(oracle, [], facts_topic="f").ok  # missing
    assert not check_dead_letters(oracle, [letter(4, "invalid")], facts_topic="f").ok  # wrong reason
    assert not check_dead_letters(oracle, [letter(4, drop="dlq.exception")], facts_topic="f").ok


@controls("X")
def test_check_no_unexpected_exit_names_a_process_that_exits_by_itself_and_excuses_a_kill(tmp_path: Path) -> None:
    """X: a process that stops by itself (here ``python -m json.tool`` on empty input, rc 1) is reported,
    as would be a clean rc 0; a process the test kills (kill -9) or stops (SIGTERM) is not, and a kill
    sent after a process already died does not excuse it."""
    history = History(tmp_path / "h.jsonl", seed=1, test="x")
    procs = Processes(history, tmp_path)
    try:
        crashes = procs.start("crashes", "json.tool", {})
        killed = procs.start("killed", "http.server", {}, args=["--bind", "127.0.0.1", "0"])
        stopped = procs.start("stopped", "http.server", {}, args=["--bind", "127.0.0.1", "0"])
        crashes.wait_exit(30)
        killed.kill9()
        stopped.terminate(30)
        crashes.kill9()  # too late: it had already exited by itself
        unexpected = procs.check_no_unexpected_exit()
    finally:
        procs.cleanup_all()
        history.close()
    assert len(unexpected) == 1, unexpected
    assert unexpected[0].startswith("crashes ") and "rc=1" in unexpected[0], unexpected


# --- V7: the witness's view ---------------------------------------------------------------------------


def witness_lines(*spec: tuple[str, str, bytes]) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = [{"pos": {"0": len(spec)}}]  # a position line, which is not a row
    lines += [{"p": 0, "o": n, "k": f, "id": i, "h": _sha1(v)} for n, (f, i, v) in enumerate(spec)]
    return lines


@controls("V7")
def test_a_row_the_witness_saw_twice_or_never_fails_v7() -> None:
    """The witness's lines go through V1-V3 under the "V7 witness: " prefix (``Run.verify``): a row it saw
    twice (visible, then visible again after an abort) and a row it never saw each fail V7."""
    prefix = "V7 witness: "
    assert failed(check_rows(oracle_with_rows(), rows_from_watcher(witness_lines(*GOOD)), prefix=prefix)) == []
    twice = rows_from_watcher(witness_lines(*GOOD, GOOD[2]))
    assert failed(check_rows(oracle_with_rows(), twice, prefix=prefix)) == [
        "V7 witness: V2 no row duplicated",
        "V7 witness: V3 rows per family equal the oracle's, in order",
    ]
    never = rows_from_watcher(witness_lines(GOOD[0], GOOD[2]))
    assert "V7 witness: V1 no row missing" in failed(check_rows(oracle_with_rows(), never, prefix=prefix))


# --- L: the ledger ------------------------------------------------------------------------------------


@controls("L")
def test_facts_topic_missing_or_adding_a_record_fails_the_ledger_check() -> None:
    """L: a record the generator sent that is not on the facts topic (lost by the publisher), one sent
    twice (a retried send), and one nobody sent each fail; the exact multiset passes."""
    ledger = Ledger(partitions=1)
    for value in (b"f1", b"f2", b"f2"):
        ledger.add_raw(value, "fact")

    def topic(*values: bytes) -> list[SimpleNamespace]:
        return [SimpleNamespace(value=v) for v in values]

    assert check_ledger(ledger, topic(b"f2", b"f1", b"f2")).ok
    assert not check_ledger(ledger, topic(b"f1", b"f2")).ok  # one copy of f2 lost
    assert not check_ledger(ledger, topic(b"f1", b"f2", b"f2", b"f1")).ok  # f1 written twice
    assert not check_ledger(ledger, topic(b"f1", b"f2", b"f2", b"f3")).ok  # f3 never generated


# --- E1-E4: what the endpoint received ----------------------------------------------------------------

ROW_A = {"event_type": "a", "event_params": {"thread_id": "t-a", "n": 1}}
ROW_B = {"event_type": "b", "event_params": {"thread_id": "t-b", "n": 2}}
ROW_C = {"event_type": "c", "event_params": {"thread_id": "t-c", "n": 3}}


def delivery_oracle(*rows: dict[str, Any]) -> Oracle:
    """An oracle whose family ``t-x`` holds the given rows, with ids ``r0``, ``r1``, ..."""
    oracle = Oracle(facts_topic="f", partitions=1)
    for n, row in enumerate(rows):
        family = row["event_params"]["thread_id"]
        oracle.rows_by_family.setdefault(family, []).append((f"r{n}", msgspec.json.encode(row)))
        oracle.row_family[f"r{n}"] = family
    return oracle


def request(
    *rows: dict[str, Any], key: str | None, status: int | None = 200, at: float = 0.0, fault: str | None = None
) -> RecordedRequest:
    return RecordedRequest(
        seq=0,
        received_at=at,
        method="POST",
        path="/",
        peer="127.0.0.1:1",
        headers={},
        events=list(rows),  # type: ignore[arg-type]
        idempotency_key=key,
        body_bytes=0,
        status=status,
        fault=fault,
    )


def dead_row(row_id: str, status: int = 400, excerpt: str = "refused") -> SimpleNamespace:
    headers = [
        (ROW_ID_HEADER, row_id.encode()),
        (DLQ_HTTP_STATUS, str(status).encode()),
        (DLQ_HTTP_RESPONSE, excerpt.encode()),
    ]
    return SimpleNamespace(headers=headers)


def delivery_failures(requests: list[RecordedRequest], dlq: list[SimpleNamespace]) -> list[str]:
    checks, _figures = check_delivery(delivery_oracle(ROW_A, ROW_B), requests, dlq)
    return [name.split(" ", 1)[0] for name in failed(checks)]


def test_every_row_accepted_once_or_dead_lettered_once_passes_e1_to_e4() -> None:
    assert delivery_failures([request(ROW_A, ROW_B, key="k1")], []) == []
    # a 503 then the same batch again under the same key: a resend, not a duplicate
    resent = [request(ROW_A, ROW_B, key="k1", status=503), request(ROW_A, ROW_B, key="k1")]
    assert delivery_failures(resent, []) == []
    # accepted twice under the same key (a timed-out accept, resent): the receiver drops the repeat
    assert delivery_failures([request(ROW_A, ROW_B, key="k1"), request(ROW_A, ROW_B, key="k1")], []) == []
    assert delivery_failures([request(ROW_A, key="k1")], [dead_row("r1")]) == []


@controls("E1")
def test_a_row_neither_accepted_nor_dead_lettered_fails_e1() -> None:
    """E1: B only ever got a 503 and was not dead-lettered (a sender that commits past a failed batch)."""
    lost = [request(ROW_A, key="k1"), request(ROW_B, key="k2", status=503)]
    assert delivery_failures(lost, []) == ["E1", "E4"]


@controls("E2")
def test_a_row_accepted_again_under_a_new_idempotency_key_fails_e2() -> None:
    """E2: the same rows accepted under two keys (a sender that re-batches a retry under a new key,
    finding F4's shape): a receiver deduplicating by key keeps both. Under the same key it is dropped."""
    assert delivery_failures([request(ROW_A, ROW_B, key="k1"), request(ROW_A, key="k2")], []) == ["E2"]


@controls("E3")
def test_a_row_the_oracle_does_not_know_fails_e3() -> None:
    """E3: an accepted row that no fact produced (a sender that sends a corrupted or foreign row)."""
    assert delivery_failures([request(ROW_A, ROW_B, ROW_C, key="k1")], []) == ["E3"]


@controls("E4")
def test_dead_letters_twice_unknown_or_also_accepted_fail_e4() -> None:
    """E4: a row dead-lettered twice, a dead letter of a row id the oracle has never made, and a row both
    dead-lettered and accepted (each counted once, the total no longer adds up)."""
    assert delivery_failures([request(ROW_A, key="k1")], [dead_row("r1"), dead_row("r1")]) == ["E4"]
    assert delivery_failures([request(ROW_A, ROW_B, key="k1")], [dead_row("r9")]) == ["E4"]
    assert "E4" in delivery_failures([request(ROW_A, ROW_B, key="k1")], [dead_row("r1")])


# --- R1-R3: how the sender retried ----------------------------------------------------------------------


def retry_failures(requests: list[RecordedRequest], *, kills: Iterable[float] = (), outage: Any = None) -> list[str]:
    checks, _figures = check_retry_behaviour(
        requests,
        retry_after_by_fault={"unavailable": 2.0, "throttle": 1.0},
        interruptions=kills,
        request_timeout_s=2.0,
        backoff_cap_s=2.0,
        outage=outage,
    )
    return [name.split(" ", 1)[0] for name in failed(checks)]


@controls("R1")
def test_a_batch_sent_again_before_its_retry_after_fails_r1() -> None:
    """R1: 503 with Retry-After 2 s, the same batch again 0.5 s later; at 2.1 s it passes, and so does an
    early resend by a new owner after a sender kill in between (it cannot know the old wait)."""
    early = [request(ROW_A, key="k", status=503, fault="unavailable", at=10.0), request(ROW_A, key="k", at=10.5)]
    assert retry_failures(early) == ["R1"]
    assert retry_failures(early, kills=[10.2]) == []
    waited = [request(ROW_A, key="k", status=503, fault="unavailable", at=10.0), request(ROW_A, key="k", at=12.1)]
    assert retry_failures(waited) == []


@controls("R2")
def test_a_retry_later_than_timeout_plus_backoff_cap_fails_r2() -> None:
    """R2: after a 500 (no Retry-After) the batch must come again within request timeout + backoff cap
    (+1 s): 2 + 2 + 1 = 5 s. 6 s later fails (an uncapped backoff); 4 s later passes."""
    slow = [request(ROW_A, key="k", status=500, at=0.0), request(ROW_A, key="k", at=6.0)]
    assert retry_failures(slow) == ["R2"]
    assert retry_failures([request(ROW_A, key="k", status=500, at=0.0), request(ROW_A, key="k", at=4.0)]) == []


@controls("R3")
def test_more_requests_than_retry_after_allows_during_an_outage_fails_r3() -> None:
    """R3: a 10 s outage with Retry-After 2 s allows 1.5 x (10 / 2 + 1) = 9 requests per batch; a sender
    hammering every 0.5 s (21 requests) fails, one that waits 2 s (6 requests) passes. R1 is left out of
    this input: each request is a 503 without the "unavailable" fault mark."""

    def hammer(every_s: float) -> list[RecordedRequest]:
        return [request(ROW_A, key="k", status=503, at=n * every_s) for n in range(int(10 / every_s) + 1)]

    assert retry_failures(hammer(0.5), outage=(0.0, 10.0)) == ["R3"]
    assert retry_failures(hammer(2.0), outage=(0.0, 10.0)) == []


# --- P1-P3: permanent refusals ----------------------------------------------------------------------------

REFUSED = {"t-a": 400, "t-c": 413}
"""Thread A's rows are answered 400, thread C's 413; thread B's are accepted."""


def refusal_failures(requests: list[RecordedRequest], dlq: list[SimpleNamespace]) -> list[str]:
    checks = check_refusals(delivery_oracle(ROW_A, ROW_B, ROW_C), requests, dlq, REFUSED)
    return [name.split(" ", 1)[0] for name in failed(checks)]


def refusal_log(a_tries: int = 2) -> list[RecordedRequest]:
    """A refused twice (400), then B and C split after a multi-row 413 until C travels alone."""
    log = [request(ROW_A, key="ka", status=400) for _ in range(a_tries)]
    return [
        *log,
        request(ROW_B, ROW_C, key="kbc", status=413),
        request(ROW_B, key="kb"),
        request(ROW_C, key="kc", status=413),
    ]


GOOD_REFUSAL_DLQ = [dead_row("r0", 400), dead_row("r2", 413)]


def test_refusals_dead_lettered_retried_once_and_split_pass_p1_to_p3() -> None:
    assert refusal_failures(refusal_log(), GOOD_REFUSAL_DLQ) == []


@controls("P1")
def test_a_refused_row_missing_from_the_dlq_or_without_status_or_an_extra_dead_letter_fails_p1() -> None:
    assert refusal_failures(refusal_log(), GOOD_REFUSAL_DLQ[1:]) == ["P1"]  # A not dead-lettered
    assert refusal_failures(refusal_log(), [dead_row("r0", 422), GOOD_REFUSAL_DLQ[1]]) == ["P1"]  # wrong status
    assert refusal_failures(refusal_log(), [dead_row("r0", 400, excerpt=""), GOOD_REFUSAL_DLQ[1]]) == ["P1"]
    assert refusal_failures(refusal_log(), [*GOOD_REFUSAL_DLQ, dead_row("r1", 400)]) == ["P1"]  # B accepted


@controls("P2")
def test_a_refused_batch_sent_three_times_fails_p2() -> None:
    assert refusal_failures(refusal_log(a_tries=3), GOOD_REFUSAL_DLQ) == ["P2"]


@controls("P3")
def test_a_413_row_never_sent_alone_fails_p3() -> None:
    """P3: C dead-lettered straight after the multi-row 413 (no split), or no multi-row 413 at all."""
    unsplit = refusal_log()[:-1]
    assert refusal_failures(unsplit, GOOD_REFUSAL_DLQ) == ["P3"]
    never_multi = [*refusal_log()[:2], request(ROW_B, key="kb"), request(ROW_C, key="kc", status=413)]
    assert refusal_failures(never_multi, GOOD_REFUSAL_DLQ) == ["P3"]


# --- H1-H4: the hostile-input test's checks -----------------------------------------------------------------


def every_class_as_required() -> tuple[
    list[tuple[HostileFact, tuple[int, int]]], dict[tuple[int, int], str], Counter[str]
]:
    """One fact per required outcome of every hostile class, each ending that way; every drop counted."""
    where: list[tuple[HostileFact, tuple[int, int]]] = []
    dlq: dict[tuple[int, int], str] = {}
    for cls in CLASSES.values():
        for outcome in sorted(cls.required or cls.outcomes):
            position = (0, len(where))
            where.append((HostileFact(cls.name, None, b""), position))
            if outcome != REDUCED:
                dlq[position] = outcome
    return where, dlq, Counter(cls.drop for cls in CLASSES.values() if cls.drop)


@controls("H1")
def test_a_hostile_fact_with_an_outcome_its_class_forbids_or_a_drop_never_counted_fails_h1() -> None:
    where, dlq, drops = every_class_as_required()
    assert check_hostile_outcomes(where, dlq, drops)[0].ok
    refused = next(p for p, outcome in dlq.items() if outcome != REDUCED)
    cls = next(f.cls for f, p in where if p == refused)
    assert REDUCED not in CLASSES[cls].outcomes
    reduced = {p: o for p, o in dlq.items() if p != refused}  # reduced instead of dead-lettered
    assert not check_hostile_outcomes(where, reduced, drops)[0].ok
    a_drop = next(iter(drops))
    assert not check_hostile_outcomes(where, dlq, Counter({d: 1 for d in drops if d != a_drop}))[0].ok


@controls("H2")
def test_a_normal_fact_dead_lettered_or_a_normal_row_missing_fails_h2() -> None:
    clean = oracle_with_rows()
    assert check_normal_traffic_untouched(clean, rows(*GOOD), {}, {(0, 1)}).ok
    assert not check_normal_traffic_untouched(clean, rows(*GOOD), {(0, 1): "invalid"}, {(0, 1)}).ok
    assert not check_normal_traffic_untouched(clean, rows(*GOOD[:2]), {}, {(0, 1)}).ok


@controls("H3")
def test_a_partition_without_a_commit_for_longer_than_the_bound_or_a_stall_log_fails_h3() -> None:
    commits = [{"t": t, "partition": 0} for t in (1.0, 2.0, 3.0)] + [{"t": t, "partition": 1} for t in (1.0, 2.5)]
    assert check_no_stall(commits, 0.0, 10.0, 5.0, [])[0].ok
    gap = [*commits, {"t": 9.0, "partition": 1}]  # partition 1: 6.5 s without a commit
    assert not check_no_stall(gap, 0.0, 10.0, 5.0, [])[0].ok
    assert not check_no_stall(commits, 0.0, 10.0, 5.0, [{"event": "partition_stalled", "partition": 0}])[0].ok


@controls("H4")
def test_a_reducer_over_its_memory_budget_or_no_sample_at_all_fails_h4() -> None:
    assert check_rss({"reducer-1": 100 * 1024, "reducer-2": 200 * 1024}, 256).ok
    assert not check_rss({"reducer-1": 100 * 1024, "reducer-2": 300 * 1024}, 256).ok
    assert not check_rss({}, 256).ok  # nothing sampled proves nothing


# --- the meta-test ---------------------------------------------------------------------------------------

CHECK_SOURCES = sorted(Path(__file__).parent.glob("*.py"))
CHECK_ID = re.compile(r'Check\(\s*f?"(?:\{prefix\})?([A-Z]\d*) |prefix="([A-Z]\d*) ')


def check_ids_built_by_the_suite() -> dict[str, set[str]]:
    """Every ``<id>`` of a ``Check("<id> ...")`` (or a ``prefix="<id> ..."``) in tests/system, by module."""
    found: dict[str, set[str]] = {}
    for path in CHECK_SOURCES:
        if path.name == Path(__file__).name:
            continue
        for match in CHECK_ID.finditer(path.read_text()):
            found.setdefault(match.group(1) or match.group(2), set()).add(path.name)
    return found


def test_every_check_has_a_negative_control() -> None:
    """Every check id the suite builds (V1-V8, L, D, X, E1-E4, R1-R3, P1-P3, H1-H4 today) is named by a
    ``@controls`` test here; a new check without one fails this test."""
    built = check_ids_built_by_the_suite()
    assert {"V1", "V5", "V7", "V8", "L", "D", "X", "E1", "R3", "P3", "H4"} <= set(built), built  # the scan works
    missing = {check_id: sorted(where) for check_id, where in built.items() if check_id not in CONTROLLED}
    assert not missing, f"checks without a negative control: {missing}"
    stale = sorted(set(CONTROLLED) - set(built))
    assert not stale, f"controls of checks the suite no longer builds: {stale}"
