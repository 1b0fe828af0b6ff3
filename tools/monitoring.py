"""The monitoring files of deploy/ and what keeps them in step.

* ``deploy/alerts.yml`` is the one source of the alert rules (a plain Prometheus rules file, loaded by
  the compose Prometheus).
* ``deploy/prometheusrule.yaml`` is the same groups as a Prometheus Operator ``PrometheusRule``: it is
  :func:`prometheus_rule_text` of the rules file (the rules file's text, indented under ``spec:``, so its
  comments survive), and ``tests/monitoring`` fails when the two differ.
* :func:`promql_metric_names` finds the metric names a PromQL expression reads, so the tests can check
  every rule and every dashboard query against what ``services/metrics.py`` exports.

Command line: ``python -m tools.monitoring write-prometheusrule`` (after editing deploy/alerts.yml).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

__all__ = ["PROMETHEUS_RULE", "RULES", "main", "prometheus_rule_text", "promql_metric_names"]

ROOT: Final = Path(__file__).resolve().parents[1]
RULES: Final = ROOT / "deploy" / "alerts.yml"
PROMETHEUS_RULE: Final = ROOT / "deploy" / "prometheusrule.yaml"

_HEADER: Final = """\
# Generated from deploy/alerts.yml by `python -m tools.monitoring write-prometheusrule`: edit that file,
# then regenerate this one (tests/monitoring fails while they differ).
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: review-analytics
  labels:
    app.kubernetes.io/part-of: review-analytics
spec:
"""


def prometheus_rule_text(rules_text: str) -> str:
    """The ``PrometheusRule`` manifest holding the groups of ``rules_text`` (a rules file's text).

    The rules file's leading comment lines stay at the top of it (they describe the file); the rest is
    indented under ``spec:``, comments included."""
    lines = rules_text.splitlines()
    body = lines[next(i for i, line in enumerate(lines) if line.startswith("groups:")) :]
    indented = [f"  {line}" if line.strip() else "" for line in body]
    return _HEADER + "\n".join(indented) + "\n"


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_BRACES = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE)
_VARIABLE = re.compile(r"\$\{?\w+\}?")
_IDENTIFIER = re.compile(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?")
_KEYWORDS: Final = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
    | {"inf", "nan", "atan2"}
)


def promql_metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` selects: identifiers that are neither functions, aggregations, keywords,
    label names (in ``{...}`` or ``by (...)``) nor numbers. Grafana variables (``$__rate_interval``) and
    strings are ignored."""
    text = _STRING.sub('""', expr)
    text = _VARIABLE.sub("5m", text)
    text = _BRACES.sub("", text)
    text = _RANGES.sub("", text)
    text = _GROUPING.sub("", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.monitoring", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("write-prometheusrule", help=f"write {PROMETHEUS_RULE.name} from {RULES.name}")
    commands.add_parser("check", help=f"exit 1 if {PROMETHEUS_RULE.name} is not what {RULES.name} gives")
    args = parser.parse_args(argv)
    wanted = prometheus_rule_text(RULES.read_text())
    if args.command == "write-prometheusrule":
        PROMETHEUS_RULE.write_text(wanted)
        print(f"wrote {PROMETHEUS_RULE.relative_to(ROOT)}")
        return 0
    if PROMETHEUS_RULE.read_text() != wanted:
        stale = PROMETHEUS_RULE.relative_to(ROOT)
        print(f"{stale} is out of date: run python -m tools.monitoring write-prometheusrule")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
