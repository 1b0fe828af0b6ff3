"""``services.replay``: the offline CLI gives exactly the rows ``reduce`` gives, and reports bad lines."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

import reducer.boundary
from reducer import initial_state, reduce
from schemas.codec import decode_fact, encode_row
from schemas.facts import FactEnvelope
from schemas.state import PartitionState
from services.replay import main, replay
from tools.demo.generator import Workload, write_jsonl

REPO = Path(__file__).parents[2]
SAMPLE = REPO / "tools" / "demo" / "sample_facts.jsonl"


def _expected_rows(lines: list[bytes]) -> bytes:
    """Rows of reducing the decodable lines directly, as JSON lines."""
    state = initial_state()
    out: list[bytes] = []
    for line in lines:
        try:
            envelope = decode_fact(line)
        except ValueError:
            continue
        state, rows = reduce(state, envelope)
        out.extend(encode_row(row) + b"\n" for row in rows)
    return b"".join(out)


@pytest.fixture
def malformed(tmp_path: Path) -> Path:
    """Sample facts with a garbage line 3, a wrong field type on line 6, a blank line 8 and a v2 fact on line 10."""
    lines = SAMPLE.read_bytes().splitlines()[:40]
    lines.insert(2, b"\xffnot json at all")
    lines.insert(
        5,
        b'{"v":1,"producer":"p","thread_id":"t","observed_at_ms":1,"fact":{"kind":"server_request_aborted",'
        b'"completed_at_ms":"soon","request_id":1}}',
    )
    lines.insert(7, b"")
    lines.insert(9, b'{"v":2,"producer":"p","thread_id":"t","shape":"new"}')
    path = tmp_path / "malformed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_replay_of_the_bundled_sample_writes_exactly_the_rows_of_reduce(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "rows.jsonl"

    assert main([str(SAMPLE), "--out", str(out)]) == 0

    expected = _expected_rows(SAMPLE.read_bytes().splitlines())
    assert expected, "the sample produces rows"
    assert out.read_bytes() == expected
    err = capsys.readouterr().err
    facts = len(SAMPLE.read_bytes().splitlines())
    assert f"{facts} facts" in err
    assert "codex_review_event" in err and "errors by reason: none" in err


def test_malformed_lines_are_reported_with_line_number_and_reason_and_skipped(
    malformed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "rows.jsonl"

    assert main([str(malformed), "--out", str(out)]) == 0

    err = capsys.readouterr().err
    reports = [line for line in err.splitlines() if line.startswith("line ")]
    assert [report.split(":")[0:2] for report in reports] == [
        ["line 3", " undecodable"],
        ["line 6", " invalid"],
        ["line 10", " unsupported_version"],
    ]
    assert "$.fact.completed_at_ms" in reports[1], "msgspec's path of the bad field is in the message"
    assert out.read_bytes() == _expected_rows(malformed.read_bytes().splitlines())
    assert "invalid" in err and "undecodable" in err and "3 errors" in err


def test_strict_mode_exits_1_when_a_line_was_reported(malformed: Path, tmp_path: Path) -> None:
    assert main([str(malformed), "--out", str(tmp_path / "rows.jsonl"), "--strict", "--quiet"]) == 1
    assert main([str(SAMPLE), "--out", str(tmp_path / "rows.jsonl"), "--strict", "--quiet"]) == 0


@pytest.mark.pure_python  # monkeypatches a module attribute that compiled code does not look up
def test_a_fact_the_reducer_raises_on_is_reported_as_a_reducer_error_and_replay_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines = SAMPLE.read_bytes().splitlines()[:10]

    def exploding_reduce(state: PartitionState, envelope: FactEnvelope) -> object:
        if envelope.observed_at_ms == decode_fact(lines[4]).observed_at_ms:
            raise RuntimeError("boom")
        return reduce(state, envelope)

    monkeypatch.setattr(reducer.boundary, "reduce", exploding_reduce)
    err = io.StringIO()

    stats = replay(lines, io.BytesIO(), err=err)

    assert err.getvalue() == "line 5: reducer_error: RuntimeError: boom\n"
    assert stats.errors_by_reason == {"reducer_error": 1}
    assert stats.facts == 9


def test_lines_that_crashed_replay_before_are_reported_and_replay_goes_on() -> None:
    """JSON nested past any recursion limit, an integer no changelog can hold, valid JSON that is not a fact."""
    good = SAMPLE.read_bytes().splitlines()[:10]
    hostile = [
        b"[" * 200_000 + b"]" * 200_000,
        b'{"v":1,"producer":"p","thread_id":"t","observed_at_ms":'
        + str(2**70).encode()
        + b',"fact":{"kind":"server_request_aborted","completed_at_ms":1,"request_id":1}}',
        b"[]",
        b"null",
    ]
    err = io.StringIO()

    stats = replay([*good[:5], *hostile, *good[5:]], io.BytesIO(), err=err)

    reported = [line.split(":")[0] for line in err.getvalue().splitlines()]
    assert reported == ["line 6", "line 7", "line 8", "line 9"]
    assert stats.facts == 10 and stats.errors == 4


def test_summary_counts_rows_by_type_errors_and_reducer_drops() -> None:
    lines = [fact.value for fact in Workload(5, 40).facts()]

    stats = replay(lines, io.BytesIO(), err=io.StringIO())

    state = initial_state()
    for line in lines:
        state, _ = reduce(state, decode_fact(line))
    assert stats.lines == stats.facts == len(lines)
    assert stats.rows == sum(stats.rows_by_type.values()) > 0
    assert stats.drops == state.drops and stats.drops, "the generator's unknown answers show up as drops"
    summary = stats.summary()
    for reason in stats.drops:
        assert reason in summary


def test_progress_lines_go_to_stderr_only_when_asked() -> None:
    lines = [fact.value for fact in Workload(5, 400).facts()]
    quiet, loud = io.StringIO(), io.StringIO()

    replay(lines, io.BytesIO(), err=quiet)
    replay(lines, io.BytesIO(), err=loud, progress=True, progress_interval_s=0.0)

    assert quiet.getvalue() == ""
    assert loud.getvalue().startswith("replay: 4096 lines, ")
    assert "lines/s" in loud.getvalue()


def test_cli_as_a_module_reads_stdin_and_writes_stdout(malformed: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "services.replay", "-", "--strict"],
        input=malformed.read_bytes(),
        capture_output=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )

    assert completed.returncode == 1
    assert completed.stdout == _expected_rows(malformed.read_bytes().splitlines())
    stderr = completed.stderr.decode()
    assert "line 3: undecodable:" in stderr
    assert "rows by event type:" in stderr


def test_cli_help_explains_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for word in ("--out", "--strict", "--progress", "JSON lines", "exit codes"):
        assert word in text


def test_missing_input_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "absent.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_replay_of_a_generated_stream_with_poison_matches_reduce(tmp_path: Path) -> None:
    facts = list(Workload(9, 30, poison_rate_garbage=0.05, poison_rate_invalid=0.05, oversized=1).facts())
    source, out = tmp_path / "facts.jsonl", tmp_path / "rows.jsonl"
    write_jsonl(source, facts)
    err = io.StringIO()

    with source.open("rb") as stream, out.open("wb") as sink:
        stats = replay(stream, sink, err=err)

    assert out.read_bytes() == _expected_rows([fact.value for fact in facts])
    poison = [fact.poison for fact in facts if fact.poison is not None]
    assert sorted(stats.errors_by_reason.elements()) == sorted(poison)
