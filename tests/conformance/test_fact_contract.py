"""The fact envelope is a published contract (docs/fact-contract.md): its JSON Schema is generated from the
msgspec types and committed, and facts recorded in every earlier envelope version still decode."""

from __future__ import annotations

import json
import typing

import jsonschema
import pytest

from schemas.codec import InvalidFact, decode_fact
from schemas.facts import SCHEMA_VERSION, FactKind
from schemas.jsonschema import CONTRACT_DIR, SCHEMA_FILE, render

RECORDED = CONTRACT_DIR / "recorded"


def _recorded(version: int) -> list[bytes]:
    return [line for line in (RECORDED / f"v{version}.jsonl").read_bytes().splitlines() if line.strip()]


def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_committed_json_schema_is_the_one_the_code_generates() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == render(), (
        "schemas/contract is out of date: run `python -m schemas.jsonschema --write` and review the diff "
        "against the rules for changing the contract in docs/fact-contract.md"
    )


def test_there_is_a_recorded_corpus_for_every_envelope_version_up_to_the_current_one() -> None:
    assert sorted(path.name for path in RECORDED.glob("v*.jsonl")) == [
        f"v{v}.jsonl" for v in range(1, SCHEMA_VERSION + 1)
    ]


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION + 1))
def test_facts_recorded_in_every_envelope_version_still_decode(version: int) -> None:
    kinds = set()
    for line in _recorded(version):
        envelope = decode_fact(line)
        kinds.add(type(envelope.fact))
    if version == SCHEMA_VERSION:
        assert kinds == set(typing.get_args(FactKind)), "the current version's corpus has a fact of every kind"


def test_every_recorded_fact_is_valid_against_the_published_schema() -> None:
    validator = _validator()
    for line in _recorded(SCHEMA_VERSION):
        errors = sorted(validator.iter_errors(json.loads(line)), key=str)
        assert errors == [], f"{line[:120]!r}: {errors[0].message if errors else ''}"


def test_the_schema_and_the_decoder_both_refuse_a_fact_with_a_wrong_field_type() -> None:
    fact = json.loads(_recorded(SCHEMA_VERSION)[0])
    fact["observed_at_ms"] = "yesterday"

    assert not _validator().is_valid(fact)
    with pytest.raises(InvalidFact, match=r"\$\.observed_at_ms"):
        decode_fact(json.dumps(fact).encode())
