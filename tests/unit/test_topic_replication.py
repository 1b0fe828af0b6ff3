"""Replication of the pipeline's topics (``schemas.topics``) and of the local cluster's nodes
(``tools.localkafka.BrokerConfig``), without a broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.topics import pipeline_topics
from tools.kafkacluster import node_configs


def topics(**options: int) -> list[tuple[int, str | None]]:
    specs = pipeline_topics(facts_topic="f", events_topic="e", group_id="g", partitions=2, **options)
    return [(spec.replication_factor, spec.configs.get("min.insync.replicas")) for spec in specs]


def test_every_pipeline_topic_gets_the_replication_factor_and_min_isr_2_from_3_replicas() -> None:
    assert topics(replication_factor=3) == [(3, "2")] * 5
    assert topics(replication_factor=3, min_insync=3) == [(3, "3")] * 5
    assert topics(replication_factor=2) == [(2, "1")] * 5
    assert topics() == [(1, None)] * 5


@pytest.mark.parametrize(("rf", "isr"), [(0, None), (3, 4), (3, 0)])
def test_an_impossible_replication_setting_is_refused(rf: int, isr: int | None) -> None:
    with pytest.raises(ValueError, match=r"replication factor|min\.insync\.replicas"):
        pipeline_topics(
            facts_topic="f", events_topic="e", group_id="g", partitions=1, replication_factor=rf, min_insync=isr
        )


def test_each_cluster_node_is_a_voter_of_one_quorum_with_internal_topics_replicated_3_times(tmp_path: Path) -> None:
    configs = node_configs(tmp_path, [(9001, 9002), (9003, 9004), (9005, 9006)], cluster_id="c")
    properties = [config.server_properties() for config in configs]
    assert [p["node.id"] for p in properties] == ["1", "2", "3"]
    voters = "1@127.0.0.1:9002,2@127.0.0.1:9004,3@127.0.0.1:9006"
    assert {p["controller.quorum.voters"] for p in properties} == {voters}
    assert properties[1]["listeners"] == "PLAINTEXT://127.0.0.1:9003,CONTROLLER://127.0.0.1:9004"
    for p in properties:
        assert p["offsets.topic.replication.factor"] == p["transaction.state.log.replication.factor"] == "3"
        assert p["default.replication.factor"] == "3"
        assert p["transaction.state.log.min.isr"] == p["min.insync.replicas"] == "2"
    assert {config.cluster_id for config in configs} == {"c"}
