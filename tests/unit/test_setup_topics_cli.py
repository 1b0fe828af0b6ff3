"""setup-topics checks its input before asking the broker, and shows only its own flags."""

from __future__ import annotations

import json

import pytest

from schemas.topics import DEAD_LETTER_RETENTION_MS
from services.config import ProcessorConfig
from services.exitcodes import EXIT_OK, EXIT_USAGE
from services.setup_topics import build_parser, main, plan_topics, read_args


def failure(err: str) -> str:
    [line] = [json.loads(text) for text in err.splitlines() if text.startswith("{")]
    assert line["event"] == "command_failed" and line["exit_code"] == EXIT_USAGE
    assert isinstance(line["error"], str)
    return line["error"]


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--partitions", "0"], {}, "SETUP_PARTITIONS (flag --partitions) must be >= 1, got 0"),
        (
            [],
            {"SETUP_PARTITIONS": "abc"},
            "SETUP_PARTITIONS (flag --partitions) must be a whole number >= 1, got 'abc'",
        ),
        (["--replication-factor", "-1"], {}, "SETUP_REPLICATION_FACTOR (flag --replication-factor) must be >= 1"),
        ([], {"SETUP_EVENTS_PARTITIONS": "x"}, "SETUP_EVENTS_PARTITIONS (flag --events-partitions) must be a whole"),
        (["--config", "facts.dlq:retention.ms"], {}, "--config expects TOPIC:KEY=VALUE"),
        (["--config", "other:retention.ms=1"], {}, "'other' is not one of the pipeline's topics"),
        (["--no-such-flag"], {}, "unrecognized arguments: --no-such-flag"),
    ],
)
def test_bad_input_exits_2_with_a_message_before_any_broker_is_asked(
    argv: list[str], env: dict[str, str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Port 1 refuses connections: reaching the broker would exit 3, not 2.
    code = main([*argv, "--kafka-bootstrap-servers", "127.0.0.1:1"], env=env)
    captured = capsys.readouterr()
    assert code == EXIT_USAGE
    assert message in failure(captured.err)
    assert "Traceback" not in captured.err


def test_help_shows_only_the_flags_setup_topics_reads(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"], env={}) == EXIT_OK
    text = capsys.readouterr().out
    for flag in ("--partitions", "--replication-factor", "--config", "--facts-topic", "--group-id", "--kafka-"):
        assert flag in text
    for reducer_flag in ("--max-batch-records", "--state-budget-bytes", "--metrics-port", "--idle-ttl-ms"):
        assert reducer_flag not in text


def test_dead_letter_topics_keep_30_days_and_config_flags_add_to_the_defaults() -> None:
    args = build_parser().parse_args(
        ["--config", "facts.dlq:retention.ms=1000", "--config", "facts:min.insync.replicas=2", "--partitions", "3"]
    )
    wanted = read_args(args, {})
    specs = plan_topics(ProcessorConfig(), wanted)
    by_name = {spec.name: spec for spec in specs}
    assert wanted.replication_factor == 1 and {spec.partitions for spec in specs} == {3}
    assert by_name["events.dlq"].configs["retention.ms"] == str(DEAD_LETTER_RETENTION_MS)
    assert by_name["facts.dlq"].configs["retention.ms"] == "1000"
    assert "max.message.bytes" in by_name["facts.dlq"].configs  # the default next to the override stays
    assert by_name["facts"].configs == {"min.insync.replicas": "2"}
