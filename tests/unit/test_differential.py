"""The differential runner's pieces that need no Rust: conversion, row comparison, the documented table."""

from __future__ import annotations

import pytest

from tools.differential.compare import KEY_ORDER, ROW, Difference, fact_differences, row_differences
from tools.differential.convert import to_neutral
from tools.differential.documented import DEFAULT_PATH, DocumentedDifferencesError, load, parse, reason_for


def _table(*rows: str) -> str:
    return "\n".join(["# doc", "<!-- differential:accepted -->", "```", "reason | event_type | field", *rows, "```"])


def test_rows_with_equal_values_in_another_key_order_differ() -> None:
    ours = {"event_type": "e", "event_params": {"a": 1, "b": 2}}
    theirs = {"event_type": "e", "event_params": {"b": 2, "a": 1}}
    assert row_differences(ours, theirs) == [Difference("e", f"event_params.{KEY_ORDER}")]


def test_missing_keys_values_and_json_types_are_differences() -> None:
    ours = {"event_type": "e", "event_params": {"a": 1, "b": True, "c": [1]}}
    theirs = {"event_type": "e", "event_params": {"a": 1.0, "b": 1, "d": None, "c": [2]}}
    fields = {d.field for d in row_differences(ours, theirs)}
    assert fields == {"event_params.a", "event_params.b", "event_params.c[0]", "event_params.d"}


def test_a_row_only_one_side_emits_is_a_row_difference() -> None:
    compared, identical, found = fact_differences([{"event_type": "x"}], [{"event_type": "x"}, {"event_type": "y"}])
    assert (compared, identical, found) == (2, 1, [[Difference("y", ROW)]])


def test_documented_table_accepts_only_the_three_reasons() -> None:
    table = parse(_table("wall-clock | e | event_params.created_at", "partitioning | * | event_params.runtime.*"))
    assert reason_for(table, Difference("e", "event_params.created_at")) == "wall-clock"
    assert reason_for(table, Difference("f", "event_params.runtime.runtime_os")) == "partitioning"
    assert reason_for(table, Difference("e", "event_params.model")) is None
    with pytest.raises(DocumentedDifferencesError, match="not one of"):
        parse(_table("it is fine | e | event_params.model"))
    with pytest.raises(DocumentedDifferencesError, match="no <!--"):
        parse("no table here")


def test_the_committed_differences_table_parses() -> None:
    assert all(
        entry.reason in ("wall-clock", "producer-side derivation", "partitioning") for entry in load(DEFAULT_PATH)
    )


def test_envelopes_convert_to_the_oracle_neutral_format() -> None:
    server_response = {
        "v": 1,
        "producer": "p",
        "thread_id": "t",
        "fact": {
            "kind": "server_response",
            "completed_at_ms": 5,
            "response": {"method": "item/fileChange/requestApproval", "id": "7", "response": {"decision": "accept"}},
        },
    }
    assert to_neutral(server_response) == {
        "fact": "server_response",
        "completed_at_ms": 5,
        "method": "item/fileChange/requestApproval",
        "request_id": "7",
        "payload": {"decision": "accept"},
    }
    custom = {"v": 1, "producer": "p", "thread_id": "t", "fact": {"kind": "hook_run", "tracking": {}, "hook": {}}}
    assert to_neutral(custom) == {"fact": "custom", "kind": "hook_run", "payload": {"tracking": {}, "hook": {}}}
