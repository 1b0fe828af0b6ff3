"""deploy/alerts.yml: its PrometheusRule twin, the metrics it reads, its runbooks, its promtool tests.

``promtool`` is not needed here: these tests parse the files with PyYAML. The real ``promtool check
rules`` and ``promtool test rules`` run in ``test_promtool.py`` (opt-in, ``--promtool``; see
docs/operations.md, "Alert rules").
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.monitoring.exported import PROMETHEUS_OWN, exported_metric_names
from tools.monitoring import PROMETHEUS_RULE, RULES, prometheus_rule_text, promql_metric_names

ROOT = Path(__file__).resolve().parents[2]
UNIT_TESTS = Path(__file__).with_name("alerts_test.yml")
OPERATIONS = ROOT / "docs" / "operations.md"


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def alerting_rules() -> list[dict[str, Any]]:
    return [rule for group in load(RULES)["groups"] for rule in group["rules"] if "alert" in rule]


def test_the_prometheusrule_is_generated_from_the_rules_file_and_holds_the_same_groups() -> None:
    manifest = load(PROMETHEUS_RULE)
    assert manifest["apiVersion"] == "monitoring.coreos.com/v1" and manifest["kind"] == "PrometheusRule"
    assert manifest["spec"]["groups"] == load(RULES)["groups"]
    assert PROMETHEUS_RULE.read_text() == prometheus_rule_text(RULES.read_text()), (
        "deploy/prometheusrule.yaml is out of date: python -m tools.monitoring write-prometheusrule"
    )


def test_alert_names_are_unique_and_every_group_has_rules() -> None:
    groups = load(RULES)["groups"]
    assert all(group["rules"] for group in groups)
    names = [rule["alert"] for rule in alerting_rules()]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


def test_every_rule_reads_only_metrics_the_code_exports() -> None:
    exported = exported_metric_names() | PROMETHEUS_OWN
    for rule in alerting_rules():
        names = promql_metric_names(rule["expr"])
        assert names, f"{rule['alert']}: no metric found in {rule['expr']!r}"
        unknown = names - exported
        assert not unknown, f"{rule['alert']} reads metrics no services/metrics.py set exports: {sorted(unknown)}"


def test_a_misspelt_metric_would_be_caught() -> None:
    """The check above compares names, not prefixes: one letter off is refused."""
    exported = exported_metric_names()
    assert "review_analytics_consumer_lag_records" in exported
    assert promql_metric_names("max by (group) (review_analytics_consumer_lag_record) > 0") - exported == {
        "review_analytics_consumer_lag_record"
    }


def runbook_anchors() -> set[str]:
    """GitHub's anchors of the headings of docs/operations.md."""
    headings = re.findall(r"^#+\s+(.+?)\s*$", OPERATIONS.read_text(), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_every_alert_has_a_severity_a_summary_and_a_runbook_in_operations_md() -> None:
    anchors = runbook_anchors()
    for rule in alerting_rules():
        assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        url = rule["annotations"]["runbook_url"]
        assert url == f"docs/operations.md#{rule['alert'].lower()}", rule["alert"]
        assert url.split("#", 1)[1] in anchors, f"docs/operations.md has no runbook heading for {rule['alert']}"


def unit_test_evals() -> dict[str, list[tuple[str, int, bool]]]:
    """Per alert: (test name, eval minute, expects it firing) of every check in alerts_test.yml."""
    evals: dict[str, list[tuple[str, int, bool]]] = {}
    for test in load(UNIT_TESTS)["tests"]:
        for check in test.get("alert_rule_test", []):
            minutes = int(str(check["eval_time"]).removesuffix("m"))
            evals.setdefault(check["alertname"], []).append((test["name"], minutes, bool(check.get("exp_alerts"))))
    return evals


def test_the_promtool_tests_see_every_alert_quiet_then_firing_then_resolved() -> None:
    """For each alert, one test evaluates it before it fires, while it fires and after it resolved."""
    evals = unit_test_evals()
    assert load(UNIT_TESTS)["rule_files"] == ["../../deploy/alerts.yml"]
    for rule in alerting_rules():
        by_test: dict[str, list[tuple[int, bool]]] = {}
        for test, minute, firing in evals.get(rule["alert"], []):
            by_test.setdefault(test, []).append((minute, firing))
        covered = [
            test
            for test, checks in by_test.items()
            if any(
                not before and firing and not after and t0 < t1 < t2
                for t0, before in checks
                for t1, firing in checks
                for t2, after in checks
            )
        ]
        assert covered, f"no test in {UNIT_TESTS.name} sees {rule['alert']} quiet, firing, then resolved"


def test_pods_gone_is_an_absent_alert_for_each_service() -> None:
    """With every pod of a service gone its series disappear: only absent() can fire then."""
    exprs = {rule["alert"]: rule["expr"] for rule in alerting_rules()}
    assert exprs["ReducerAbsent"].startswith("absent(review_analytics_processor_")
    assert exprs["SenderAbsent"].startswith("absent(review_analytics_sender_")
    assert exprs["LagUnmeasured"].startswith("absent(review_analytics_lag_monitor_")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = load(ROOT / "docker-compose.yml")
    assert isinstance(loaded, dict)
    return loaded


def test_the_compose_prometheus_loads_the_rules_file_and_scrapes_the_lag_exporter(compose: dict[str, Any]) -> None:
    services = compose["services"]
    config = load(ROOT / "deploy" / "prometheus.yml")
    mounts = dict(volume.rsplit(":", 1)[0].split(":", 1) for volume in services["prometheus"]["volumes"])
    config_dir = Path(mounts["./deploy/prometheus.yml"]).parent
    for rule_file in config["rule_files"]:
        assert mounts.get(f"./deploy/{RULES.name}") == str(config_dir / rule_file)
    exporter = services["lag-exporter"]
    argv = [*exporter["entrypoint"], *exporter["command"]]
    assert argv[:3] == ["python", "-m", "services.lag"] and "--serve" in argv
    port = argv[argv.index("--serve") + 1]
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "lag-exporter"]
    assert job["static_configs"] == [{"targets": [f"lag-exporter:{port}"]}]
    assert f"127.0.0.1:{port}/healthz" in " ".join(exporter["healthcheck"]["test"])
