"""The fact envelope as a published contract: its JSON Schema, generated from the msgspec types.

The app-servers that publish facts are Rust processes, so ``schemas/contract/fact-envelope.v1.schema.json``
is what a producer in any language validates against; ``docs/fact-contract.md`` says how to publish.
The file is generated, never edited: ``python -m schemas.jsonschema --write`` rewrites it, and a test
fails when the code and the committed file disagree.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import msgspec

from schemas.facts import SCHEMA_VERSION, FactEnvelope

CONTRACT_DIR: Final = Path(__file__).parent / "contract"
SCHEMA_FILE: Final = CONTRACT_DIR / f"fact-envelope.v{SCHEMA_VERSION}.schema.json"


def envelope_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of :class:`schemas.facts.FactEnvelope`, with an id and a title."""
    schema = msgspec.json.schema(FactEnvelope)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"review-analytics fact envelope, version {SCHEMA_VERSION}",
        "description": "One analytics fact as an app-server publishes it to the facts topic (docs/fact-contract.md).",
        **schema,
    }


def render() -> str:
    return json.dumps(envelope_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m schemas.jsonschema",
        description="Print (or, with --write, rewrite) the JSON Schema of the fact envelope generated from the "
        f"msgspec types. The committed copy is {SCHEMA_FILE.relative_to(CONTRACT_DIR.parent.parent)}.",
    )
    parser.add_argument("--write", action="store_true", help="rewrite the committed schema file")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        SCHEMA_FILE.write_text(text, encoding="utf-8")
        print(f"wrote {SCHEMA_FILE} ({len(text):,} bytes)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
