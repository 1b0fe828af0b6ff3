"""The refactoring guard (#15): the processor's batch path produces byte-identical rows, changelog records and
dead letters for the bench workload. The digests were recorded at main before the redesign; a change that
moves one of them changed the output on ``events``, the changelog or ``facts.dlq`` (see tests/support/digest.py)."""

from __future__ import annotations

import pytest

from tests.support.digest import workload_digest

RECORDED = {
    (40, 2): "637e8db7d8c4f0aaea804ce3b8bc8880370460a5dded4aa69e463e35cebfd904",
    (400, 3): "7ff60d27e929c7c3908c9aa0975ebe35b3035e6f2345e4eade18b030216a80c4",
}


@pytest.mark.parametrize(("threads", "copies"), sorted(RECORDED))
def test_processor_batch_path_output_is_byte_identical_to_the_recorded_digest(threads: int, copies: int) -> None:
    assert workload_digest(threads=threads, copies=copies) == RECORDED[threads, copies]
