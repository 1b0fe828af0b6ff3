"""The golden corpus: the Rust oracle's rows for generated workloads, committed so CI needs no Rust.

Each corpus file (``tests/conformance/corpus/<name>.jsonl.xz``) holds one workload:

* line 1, the header: the oracle's upstream commit, the :class:`tools.demo.generator.Workload`
  parameters, the number of facts and the SHA-256 of the fact stream (the facts themselves are
  regenerated from the parameters; a generator change that alters them shows as a hash mismatch, and
  the corpus must then be rebuilt);
* one line per fact: ``{"events": [...]}`` (the oracle's rows, key order kept) or ``{"error": "..."}``.

Rebuild (opt-in, needs a built oracle; see docs/conformance.md)::

    python -m tools.differential.corpus --oracle /work/oracle/b39f943a6/codex-analytics-oracle
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import lzma
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from tools.demo.generator import Workload
from tools.differential.runner import OracleResult, run_oracle

CORPUS_DIR: Final = Path(__file__).resolve().parents[2] / "tests" / "conformance" / "corpus"


def _plan() -> Iterator[tuple[str, Workload]]:
    """The workloads of the corpus: every fact kind, several sizes and mixes, about 100,000 facts."""
    for seed in range(1, 9):
        yield f"mixed-{seed:02d}", Workload(seed=seed, threads=300, producers=2, concurrency=16)
    for seed in range(11, 14):
        yield f"subagents-{seed:02d}", Workload(seed=seed, threads=200, subagent_rate=0.8, turns_per_thread=(1, 3))
    for seed in range(21, 24):
        yield f"reviews-{seed:02d}", Workload(seed=seed, threads=200, review_rate=1.0, items_per_turn=(1, 4))
    for seed in range(31, 33):
        yield (
            f"answers-{seed:02d}",
            Workload(seed=seed, threads=200, unanswered_rate=0.3, unknown_answer_rate=0.5, review_rate=0.9),
        )
    for seed in range(41, 43):
        yield f"custom-{seed:02d}", Workload(seed=seed, threads=200, custom_rate=0.9, producers=3, connections=3)
    yield "small-51", Workload(seed=51, threads=5, producers=1, connections=1, concurrency=1)
    yield "crowded-52", Workload(seed=52, threads=300, producers=4, concurrency=64, max_step_ms=3)


def plan() -> list[tuple[str, Workload]]:
    return list(_plan())


def workload_facts(workload: Workload) -> list[bytes]:
    return [fact.value for fact in workload.facts() if fact.poison is None]


def facts_sha256(facts: Sequence[bytes]) -> str:
    digest = hashlib.sha256()
    for value in facts:
        digest.update(value)
        digest.update(b"\n")
    return digest.hexdigest()


@dataclass
class CorpusFile:
    name: str
    oracle_commit: str
    workload: Workload
    facts_sha256: str
    results: list[OracleResult]


def workload_params(workload: Workload) -> dict[str, Any]:
    params = dataclasses.asdict(workload)
    return {key: list(value) if isinstance(value, tuple) else value for key, value in params.items()}


def write(path: Path, corpus: CorpusFile) -> None:
    header = {
        "oracle_commit": corpus.oracle_commit,
        "workload": workload_params(corpus.workload),
        "facts": len(corpus.results),
        "facts_sha256": corpus.facts_sha256,
    }
    lines = [json.dumps(header)]
    for result in corpus.results:
        body = {"events": result.events} if result.events is not None else {"error": result.error}
        lines.append(json.dumps(body, separators=(",", ":"), ensure_ascii=False))
    path.write_bytes(lzma.compress(("\n".join(lines) + "\n").encode(), preset=9 | lzma.PRESET_EXTREME))


def read(path: Path) -> CorpusFile:
    lines = lzma.decompress(path.read_bytes()).decode().splitlines()
    header = json.loads(lines[0])
    params: dict[str, Any] = {
        key: tuple(value) if isinstance(value, list) else value for key, value in header["workload"].items()
    }
    results = []
    for line in lines[1:]:
        body = json.loads(line)
        results.append(OracleResult(events=body.get("events"), error=body.get("error")))
    if len(results) != header["facts"]:
        raise ValueError(f"{path}: {len(results)} results for {header['facts']} facts")
    name = path.name.removesuffix(".jsonl.xz")
    return CorpusFile(name, header["oracle_commit"], Workload(**params), header["facts_sha256"], results)


def oracle_commit(binary: Path) -> str:
    """The commit build.sh recorded beside the binary (WORKDIR/COMMIT)."""
    return (binary.parent / "COMMIT").read_text().strip()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.differential.corpus", description=__doc__.split("\n\n")[0])
    parser.add_argument("--oracle", required=True, type=Path, help="the codex-analytics-oracle binary")
    parser.add_argument("--out", type=Path, default=CORPUS_DIR, help=f"corpus directory (default: {CORPUS_DIR})")
    args = parser.parse_args(argv)
    commit = oracle_commit(args.oracle)
    args.out.mkdir(parents=True, exist_ok=True)
    for stale in args.out.glob("*.jsonl.xz"):
        stale.unlink()
    total = 0
    for name, workload in plan():
        facts = workload_facts(workload)
        results = run_oracle(args.oracle, facts)
        errors = sum(1 for result in results if result.events is None)
        write(args.out / f"{name}.jsonl.xz", CorpusFile(name, commit, workload, facts_sha256(facts), results))
        total += len(facts)
        print(f"{name}: {len(facts)} facts, {errors} conversion errors", file=sys.stderr)
    print(f"corpus: {total} facts from oracle {commit}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
