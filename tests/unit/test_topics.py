"""``schemas.topics``: the pipeline's topic names."""

from __future__ import annotations

from schemas.topics import dead_letter_source, dead_letter_topic


def test_a_dead_letter_topic_names_the_topic_it_replays_to() -> None:
    assert dead_letter_source(dead_letter_topic("facts")) == "facts"
    assert dead_letter_source(dead_letter_topic("events")) == "events"


def test_a_topic_not_named_like_a_dead_letter_topic_has_no_source() -> None:
    assert dead_letter_source("events-dlq") is None
    assert dead_letter_source(".dlq") is None
