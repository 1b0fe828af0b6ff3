"""The processor's Kafka clients, built by its composition root and handed in (as the sender's are).

:func:`kafka_clients` builds them from the configuration; tests hand in their own. The processor starts
and stops the consumers and the admin client it is given, and starts one transactional producer per
assigned partition from :attr:`ProcessorClients.producer` (a partition's producer lives as long as the
partition is owned, so it cannot be made up front).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from services.config import ProcessorConfig
from services.processor.partition import restore_consumer
from services.processor.topics import transactional_id

ProducerFactory = Callable[[int, int, int], AIOKafkaProducer]
"""``(partition, max_batch_size, max_request_size)`` -> the (not started) transactional producer of an
input partition. Its ``transactional_id`` must be the same for the partition on every host and restart."""


@dataclass
class ProcessorClients:
    consumer: AIOKafkaConsumer
    """The group consumer of the facts topic (``read_committed``, no auto-commit)."""
    restorer: AIOKafkaConsumer
    """A group-less consumer that reads changelog partitions (:func:`.partition.restore_consumer`)."""
    admin: AIOKafkaAdminClient
    """Reads the topics' limits once at start (:mod:`.broker_limits`)."""
    producer: ProducerFactory


def heartbeat_s(config: ProcessorConfig) -> float:
    """The group heartbeat interval: a fifth of the session timeout, at least one second."""
    return max(1000, config.session_timeout_ms // 5) / 1000


def kafka_clients(config: ProcessorConfig, client_id: str) -> ProcessorClients:
    """The clients of a processor named ``client_id``, as configured."""
    kafka = config.kafka

    def producer(partition: int, max_batch_size: int, max_request_size: int) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            **kafka.client_kwargs(client_id=f"{client_id}-p{partition}"),
            transactional_id=transactional_id(config.transactional_id_prefix, config.facts_topic, partition),
            enable_idempotence=True,
            acks="all",
            transaction_timeout_ms=config.transaction_timeout_ms,
            linger_ms=5,
            max_batch_size=max_batch_size,
            max_request_size=max_request_size,
        )

    return ProcessorClients(
        consumer=AIOKafkaConsumer(
            **kafka.client_kwargs(client_id=client_id),
            group_id=config.group_id,
            group_instance_id=config.group_instance_id,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            session_timeout_ms=config.session_timeout_ms,
            heartbeat_interval_ms=int(heartbeat_s(config) * 1000),
            max_poll_interval_ms=max(60_000, config.session_timeout_ms * 4),
        ),
        restorer=restore_consumer(**kafka.client_kwargs(client_id=f"{client_id}-restore")),
        admin=AIOKafkaAdminClient(**kafka.client_kwargs(client_id=f"{client_id}-admin")),
        producer=producer,
    )
