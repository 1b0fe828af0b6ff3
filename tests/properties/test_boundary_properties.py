"""Properties of the containment boundary (``reducer.boundary``) over generated streams (hypothesis).

A reducer bug is injected for chosen facts (the handler changes the family half-way, then raises) and the
record limit is set low enough that big families hit it. Then, whatever the batch sizes:

* every fact has exactly one outcome (reduced or refused), and a refused fact is refused for the same
  reason however the stream is cut into batches;
* the rows and the final state are exactly those of a run that never saw the refused facts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import reducer.core
from reducer.boundary import PartitionReducer
from reducer.limits import Limits
from reducer.snapshot import snapshot
from tools.demo.generator import Workload

TTL = 24 * 3600 * 1000
SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def bug_on_marked_facts(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[int]]:
    """Facts whose ``observed_at_ms`` is in the yielded set make the reducer damage their family and raise."""
    marked: set[int] = set()
    real = reducer.core._family

    def family(state: Any, envelope: Any) -> Any:
        found = real(state, envelope)
        if envelope.observed_at_ms in marked:
            found.last_seen_ms = -1
            found.threads = {}
            raise RuntimeError("injected reducer bug")
        return found

    monkeypatch.setattr(reducer.core, "_family", family)
    yield marked


def _run(values: list[bytes], cuts: list[int], limits: Limits) -> tuple[list[bytes], dict[int, str], dict[str, bytes]]:
    partition = PartitionReducer(idle_ttl_ms=TTL, limits=limits)
    rows: list[bytes] = []
    refused: dict[int, str] = {}
    start = 0
    for end in [*sorted(set(cuts)), len(values)]:
        if end <= start:
            continue
        result = partition.run(values[start:end])
        rows += [row.value for row in result.rows]
        refused.update({start + refusal.position: refusal.reason for refusal in result.refused})
        assert result.reduced + len(result.refused) == end - start, "every fact has exactly one outcome"
        start = end
    return rows, refused, snapshot(partition.state)


@SETTINGS
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    threads=st.integers(min_value=1, max_value=8),
    data=st.data(),
)
def test_refused_facts_leave_no_trace_and_batch_cuts_change_nothing(
    bug_on_marked_facts: set[int], seed: int, threads: int, data: st.DataObject
) -> None:
    facts = list(Workload(seed, threads, concurrency=3).facts())
    values = [fact.value for fact in facts]
    times = sorted({int(value.split(b'"observed_at_ms":')[1].split(b",")[0]) for value in values})
    bug_on_marked_facts.clear()
    bug_on_marked_facts.update(data.draw(st.sets(st.sampled_from(times), max_size=4)))
    limits = Limits(max_record_bytes=data.draw(st.sampled_from([600, 900, 3_000, 1_000_000])))
    cuts = data.draw(st.lists(st.integers(min_value=0, max_value=len(values)), max_size=8))

    whole_rows, whole_refused, whole_state = _run(values, [], limits)
    cut_rows, cut_refused, cut_state = _run(values, cuts, limits)

    assert cut_refused == whole_refused
    assert cut_rows == whole_rows
    assert cut_state == whole_state
    bug_on_marked_facts.clear()
    kept = [value for position, value in enumerate(values) if position not in whole_refused]
    clean_rows, clean_refused, clean_state = _run(kept, [], limits)
    assert clean_refused == {}, "without the refused facts nothing is refused"
    assert clean_rows == whole_rows
    assert clean_state == whole_state
