"""``python -m tools.differential``: compare our rows with the Rust oracle's, fact by fact.

Usage::

    python -m tools.differential --oracle /work/oracle/b39f943a6/codex-analytics-oracle facts.jsonl
    python -m tools.differential --oracle BIN --seed 1 --seed 2 --threads 300
    python -m tools.differential --corpus        # the committed golden corpus, no Rust needed

Input: fact envelope files (JSON lines, as ``replay`` reads them), or generated workloads
(``--seed``, one :class:`tools.demo.generator.Workload` per seed). Exit status 0 when every row is
identical apart from the differences documented in docs/differences.md and no fact failed to convert;
1 otherwise; 2 on usage errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from tools.demo.generator import Workload
from tools.differential.corpus import CORPUS_DIR, facts_sha256, read, workload_facts
from tools.differential.documented import DEFAULT_PATH, DocumentedDifferencesError, load
from tools.differential.runner import Report, compare, compare_results, read_envelopes


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.differential", description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="*", type=Path, help="fact envelope files (JSON lines)")
    parser.add_argument("--oracle", type=Path, help="the codex-analytics-oracle binary")
    parser.add_argument("--corpus", action="store_true", help="compare with the committed golden corpus instead")
    parser.add_argument("--seed", type=int, action="append", default=[], help="generate a workload with this seed")
    parser.add_argument("--threads", type=int, default=100, help="families per generated workload (default: 100)")
    parser.add_argument("--producers", type=int, default=2, help="producers per generated workload (default: 2)")
    parser.add_argument("--differences", type=Path, default=DEFAULT_PATH, help="the documented differences")
    parser.add_argument("--json", type=Path, help="also write the report as JSON here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.corpus == bool(args.inputs or args.seed) or (args.oracle is None) != args.corpus:
        _parser().error("give --oracle with fact files or --seed, or --corpus alone")
    try:
        table = load(args.differences)
    except (OSError, DocumentedDifferencesError) as exc:
        print(f"differential: {args.differences}: {exc}", file=sys.stderr)
        return 2
    total = Report()
    streams: list[tuple[str, list[bytes]]] = []
    for path in args.inputs:
        with path.open("rb") as source:
            streams.append((str(path), read_envelopes(source)))
    for seed in args.seed:
        workload = Workload(seed=seed, threads=args.threads, producers=args.producers)
        streams.append((f"seed {seed}", [fact.value for fact in workload.facts() if fact.poison is None]))
    reports: list[tuple[str, Report]] = []
    if args.corpus:
        for path in sorted(CORPUS_DIR.glob("*.jsonl.xz")):
            corpus = read(path)
            facts = workload_facts(corpus.workload)
            if facts_sha256(facts) != corpus.facts_sha256:
                print(f"differential: {path.name}: the generator changed; rebuild the corpus", file=sys.stderr)
                return 1
            reports.append((corpus.name, compare_results(facts, corpus.results, table)))
    for name, envelopes in streams:
        reports.append((name, compare(envelopes, args.oracle, table)))
    for name, report in reports:
        print(
            f"{name}: {report.facts} facts, {report.rows_compared} rows, {report.rows_different} different",
            file=sys.stderr,
        )
        total.merge(report)
    print(total.summary())
    if args.json is not None:
        args.json.write_text(json.dumps(_as_json(total), indent=2) + "\n")
    return 0 if total.ok else 1


def _as_json(report: Report) -> dict[str, object]:
    return {
        "facts": report.facts,
        "facts_compared": report.facts_compared,
        "rows_compared": report.rows_compared,
        "rows_identical": report.rows_identical,
        "rows_identical_apart_from_documented": report.rows_accepted,
        "rows_different": report.rows_different,
        "documented": [
            {"reason": r, "event_type": t, "field": f, "count": n} for (r, t, f), n in report.accepted.items()
        ],
        "undocumented": [{"event_type": t, "field": f, "count": n} for (t, f), n in report.undocumented.items()],
        "conversion_errors": dict(report.conversion_errors),
        "our_decode_errors": dict(report.our_decode_errors),
    }


if __name__ == "__main__":
    sys.exit(main())
