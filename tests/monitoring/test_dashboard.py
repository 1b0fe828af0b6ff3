"""deploy/grafana/: the dashboard reads only metrics the code exports, and compose provisions it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.monitoring.exported import PROMETHEUS_OWN, exported_metric_names
from tools.monitoring import promql_metric_names

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "review-analytics.json"


def dashboard() -> dict[str, Any]:
    loaded = json.loads(DASHBOARD.read_text())
    assert isinstance(loaded, dict)
    return loaded


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])  # a collapsed row holds its panels


def queries(board: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for panel in panels(board):
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def test_every_dashboard_query_reads_only_metrics_the_code_exports() -> None:
    exported = exported_metric_names() | PROMETHEUS_OWN
    found = list(queries(dashboard()))
    assert len(found) >= 20
    for title, expr in found:
        names = promql_metric_names(expr)
        assert names, f"panel {title!r}: no metric found in {expr!r}"
        unknown = names - exported
        assert not unknown, f"panel {title!r} reads metrics no services/metrics.py set exports: {sorted(unknown)}"


def test_the_dashboard_shows_throughput_lag_transactions_dead_letters_sender_state_and_rebalances() -> None:
    read = {name for _title, expr in queries(dashboard()) for name in promql_metric_names(expr)}
    p = "review_analytics"
    wanted = {
        # throughput per stage
        f"{p}_processor_facts_consumed_total",
        f"{p}_processor_events_produced_total",
        f"{p}_sender_rows_delivered_total",
        # lag in records and in seconds per partition
        f"{p}_consumer_lag_records",
        f"{p}_consumer_lag_seconds",
        # transaction latency and aborts
        f"{p}_processor_transaction_duration_seconds_bucket",
        f"{p}_processor_transactions_total",
        # DLQ rates
        f"{p}_processor_facts_dead_lettered_total",
        f"{p}_sender_rows_dead_lettered_total",
        # sender retries and status codes
        f"{p}_sender_retries_total",
        f"{p}_sender_requests_total",
        # state size, rebalances
        f"{p}_processor_state_bytes",
        f"{p}_processor_rebalances_total",
    }
    assert wanted <= read, sorted(wanted - read)


def test_every_panel_uses_the_provisioned_prometheus_data_source_and_has_a_unique_id_and_place() -> None:
    (source,) = yaml.safe_load((GRAFANA / "datasources.yml").read_text())["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    board = dashboard()
    ids = [panel["id"] for panel in panels(board)]
    assert len(ids) == len(set(ids))
    for panel in panels(board):
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": source["uid"]}, panel["title"]
            assert all(target["refId"] for target in panel["targets"]), panel["title"]
        place = panel["gridPos"]
        assert place["x"] + place["w"] <= 24, panel["title"]


def test_compose_runs_grafana_with_the_provisioning_files_and_the_dashboard_where_the_provider_looks() -> None:
    grafana = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["grafana"]
    assert str(grafana["image"]).startswith("grafana/grafana:")
    mounts = dict(volume.rsplit(":", 1)[0].split(":", 1) for volume in grafana["volumes"])
    assert mounts["./deploy/grafana/datasources.yml"].startswith("/etc/grafana/provisioning/datasources/")
    assert mounts["./deploy/grafana/dashboards.yml"].startswith("/etc/grafana/provisioning/dashboards/")
    (provider,) = yaml.safe_load((GRAFANA / "dashboards.yml").read_text())["providers"]
    assert Path(mounts[f"./deploy/grafana/{DASHBOARD.name}"]).parent == Path(provider["options"]["path"])
    assert "prometheus" in grafana["depends_on"]
