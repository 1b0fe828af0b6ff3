"""The metric names the code really exports, collected from the registries of ``services/metrics.py``."""

from __future__ import annotations

import inspect

from prometheus_client import CollectorRegistry

import services.metrics

PROMETHEUS_OWN = frozenset({"up"})
"""Series Prometheus itself writes for every target (``up`` is 0 when a scrape fails)."""

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}


def metric_sets() -> list[type]:
    """Every ``*Metrics`` class of ``services/metrics.py`` (each takes a registry and registers its metrics)."""
    return [
        cls
        for name, cls in inspect.getmembers(services.metrics, inspect.isclass)
        if name.endswith("Metrics") and cls.__module__ == services.metrics.__name__
    ]


def exported_metric_names() -> set[str]:
    """Every sample name the metric sets can export (``_total``, ``_bucket``, ... included)."""
    names: set[str] = set()
    for cls in metric_sets():
        registry = CollectorRegistry()
        cls(registry)
        for family in registry.collect():
            names.update(family.name + suffix for suffix in _SUFFIXES[family.type])
    return names
