"""The verifier's own checks catch what they claim to (no broker needed): a check that cannot fail
proves nothing. The end-to-end negative controls are in ``test_crash_points.py``."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from tests.system.history import History
from tests.system.oracle import Oracle
from tests.system.procs import Processes
from tests.system.verifier import (
    Row,
    _sha1,
    check_changelog,
    check_dead_letters,
    check_lag,
    check_open_transactions,
    check_processor_offsets,
    check_rows,
    check_sender_offsets,
)


def oracle_with_rows() -> Oracle:
    oracle = Oracle(facts_topic="f", partitions=1)
    oracle.rows_by_family = {"a": [("f-0-1-0", b"r1"), ("f-0-2-0", b"r2")], "b": [("f-0-3-0", b"r3")]}
    oracle.row_family = {"f-0-1-0": "a", "f-0-2-0": "a", "f-0-3-0": "b"}
    return oracle


def rows(*spec: tuple[str, str, bytes]) -> list[Row]:
    return [Row(family=f, row_id=i, digest=_sha1(v), partition=0, offset=n) for n, (f, i, v) in enumerate(spec)]


GOOD = (("a", "f-0-1-0", b"r1"), ("a", "f-0-2-0", b"r2"), ("b", "f-0-3-0", b"r3"))


def failed(checks: list) -> list[str]:
    return [c.name for c in checks if not c.ok]


def test_exact_rows_pass_every_row_check() -> None:
    assert failed(check_rows(oracle_with_rows(), rows(*GOOD))) == []


def test_a_missing_row_fails_v1_and_v3() -> None:
    assert failed(check_rows(oracle_with_rows(), rows(*GOOD[1:]))) == [
        "V1 no row missing",
        "V3 rows per family equal the oracle's, in order",
    ]


def test_a_duplicated_row_fails_v2_and_v3() -> None:
    assert failed(check_rows(oracle_with_rows(), rows(*GOOD, GOOD[0]))) == [
        "V2 no row duplicated",
        "V3 rows per family equal the oracle's, in order",
    ]


def test_reordered_or_altered_rows_fail_v3_only() -> None:
    reordered = rows(GOOD[1], GOOD[0], GOOD[2])
    assert failed(check_rows(oracle_with_rows(), reordered)) == ["V3 rows per family equal the oracle's, in order"]
    altered = rows(GOOD[0], ("a", "f-0-2-0", b"other"), GOOD[2])
    assert failed(check_rows(oracle_with_rows(), altered)) == ["V3 rows per family equal the oracle's, in order"]


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
