"""The reliability suite's hooks into the processor: crash points and deliberately broken commit variants.

Test scaffolding, kept out of the product (:mod:`services.processor.hooks` defines only the seam).

* :class:`CrashPoints`: ``os._exit`` at a named step (:data:`services.processor.hooks.STEPS`), the n-th
  time it is reached, with status :data:`CRASH_EXIT_CODE`, like ``kill -9``: no cleanup, no flush.
* Negative controls (:data:`NEGATIVE_CONTROLS`), commit variants the verifier must catch:
  ``offsets_outside_txn`` commits the input offset through the consumer instead of the transaction (a
  crash before the commit loses rows); ``rows_outside_txn`` produces the rows with a plain producer
  outside the transaction (a crash before the commit duplicates them).

A processor subprocess gets them with ``RA_PROCESSOR_HOOKS=tests.support.processor_hooks:from_env`` and
``RA_CRASH_AT=<step>:<n>`` / ``RA_NEGATIVE_CONTROL=<variant>`` (see :func:`from_env`); an in-process test
passes ``hooks=CrashPoints(...)`` to the :class:`~services.processor.service.Processor`.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any, Final

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.config import ProcessorConfig
from services.processor.clients import ProcessorClients
from services.processor.hooks import STEPS, ProcessorHooks
from services.processor.transaction import Destinations, Offsets, Pending, Row, Transaction

CRASH_EXIT_CODE: Final = 86
NEGATIVE_CONTROLS: Final = ("offsets_outside_txn", "rows_outside_txn")
PROCESSOR_HOOKS: Final = "tests.support.processor_hooks:from_env"
"""The entry point a processor subprocess loads (``RA_PROCESSOR_HOOKS``)."""


class CrashPoints(ProcessorHooks):
    """Counts arrivals at each step and exits at the configured one (``<step>[:<n>]``; ``None``: never)."""

    def __init__(self, spec: str | None) -> None:
        self._step: str | None = None
        self._remaining = 0
        if spec:
            step, _, count = spec.partition(":")
            if step not in STEPS:
                raise ValueError(f"unknown crash step {step!r}; known: {', '.join(STEPS)}")
            self._step = step
            self._remaining = int(count or "1")

    def reached(self, step: str) -> None:
        if step != self._step:
            return
        self._remaining -= 1
        if self._remaining <= 0:
            sys.stderr.write(f"crash point {step} reached: exiting with {CRASH_EXIT_CODE}\n")
            sys.stderr.flush()
            os._exit(CRASH_EXIT_CODE)


class OffsetsOutsideTransaction(Transaction):
    """Broken on purpose: the input offset is committed through the group consumer, before the transaction."""

    def __init__(self, hooks: ProcessorHooks, consumer: AIOKafkaConsumer) -> None:
        super().__init__(hooks)
        self.consumer = consumer

    async def add_offsets(self, producer: AIOKafkaProducer, offsets: Offsets, to: Destinations, sent: Pending) -> None:
        if sent:
            await asyncio.gather(*sent)
        await self.consumer.commit(offsets)


class RowsOutsideTransaction(Transaction):
    """Broken on purpose: the rows are produced (and acknowledged) by a plain producer, outside the transaction."""

    def __init__(self, hooks: ProcessorHooks, producer: AIOKafkaProducer) -> None:
        super().__init__(hooks)
        self.plain = producer
        self._started = False

    async def send_rows(self, producer: AIOKafkaProducer, rows: list[Row], to: Destinations) -> Pending:
        if not self._started:
            await self.plain.start()
            self._started = True
        await asyncio.gather(*[await self.plain.send(to.events_topic, v, key=k, headers=h) for k, v, h in rows])
        return []


def from_env(*, config: ProcessorConfig, clients: ProcessorClients) -> dict[str, Any]:
    """The ``Processor`` keyword arguments ``RA_CRASH_AT`` and ``RA_NEGATIVE_CONTROL`` ask for (entry point)."""
    hooks = CrashPoints(os.environ.get("RA_CRASH_AT") or None)
    negative = os.environ.get("RA_NEGATIVE_CONTROL") or None
    if negative is None:
        return {"hooks": hooks}
    transaction: Transaction
    if negative == "offsets_outside_txn":
        transaction = OffsetsOutsideTransaction(hooks, clients.consumer)
    elif negative == "rows_outside_txn":
        plain = AIOKafkaProducer(**config.kafka.client_kwargs(client_id="reducer-unsafe"), acks="all")
        transaction = RowsOutsideTransaction(hooks, plain)
    else:
        raise ValueError(f"unknown negative control {negative!r}; known: {NEGATIVE_CONTROLS}")
    structlog.get_logger("processor").warning("negative_control_active", mode=negative)
    return {"hooks": hooks, "transaction": transaction}
