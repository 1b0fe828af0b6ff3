"""The generator side of a run: a seeded :class:`tools.demo.generator.Workload`, published at a
chosen rate through the real :class:`services.producer.FactPublisher`, with a ledger of what was sent.

Oversized poison (more than 1 MiB) cannot pass through ``FactPublisher`` (its producer keeps aiokafka's
1 MiB request limit), so those few records go through a side producer with a larger limit, to a facts
topic created with a larger ``max.message.bytes``: the point is to see what the *reducer* does with them.

The ledger is the generator's own account, independent of Kafka: how many records, which were poison
(and why), and a digest of every value, so the verifier can check that the facts topic holds exactly
what was sent (broadcasts once per partition), and that the dead-letter topic holds exactly the poison.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer

from services.config import KafkaSettings
from services.producer import BROADCAST, FactPublisher
from tests.system.history import History
from tools.demo.generator import GeneratedFact, Workload

BIG_REQUEST_BYTES = 4 * 1024 * 1024
FLUSH_TIMEOUT_S = 120.0


@dataclass
class Ledger:
    """What the generator handed to Kafka (acknowledged), one entry per generated record."""

    partitions: int
    sent: int = 0
    broadcasts: int = 0
    poison: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    digests: Counter[str] = field(default_factory=Counter)
    """sha1 of each value -> how many copies the facts topic must hold (broadcasts: one per partition)."""
    poison_digests: Counter[str] = field(default_factory=Counter)

    def add_raw(self, value: bytes | None, kind: str) -> None:
        """One record published as raw bytes (``Publisher.send_raw``): a hostile fact, maybe a tombstone."""
        self.sent += 1
        self.kinds[kind] += 1
        self.digests[hashlib.sha1(value or b"").hexdigest()] += 1

    def add(self, fact: GeneratedFact) -> None:
        self.sent += 1
        self.kinds[fact.kind] += 1
        copies = self.partitions if fact.key is None else 1
        if fact.key is None:
            self.broadcasts += 1
        digest = hashlib.sha1(fact.value).hexdigest()
        self.digests[digest] += copies
        if fact.poison is not None:
            self.poison[fact.poison] += copies
            self.poison_digests[digest] += copies

    @property
    def records(self) -> int:
        """Records the facts topic must hold."""
        return sum(self.digests.values())


def generate(workload: Workload) -> list[GeneratedFact]:
    return list(workload.facts())


class Publisher:
    """Publish generated facts at ``rate`` facts/s (``None``: as fast as possible), recording the ledger."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, history: History) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.history = history
        self.ledger = Ledger(partitions=partitions)
        self.done_at: float | None = None
        self._publisher = FactPublisher(
            kafka=KafkaSettings(bootstrap_servers=bootstrap), topic=topic, producer_id="system-test", buffer_size=10**7
        )
        self._big: AIOKafkaProducer | None = None
        self._started = False

    @property
    def fact_publisher(self) -> FactPublisher:
        """The real ``FactPublisher`` (its ``failed`` / ``refused`` counters are worth recording)."""
        return self._publisher

    async def start(self) -> None:
        await self._publisher.start()
        self._started = True

    async def close(self) -> None:
        if self._started:
            await self._publisher.close()
            self._started = False
        if self._big is not None:
            await self._big.stop()
            self._big = None

    async def publish(self, facts: Sequence[GeneratedFact], *, rate: float | None = None, label: str = "") -> None:
        """Publish ``facts`` in order, pacing to ``rate``/s, and wait until all are acknowledged."""
        started = time.monotonic()
        self.history.write("publish", label=label, facts=len(facts), rate=rate)
        chunk = 200 if rate is None else max(1, int(rate / 20))
        for index in range(0, len(facts), chunk):
            for fact in facts[index : index + chunk]:
                await self._one(fact)
            if rate is not None:
                due = started + (index + chunk) / rate
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            else:
                await asyncio.sleep(0)
        # FactPublisher.flush() polls its buffer with no deadline; a dead drain task would hang it forever.
        await asyncio.wait_for(self._publisher.flush(), timeout=FLUSH_TIMEOUT_S)
        if self._big is not None:
            await asyncio.wait_for(self._big.flush(), timeout=FLUSH_TIMEOUT_S)
        self.done_at = self.history.write(
            "publish_done", label=label, facts=len(facts), seconds=round(time.monotonic() - started, 2)
        )

    async def start_big(self) -> None:
        """The side producer for records over 1 MiB (see the module docstring)."""
        if self._big is None:
            self._big = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap,
                enable_idempotence=True,
                acks="all",
                max_request_size=BIG_REQUEST_BYTES,
            )
            await self._big.start()

    async def send_raw(self, key: bytes | None, value: bytes | None, *, kind: str) -> asyncio.Future[Any]:
        """Publish raw bytes (``None``: a tombstone) the way a buggy producer would, with the side producer
        (records up to 4 MiB); recorded in the ledger. Returns the future of its ``RecordMetadata``
        (partition and offset), resolved once the broker acknowledged it."""
        await self.start_big()
        assert self._big is not None
        future: asyncio.Future[Any] = await self._big.send(self.topic, value, key=key)
        self.ledger.add_raw(value, kind)
        return future

    async def flush_raw(self) -> None:
        """Wait until everything :meth:`send_raw` sent is acknowledged."""
        if self._big is not None:
            await asyncio.wait_for(self._big.flush(), timeout=FLUSH_TIMEOUT_S)

    async def send_big(self, key: bytes | None, value: bytes) -> None:
        await self.start_big()
        assert self._big is not None
        await self._big.send_and_wait(self.topic, value, key=key)

    async def _one(self, fact: GeneratedFact) -> None:
        if fact.poison == "oversized":
            await self.send_big(None if fact.key is None else fact.key.encode(), fact.value)
        else:
            key: object = BROADCAST if fact.key is None else fact.key.encode()
            if not self._publisher.publish_encoded(key, fact.value):
                raise AssertionError("FactPublisher refused a fact (buffer full): the harness buffer is too small")
        self.ledger.add(fact)


def split(facts: Sequence[GeneratedFact], *fractions: float) -> list[list[GeneratedFact]]:
    """Cut ``facts`` into consecutive parts at the given fractions (e.g. ``split(f, 0.5)`` -> two halves)."""
    cuts = [0, *(int(len(facts) * f) for f in fractions), len(facts)]
    return [list(facts[a:b]) for a, b in itertools.pairwise(cuts)]


def count_poison(facts: Iterable[GeneratedFact]) -> Counter[str]:
    return Counter(f.poison for f in facts if f.poison is not None)
