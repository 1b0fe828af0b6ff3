"""The golden corpus: our reducer against the Rust oracle's committed rows, with no Rust needed.

tests/conformance/corpus/ holds the rows the real ``codex-rs/analytics`` reducer (built at the pinned
upstream commit by tools/rust-oracle) emitted for generated workloads of every fact kind. Every row
of ours must be identical to the oracle's, key order included, apart from the differences documented
in docs/differences.md. Rebuild the corpus with ``python -m tools.differential.corpus`` (docs/conformance.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.differential.corpus import CORPUS_DIR, facts_sha256, read, workload_facts
from tools.differential.documented import load
from tools.differential.runner import compare_results

PINNED_COMMIT = "b39f943a634a6e7ba86c3d6e8cf6d5f35e612566"
CORPUS = sorted(CORPUS_DIR.glob("*.jsonl.xz"))


def test_the_corpus_covers_at_least_100000_facts_from_the_pinned_oracle() -> None:
    corpora = [read(path) for path in CORPUS]
    assert sum(len(corpus.results) for corpus in corpora) >= 100_000
    assert {corpus.oracle_commit for corpus in corpora} == {PINNED_COMMIT}


@pytest.mark.parametrize("path", CORPUS, ids=lambda path: path.name.removesuffix(".jsonl.xz"))
def test_our_rows_match_the_oracle_rows_apart_from_documented_differences(path: Path) -> None:
    corpus = read(path)
    facts = workload_facts(corpus.workload)
    assert facts_sha256(facts) == corpus.facts_sha256, (
        "the generator's stream changed: rebuild the corpus (python -m tools.differential.corpus)"
    )
    report = compare_results(facts, corpus.results, load())
    assert not report.conversion_errors, "the oracle refused generated facts"
    assert report.facts_compared == len(facts)
    assert report.rows_compared > 0
    assert not report.undocumented, report.summary()
