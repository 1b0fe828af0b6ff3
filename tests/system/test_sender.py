"""Test 8 (sender under endpoint faults) and test 9 (sender permanent errors).

The loopback endpoint (``tools.demo.endpoint.RecordingEndpoint``) runs in the test process on its
own threads and records every request; reducers and senders are subprocesses. Row identity at the
endpoint is the row's content (see ``tests.system.delivery``).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from schemas.keys import UNROUTED_PREFIX
from tests.system import faults, kafkaview
from tests.system.delivery import check_delivery, check_refusals, check_retry_behaviour
from tests.system.history import read_history
from tests.system.scenario import SENDER_ENV, Run
from tests.system.workload import generate
from tools.demo.endpoint import RandomFailures, ResetConnection, Stall, Throttle, Unavailable
from tools.demo.generator import Workload

pytestmark = pytest.mark.kafka

OUTAGE_S = 60.0
OUTAGE_RETRY_AFTER_S = 2.0
THROTTLE_RETRY_AFTER_S = 1.0


async def test_sender_under_endpoint_faults_loses_nothing_and_honours_retry_after(
    system_run: Callable[..., Awaitable[Run]],
) -> None:
    """503 + Retry-After for 60 s, then 429s (Retry-After), accepted-but-timed-out requests, connection
    resets and random 10 % 5xx until healed; a sender kill -9 during the outage and one after it.
    0 rows lost, 0 duplicates a receiver cannot drop by idempotency key, Retry-After honoured, backoff
    capped, no retry storm, sender lag 0 within 60 s after the outage ends; V1-V8 on the Kafka side."""
    run = await system_run(threads=600)
    endpoint = run.start_endpoint()
    facts = generate(Workload(seed=run.seed, threads=600, concurrency=32))
    await run.setup()
    run.start_reducer("reducer-1")
    run.start_reducer("reducer-2")
    sender = run.start_sender(endpoint.url, **SENDER_ENV)
    run.publish_in_background(facts, rate=400.0, label="load")
    await run.wait_progress(sender, 3)

    outage_start = time.time()
    run.fault_started("endpoint_unavailable", "endpoint", seconds=OUTAGE_S, retry_after=OUTAGE_RETRY_AFTER_S)
    endpoint.add_fault(Unavailable(seconds=OUTAGE_S, retry_after=str(int(OUTAGE_RETRY_AFTER_S))))
    endpoint.add_fault(Throttle(count=4, retry_after=str(int(THROTTLE_RETRY_AFTER_S))))
    endpoint.add_fault(Stall(count=3, seconds=3.0, accept=True))
    endpoint.add_fault(ResetConnection(count=4))
    endpoint.add_fault(RandomFailures(probability=0.1, seed=run.seed, statuses=(500,)))

    await asyncio.sleep(OUTAGE_S / 3)
    await faults.kill9(run, sender)  # it delivered >= 3 batches before the outage
    sender = run.start_sender(endpoint.url, **SENDER_ENV)
    await asyncio.sleep(max(0.0, outage_start + OUTAGE_S - time.time()))
    outage_end = time.time()
    run.fault_ended("endpoint_unavailable", "endpoint")
    outage_end_t = run.history.now()

    await run.wait_progress(sender, 3, within_s=60)
    await faults.kill9(run, sender)
    sender = run.start_sender(endpoint.url, **SENDER_ENV)
    await run.wait_progress(sender, 3, within_s=60)
    await asyncio.sleep(5)  # a stretch of random 5xx with the third sender
    run.fault_started("endpoint_heal", "endpoint")
    endpoint.clear_faults()
    run.fault_ended("endpoint_heal", "endpoint")

    verdict = await run.verify(sender=True, v8=True)
    drained_after_outage = next(
        (e["t"] - outage_end_t for e in _history(run) if e["ev"] == "drained" and e.get("sender")), None
    )
    sender_dlq = await kafkaview.read_all(run.bootstrap, run.events_dlq)
    checks, figures = check_delivery(run.oracle, endpoint.requests, sender_dlq)
    retry_checks, retry_figures = check_retry_behaviour(
        endpoint.requests,
        retry_after_by_fault={"unavailable": OUTAGE_RETRY_AFTER_S, "throttle": THROTTLE_RETRY_AFTER_S},
        interruptions=run.sender_interruptions(),
        request_timeout_s=float(SENDER_ENV["SENDER_REQUEST_TIMEOUT_S"]),
        backoff_cap_s=float(SENDER_ENV["SENDER_BACKOFF_CAP_S"]),
        outage=(outage_start, outage_end),
    )
    for check in [*checks, *retry_checks]:
        verdict.add(check)
        run.history.write("check", name=check.name, ok=check.ok, detail=check.detail)
    for name, value in {**figures, **retry_figures}.items():
        run.history.figure(name, value)
    run.history.figure(
        "sender_drain_after_outage_s", None if drained_after_outage is None else round(drained_after_outage, 2), "s"
    )
    run.history.figure("statuses", str(endpoint.stats()["statuses"]))
    run.assert_ok(verdict)
    assert drained_after_outage is not None and drained_after_outage <= 60, (
        f"sender lag reached 0 {drained_after_outage} s after the outage ended -- {run.history.describe()}"
    )


def _history(run: Run) -> list[dict[str, Any]]:
    return read_history(run.history.path)


async def test_rows_the_endpoint_refuses_are_dead_lettered_after_at_most_one_retry(
    system_run: Callable[..., Awaitable[Run]],
) -> None:
    """The endpoint answers 400 to any request holding a row of thread A, 422 for thread B and 413 for
    thread C. Rows of A and B reach the dead-letter topic with their status and a response excerpt,
    their batches having been retried at most once; batches holding C's rows are split until C's rows
    travel alone (each dead-lettered after a single-row 413). Every other row is delivered:
    delivered + dead-lettered == total, nothing twice. V1-V8 on the Kafka side."""
    run = await system_run(threads=300)
    endpoint = run.start_endpoint()
    facts = generate(Workload(seed=run.seed, threads=300, concurrency=32))
    families = Counter(f.key for f in facts if f.key is not None and not f.key.startswith(UNROUTED_PREFIX))
    thread_a, thread_b, thread_c = (key for key, _ in families.most_common(3))
    refused = {thread_a: 400, thread_b: 422, thread_c: 413}
    for thread, status in refused.items():
        endpoint.reject_rows(status, thread_ids=[thread])
    run.history.write("refusing", threads=refused)
    await run.setup()
    run.start_reducer("reducer-1")
    run.start_sender(endpoint.url, **SENDER_ENV)
    await run.publisher.publish(facts, label="all")
    verdict = await run.verify(sender=True, v8=True)
    sender_dlq = await kafkaview.read_all(run.bootstrap, run.events_dlq)
    requests = endpoint.requests
    checks, figures = check_delivery(run.oracle, requests, sender_dlq)
    for check in checks:
        verdict.add(check)

    assert run.oracle is not None
    for check in check_refusals(run.oracle, requests, sender_dlq, refused):
        verdict.add(check)
    for check in verdict.checks[-len(checks) - 3 :]:
        run.history.write("check", name=check.name, ok=check.ok, detail=check.detail)
    for name, value in figures.items():
        run.history.figure(name, value)
    run.assert_ok(verdict)
