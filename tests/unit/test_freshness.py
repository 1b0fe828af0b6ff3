"""services.freshness: the age a stage exports for its oldest unfinished record, computed when scraped."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge

from services.freshness import OldestUnfinished, age_s


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def exported(registry: CollectorRegistry) -> dict[str, float]:
    return {
        sample.labels["partition"]: sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == "age_seconds"
    }


def test_the_exported_age_grows_with_the_clock_until_the_record_is_finished_and_goes_with_the_partition() -> None:
    registry = CollectorRegistry()
    clock = Clock(1_000.0)
    oldest = OldestUnfinished(Gauge("age_seconds", "", ["partition"], registry=registry), clock)
    oldest.set(3, 990_000)  # a record stamped 10 s ago
    oldest.set(4, None)  # nothing held
    assert exported(registry) == {"3": 10.0, "4": 0.0}
    clock.now += 5  # stuck: the age keeps growing between updates
    assert exported(registry) == {"3": 15.0, "4": 0.0}
    oldest.set(3, None)
    assert exported(registry) == {"3": 0.0, "4": 0.0}
    oldest.forget(3)
    oldest.forget(7)  # never seen: nothing to remove
    assert exported(registry) == {"4": 0.0}


def test_a_record_from_the_future_or_without_timestamp_is_not_older_than_zero() -> None:
    assert age_s(2_000_000, now_s=1_000.0) == 0.0
    assert age_s(-1, now_s=1_000.0) is None
    assert age_s(None, now_s=1_000.0) is None
    assert age_s(999_500, now_s=1_000.0) == 0.5
