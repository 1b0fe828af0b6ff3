"""The local 3-node cluster (``tools.kafkacluster``, fixture ``kafka_cluster``) replicates what the pipeline
writes: ``setup-topics --replication-factor 3`` gives every pipeline topic 3 replicas and
``min.insync.replicas=2``, Kafka's internal topics (group offsets, transaction state) have 3 replicas, and the
CLI reports the cluster through its pid files. The fault tests on it are in tests/system/test_cluster_faults.py.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from schemas.topics import changelog_topic, dead_letter_topic
from tests.support.kafka import admin_client, random_topic_name
from tools.kafkacluster import ClusterHandle
from tools.localkafka import REPO_ROOT

pytestmark = pytest.mark.kafka


async def replicas_and_min_isr(bootstrap: str, topics: list[str]) -> dict[str, tuple[set[int], str | None]]:
    """Topic -> (replica counts of its partitions, its ``min.insync.replicas``)."""
    async with admin_client(bootstrap) as admin:
        described = await admin.describe_topics(topics)
        configs = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t) for t in topics])
    min_isr: dict[str, str | None] = {}
    for response in configs:
        for resource in response.resources:
            entries = {entry[0]: entry[1] for entry in resource[4]}
            min_isr[resource[3]] = entries.get("min.insync.replicas")
    return {t["topic"]: ({len(p["replicas"]) for p in t["partitions"]}, min_isr.get(t["topic"])) for t in described}


async def test_setup_topics_with_replication_factor_3_gives_every_pipeline_topic_3_replicas_and_min_isr_2(
    kafka_cluster: ClusterHandle,
) -> None:
    facts, events, group = random_topic_name("rf3-facts"), random_topic_name("rf3-events"), random_topic_name("g")
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_cluster.bootstrap,
        "PROCESSOR_FACTS_TOPIC": facts,
        "PROCESSOR_EVENTS_TOPIC": events,
        "PROCESSOR_GROUP_ID": group,
    }
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.setup_topics", "--partitions", "2", "--replication-factor", "3"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    names = [facts, dead_letter_topic(facts), changelog_topic(group, facts), events, dead_letter_topic(events)]
    found = await replicas_and_min_isr(kafka_cluster.bootstrap, names)
    assert found == dict.fromkeys(names, ({3}, "2")), found


async def test_internal_topics_of_groups_and_transactions_have_3_replicas(kafka_cluster: ClusterHandle) -> None:
    topic = random_topic_name("internal")
    async with admin_client(kafka_cluster.bootstrap) as admin:
        await admin.create_topics([NewTopic(topic, 1, 3)])
    producer = AIOKafkaProducer(bootstrap_servers=kafka_cluster.bootstrap, transactional_id=f"t-{uuid.uuid4().hex}")
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send_and_wait(topic, b"x")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka_cluster.bootstrap, group_id=f"g-{uuid.uuid4().hex}")
    await consumer.start()
    try:
        await consumer.getmany(timeout_ms=5000)
        await consumer.commit()
    finally:
        await consumer.stop()
    found = await replicas_and_min_isr(kafka_cluster.bootstrap, ["__consumer_offsets", "__transaction_state"])
    assert found["__consumer_offsets"][0] == {3}, found
    assert found["__transaction_state"] == ({3}, "2"), found


def test_cli_cluster_status_lists_the_three_running_nodes(kafka_cluster: ClusterHandle) -> None:
    base_dir = kafka_cluster.nodes[0].config.data_dir.parent
    result = subprocess.run(
        [sys.executable, "-m", "tools.localkafka", "cluster", "status", "--data-dir", str(base_dir)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("running, pid") == 3, result.stdout
    assert f"bootstrap {kafka_cluster.bootstrap}" in result.stdout
