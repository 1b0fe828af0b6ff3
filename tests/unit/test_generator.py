"""``tools.demo.generator``: a deterministic, decodable, realistic fact stream with counted poison."""

from __future__ import annotations

import collections
import io
from pathlib import Path
from typing import Any

import msgspec
import pytest

from schemas.codec import FactDecodeError, decode_fact
from tools.demo.generator import (
    COMMAND_DECISIONS,
    COMMAND_REQUEST_VARIANTS,
    GUARDIAN_ACTIONS,
    GUARDIAN_STATUSES,
    TOOL_TYPES,
    GeneratedFact,
    Workload,
    main,
    write_jsonl,
)

SAMPLE = Path(__file__).parents[2] / "tools" / "demo" / "sample_facts.jsonl"


def _good(facts: list[GeneratedFact]) -> list[GeneratedFact]:
    return [fact for fact in facts if fact.poison is None]


def _payloads(facts: list[GeneratedFact]) -> list[dict[str, Any]]:
    return [msgspec.json.decode(fact.value)["fact"] for fact in _good(facts)]


@pytest.fixture(scope="module")
def moderate() -> list[GeneratedFact]:
    return list(Workload(seed=11, threads=150).facts())


def test_same_seed_gives_the_same_bytes() -> None:
    first = list(Workload(3, 12).facts())
    again = list(Workload(3, 12).facts())

    assert first == again


def test_different_seeds_give_different_streams() -> None:
    assert [f.value for f in Workload(3, 12).facts()] != [f.value for f in Workload(4, 12).facts()]


def test_every_good_fact_decodes_and_its_key_matches_its_envelope(moderate: list[GeneratedFact]) -> None:
    for fact in moderate:
        envelope = decode_fact(fact.value)
        if fact.key is None:
            assert envelope.fact.__struct_config__.tag == "initialize"
            assert envelope.thread_id is None
        elif envelope.thread_id is not None:
            assert fact.key == envelope.thread_id
        else:
            assert fact.key == f"~unrouted/{envelope.producer}", "unroutable answers use the producer's fallback key"


def test_observed_time_strictly_increases_and_initialize_facts_come_first(moderate: list[GeneratedFact]) -> None:
    times = [decode_fact(fact.value).observed_at_ms for fact in moderate]
    assert times == sorted(times)
    assert len(set(times)) == len(times)

    broadcast = [fact.key is None for fact in moderate]
    assert broadcast == sorted(broadcast, reverse=True), "every Initialize precedes every family fact"
    assert sum(broadcast) == 2 * 2, "two producers with two connections each"


def test_many_families_are_open_at_once(moderate: list[GeneratedFact]) -> None:
    keys = [fact.key for fact in moderate if fact.key is not None and not fact.key.startswith("~")]
    first = {key: keys.index(key) for key in set(keys)}
    last = {key: len(keys) - 1 - keys[::-1].index(key) for key in set(keys)}
    midpoint = len(keys) // 2
    open_at_midpoint = sum(1 for key in first if first[key] <= midpoint <= last[key])

    assert open_at_midpoint >= 4


def test_every_tool_type_and_terminal_status_appears(moderate: list[GeneratedFact]) -> None:
    completed = [
        fact["notification"]["params"]["item"]
        for fact in _payloads(moderate)
        if fact["kind"] == "notification" and fact["notification"]["method"] == "item/completed"
    ]
    types = {item["type"] for item in completed}
    statuses = {(item["type"], item.get("status")) for item in completed}

    assert set(TOOL_TYPES) <= types
    for status in ("completed", "failed", "declined", "inProgress"):
        assert ("commandExecution", status) in statuses
    for status in ("completed", "failed", "declined"):
        assert ("fileChange", status) in statuses
    for tool in ("mcpToolCall", "dynamicToolCall", "collabAgentToolCall"):
        assert {(tool, "completed"), (tool, "failed")} <= statuses


def _command_variant(params: dict[str, Any]) -> str:
    additional = params["additionalPermissions"]
    if params["networkApprovalContext"] is not None:
        return "network_context"
    if params["approvalId"] is not None:
        return "execve"
    if params["proposedNetworkPolicyAmendments"]:
        return "proposed_network_amendments"
    if additional == {}:
        return "additional_empty"
    if additional is not None:
        return "additional_network" if additional["network"] else "additional_file_system"
    return "plain"


def _decision(decision: Any) -> str:
    if isinstance(decision, str):
        return decision
    if "acceptWithExecpolicyAmendment" in decision:
        return "acceptWithExecpolicyAmendment"
    action = decision["applyNetworkPolicyAmendment"]["network_policy_amendment"]["action"]
    return f"applyNetworkPolicyAmendment:{action}"


def test_every_user_review_kind_and_decision_appears(moderate: list[GeneratedFact]) -> None:
    payloads = _payloads(moderate)
    requests = [f["request"] for f in payloads if f["kind"] == "server_request"]
    responses = [f["response"] for f in payloads if f["kind"] == "server_response"]
    effective = [f["response"] for f in payloads if f["kind"] == "effective_permissions_approval_response"]

    command_variants = {
        _command_variant(r["params"]) for r in requests if r["method"] == "item/commandExecution/requestApproval"
    }
    assert command_variants == set(COMMAND_REQUEST_VARIANTS)
    grant_roots = {
        r["params"]["grantRoot"] is None for r in requests if r["method"] == "item/fileChange/requestApproval"
    }
    assert grant_roots == {True, False}
    permission_shapes = {
        (r["params"]["permissions"]["network"] is not None, r["params"]["permissions"]["fileSystem"] is not None)
        for r in requests
        if r["method"] == "item/permissions/requestApproval"
    }
    assert permission_shapes == {(True, False), (False, True), (True, True)}

    command_decisions = {
        _decision(r["response"]["decision"])
        for r in responses
        if r["method"] == "item/commandExecution/requestApproval"
    }
    assert command_decisions == set(COMMAND_DECISIONS) - {"abort"}
    file_decisions = {r["response"]["decision"] for r in responses if r["method"] == "item/fileChange/requestApproval"}
    assert file_decisions == {"accept", "acceptForSession", "decline", "cancel"}
    assert {e["scope"] for e in effective} == {"turn", "session"}
    assert {"network": None, "file_system": None} in [e["permissions"] for e in effective], "an empty grant"
    assert any(f["kind"] == "server_request_aborted" for f in payloads)


def test_every_guardian_action_and_status_appears(moderate: list[GeneratedFact]) -> None:
    completed = [
        f["notification"]["params"]
        for f in _payloads(moderate)
        if f["kind"] == "notification" and f["notification"]["method"] == "item/autoApprovalReview/completed"
    ]

    assert {params["action"]["type"] for params in completed} == set(GUARDIAN_ACTIONS)
    assert {params["review"]["status"] for params in completed} == set(GUARDIAN_STATUSES)
    assert any(params["targetItemId"] is None for params in completed)
    kinds = collections.Counter(fact.kind for fact in moderate)
    terminal = sum(1 for params in completed if params["review"]["status"] != "inProgress")
    assert kinds["guardian_review"] == terminal, "one guardian custom fact per terminal assessment"


def test_turn_lifecycle_and_custom_facts_appear(moderate: list[GeneratedFact]) -> None:
    kinds = {fact.kind for fact in moderate}

    assert {
        "client_request:turn/start",
        "client_response:turn/start",
        "client_request:turn/steer",
        "client_response:turn/steer",
        "error_response",
        "notification:turn/started",
        "notification:turn/diff/updated",
        "notification:turn/completed",
        "turn_resolved_config",
        "turn_token_usage",
        "subagent_thread_started",
        "compaction",
        "client_response:thread/start",
        "client_response:thread/resume",
        "client_response:thread/fork",
        "skill_invoked",
        "app_mentioned",
        "app_used",
        "hook_run",
        "plugin_used",
        "plugin_state_changed",
    } <= kinds


def test_answers_for_unknown_request_ids_are_generated(moderate: list[GeneratedFact]) -> None:
    unrouted = [fact for fact in moderate if fact.key is not None and fact.key.startswith("~unrouted/")]

    assert unrouted
    assert all(decode_fact(fact.value).thread_id is None for fact in unrouted)


def test_poison_is_labelled_with_the_decode_error_it_causes() -> None:
    workload = Workload(5, 30, poison_rate_garbage=0.05, poison_rate_invalid=0.05, oversized=3)
    facts = list(workload.facts())
    poison = [fact for fact in facts if fact.poison is not None]

    for fact in poison:
        with pytest.raises(FactDecodeError) as caught:
            decode_fact(fact.value)
        assert caught.value.reason == fact.poison
    counts = collections.Counter(fact.poison for fact in poison)
    good = len(facts) - len(poison)
    assert counts["oversized"] == 3
    for reason in ("undecodable", "invalid"):
        # 5 % of the good facts, within a generous binomial margin.
        assert 0.02 * good < counts[reason] < 0.09 * good
    assert all(b"\n" not in fact.value for fact in poison), "poison stays on one JSON line"


def test_poison_does_not_change_the_good_facts() -> None:
    clean = list(Workload(5, 10).facts())
    poisoned = list(Workload(5, 10, poison_rate_garbage=0.2, poison_rate_invalid=0.2, oversized=2).facts())

    assert _good(poisoned) == clean
    assert len(poisoned) > len(clean)


def test_no_poison_unless_asked() -> None:
    assert all(fact.poison is None for fact in Workload(5, 20).facts())


def test_oversized_records_are_placed_even_in_short_streams() -> None:
    facts = list(Workload(1, 1, oversized=2).facts())

    assert [fact.poison for fact in facts].count("oversized") == 2


def test_write_jsonl_writes_one_value_per_line(tmp_path: Path) -> None:
    facts = list(Workload(2, 3).facts())
    path = tmp_path / "facts.jsonl"

    assert write_jsonl(path, facts) == len(facts)
    assert path.read_bytes().splitlines() == [fact.value for fact in facts]


def test_bundled_sample_is_the_seed_7_stream_without_poison() -> None:
    stream = io.BytesIO()
    write_jsonl(stream, Workload(7, 20).facts())

    assert SAMPLE.read_bytes() == stream.getvalue(), "regenerate with the command in tools/demo/generator.py"
    assert 250 <= SAMPLE.read_bytes().count(b"\n") <= 450


def test_cli_writes_the_requested_stream(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.jsonl"

    assert main(["--seed", "3", "--threads", "4", "--out", str(out)]) == 0

    assert out.read_bytes().splitlines() == [fact.value for fact in Workload(3, 4).facts()]
    assert "wrote" in capsys.readouterr().err


def test_cli_help_explains_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])

    assert exited.value.code == 0
    help_text = capsys.readouterr().out
    for option in ("--seed", "--threads", "--poison-garbage", "--poison-invalid", "--oversized", "--out"):
        assert option in help_text
