"""The broker's own view of open transactions (``kafkaview.wait_open_transaction``), which the broker
faults wait for, checked against a transactional producer this test drives by hand."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaProducer

from tests.support.kafka import create_topics, random_topic_name
from tests.system import kafkaview

pytestmark = pytest.mark.kafka


async def test_broker_reports_a_transaction_open_from_first_send_until_commit(kafka_bootstrap: str) -> None:
    topic = random_topic_name("open-txn")
    await create_topics(kafka_bootstrap, [topic], partitions=2)
    txn_id, other_id = random_topic_name("txn"), random_topic_name("txn-never-used")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=txn_id)
    await producer.start()
    try:
        assert await kafkaview.open_transactions(kafka_bootstrap, [txn_id, other_id]) == {}
        await producer.begin_transaction()
        await producer.send_and_wait(topic, b"x", partition=1)
        found = await kafkaview.wait_open_transaction(kafka_bootstrap, [txn_id, other_id], within_s=10)
        assert list(found) == [txn_id]
        assert found[txn_id].partitions == {topic: (1,)}
        assert found[txn_id].producer_id >= 0 and found[txn_id].start_ms > 0
        await producer.commit_transaction()
        assert await kafkaview.open_transactions(kafka_bootstrap, [txn_id]) == {}
    finally:
        await producer.stop()


async def test_waiting_for_an_open_transaction_that_never_opens_fails_with_the_ids(kafka_bootstrap: str) -> None:
    ids = [random_topic_name("txn-idle")]
    with pytest.raises(AssertionError, match="no open transaction"):
        await kafkaview.wait_open_transaction(kafka_bootstrap, ids, within_s=0.5)
