"""The bench workload: seeded copies of :class:`tools.demo.generator.Workload`, one per repeat.

Copy ``i`` uses seed ``plan.seed + i`` (so its thread ids differ from every other copy's) and starts
one second of fact time after copy ``i - 1`` ended, so a processor that keeps its state across repeats
sees time move forward and never expires a family because of the bench itself.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgspec

from tools.bench.plan import Plan
from tools.demo.generator import DEFAULT_START_MS, Workload


class _Time(msgspec.Struct):
    observed_at_ms: int


_time_decoder = msgspec.json.Decoder(_Time)


@dataclass
class Copy:
    """One repeat's facts, ready to publish: ``(key, value)``; key ``None`` is a broadcast."""

    index: int
    facts: list[tuple[bytes | None, bytes]]
    kinds: Counter[str] = field(default_factory=Counter)
    last_ms: int = 0

    @property
    def values(self) -> list[bytes]:
        return [value for _key, value in self.facts]

    @property
    def bytes(self) -> int:
        return sum(len(value) for _key, value in self.facts)


def workload(
    plan: Plan, *, seed: int, threads: int | None = None, start_ms: int = DEFAULT_START_MS, **extra: Any
) -> Workload:
    options: dict[str, Any] = {
        "concurrency": plan.concurrency,
        "turns_per_thread": plan.turns_per_thread,
        "items_per_turn": plan.items_per_turn,
    }
    options.update(extra)
    return Workload(seed, plan.threads if threads is None else threads, start_ms=start_ms, **options)


def make_copies(plan: Plan, count: int, *, first_index: int = 0, start_ms: int = DEFAULT_START_MS) -> list[Copy]:
    copies: list[Copy] = []
    for index in range(first_index, first_index + count):
        generated = list(workload(plan, seed=plan.seed + index, start_ms=start_ms).facts())
        facts = [(None if fact.key is None else fact.key.encode(), fact.value) for fact in generated]
        kinds = Counter(fact.kind.split(":", 1)[0] for fact in generated)
        last_ms = max(_time_decoder.decode(value).observed_at_ms for _key, value in facts[-50:])
        copies.append(Copy(index, facts, kinds, last_ms))
        start_ms = last_ms + 1000
    return copies


def describe(copy: Copy, plan: Plan) -> dict[str, Any]:
    return {
        "facts": len(copy.facts),
        "threads": plan.threads,
        "concurrency": plan.concurrency,
        "mean_fact_bytes": round(copy.bytes / max(1, len(copy.facts)), 1),
        "kinds": dict(copy.kinds.most_common()),
    }
