"""``setup-topics``: create every topic the pipeline needs, idempotently, with the broker's own errors.

Topics and their default configs come from :func:`services.processor.topics.pipeline_topics` (the dead-letter
topics keep 30 days, the changelog is compacted). ``--config TOPIC:KEY=VALUE`` adds or overrides a config of
one topic at creation (repeatable); topics that already exist are left as they are (change their configs
with ``kafka-configs --alter``). Every input is checked before the broker is asked, and a broker refusal is
reported at once, in the broker's words (``InvalidReplicationFactorError: Replication factor: 3 larger than
available brokers: 1``), with exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from types import MappingProxyType
from typing import NamedTuple, TextIO

from aiokafka.admin import AIOKafkaAdminClient

from schemas.topics import TopicSpec, pipeline_topics
from services.cli import UsageError, command_parser, run_command, start_client
from services.config import ProcessorConfig, add_config_arguments, instance_client_id, load_config
from services.kafka_errors import check_kafka_access
from services.processor.topics import ensure_topics

__all__ = ["SetupArgs", "build_parser", "main", "parse_topic_config", "plan_topics", "read_args", "setup"]

_SETTINGS = ("kafka", "facts_topic", "events_topic", "group_id")
"""The processor settings setup-topics reads (the changelog's name derives from the group and facts topic)."""


def parse_topic_config(text: str) -> tuple[str, str, str]:
    """``TOPIC:KEY=VALUE`` -> ``(topic, key, value)``; :class:`UsageError` when it is not of that form."""
    topic, sep, assignment = text.partition(":")
    key, eq, value = assignment.partition("=")
    if not (topic and sep and key and eq):
        raise UsageError(f"--config expects TOPIC:KEY=VALUE (e.g. facts.dlq:retention.ms=86400000), got {text!r}")
    return topic, key, value


def _positive(name: str, flag: str, value: str | int | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise UsageError(f"{name} (flag {flag}) must be a whole number >= 1, got {value!r}") from None
    if number < 1:
        raise UsageError(f"{name} (flag {flag}) must be >= 1, got {number}")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "setup-topics",
        description=(
            "Create the pipeline's topics if missing: facts, facts.dlq, the reducer's compacted changelog, "
            "events and events.dlq.\nExisting topics are left alone; a partition-count mismatch is an error "
            "(the state of facts partition P lives in changelog partition P)."
        ),
        epilog=(
            "Safe to run any number of times, e.g. as a deployment's init job.\n\n"
            "examples:\n"
            "  setup-topics --partitions 12 --replication-factor 3\n"
            "  setup-topics --config facts.dlq:retention.ms=1209600000 --config facts:min.insync.replicas=2"
        ),
    )
    parser.add_argument(
        "--partitions",
        help="Partitions of facts, facts.dlq and the changelog (>= 1) [env SETUP_PARTITIONS; default 4].",
    )
    parser.add_argument(
        "--events-partitions",
        help="Partitions of events and events.dlq [env SETUP_EVENTS_PARTITIONS; default: --partitions].",
    )
    parser.add_argument(
        "--replication-factor",
        help="Replication factor of new topics (>= 1) [env SETUP_REPLICATION_FACTOR; default 1; 3 on a cluster].",
    )
    parser.add_argument(
        "--min-insync-replicas",
        help=(
            "min.insync.replicas of new topics when the replication factor is above 1 "
            "[env SETUP_MIN_INSYNC_REPLICAS; default 2 from replication factor 3 on, else 1]."
        ),
    )
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="TOPIC:KEY=VALUE",
        help="A topic config for a topic created now (repeatable), e.g. events.dlq:retention.ms=604800000.",
    )
    add_config_arguments(parser, ProcessorConfig, title="pipeline settings (shared with the processor)", only=_SETTINGS)
    return parser


class SetupArgs(NamedTuple):
    """What the command line and ``SETUP_*`` variables ask for, checked."""

    partitions: int
    events_partitions: int | None = None
    replication_factor: int = 1
    min_insync: int | None = None
    """``min.insync.replicas`` asked for; ``None``: :func:`schemas.topics.min_insync_replicas`."""
    overrides: Mapping[str, Mapping[str, str]] = MappingProxyType({})
    """``--config`` values: ``{topic: {key: value}}``."""


def read_args(args: argparse.Namespace, env: Mapping[str, str]) -> SetupArgs:
    """Check the flags and ``SETUP_*`` variables (a flag wins); :class:`UsageError` names the bad one."""
    partitions = _positive("SETUP_PARTITIONS", "--partitions", args.partitions or env.get("SETUP_PARTITIONS"))
    events_partitions = _positive(
        "SETUP_EVENTS_PARTITIONS", "--events-partitions", args.events_partitions or env.get("SETUP_EVENTS_PARTITIONS")
    )
    rf = _positive(
        "SETUP_REPLICATION_FACTOR",
        "--replication-factor",
        args.replication_factor or env.get("SETUP_REPLICATION_FACTOR"),
    )
    min_insync = _positive(
        "SETUP_MIN_INSYNC_REPLICAS",
        "--min-insync-replicas",
        args.min_insync_replicas or env.get("SETUP_MIN_INSYNC_REPLICAS"),
    )
    overrides: dict[str, dict[str, str]] = {}
    for text in args.config:
        topic, key, value = parse_topic_config(text)
        overrides.setdefault(topic, {})[key] = value
    return SetupArgs(partitions or 4, events_partitions, rf or 1, min_insync, overrides)


def plan_topics(config: ProcessorConfig, wanted: SetupArgs) -> list[TopicSpec]:
    """The pipeline's topics as ``wanted``, its ``--config`` overrides added to their default configs."""
    try:
        specs = pipeline_topics(
            facts_topic=config.facts_topic,
            events_topic=config.events_topic,
            group_id=config.group_id,
            partitions=wanted.partitions,
            events_partitions=wanted.events_partitions,
            replication_factor=wanted.replication_factor,
            min_insync=wanted.min_insync,
        )
    except ValueError as error:
        raise UsageError(f"{error} (flags --replication-factor, --min-insync-replicas)") from None
    by_name = {spec.name: spec for spec in specs}
    for topic, configs in wanted.overrides.items():
        if topic not in by_name:
            raise UsageError(
                f"--config {topic}:...: {topic!r} is not one of the pipeline's topics: {', '.join(by_name)}"
            )
        by_name[topic] = replace(by_name[topic], configs={**by_name[topic].configs, **configs})
    return list(by_name.values())


async def setup(config: ProcessorConfig, wanted: SetupArgs) -> dict[str, str]:
    """Ensure the pipeline's topics exist (:func:`plan_topics`); ``{topic: "created" | "exists"}``."""
    specs = plan_topics(config, wanted)
    await check_kafka_access(config.kafka)
    async with contextlib.AsyncExitStack() as stack:
        admin = await start_client(
            stack, AIOKafkaAdminClient(**config.kafka.client_kwargs(client_id=instance_client_id("setup-topics")))
        )
        return await ensure_topics(admin, specs)


async def _main(args: argparse.Namespace, env: Mapping[str, str], out: TextIO) -> int:
    config = load_config(ProcessorConfig, env=env, args=args)
    wanted = read_args(args, env)
    outcome = await setup(config, wanted)
    for name, what in sorted(outcome.items()):
        out.write(f"{what:8} {name}\n")
    return 0


def main(argv: Sequence[str] | None = None, *, env: Mapping[str, str] | None = None, out: TextIO | None = None) -> int:
    """Run the command; returns its exit code (:mod:`services.exitcodes`). ``env`` and ``out`` are for tests."""
    return run_command("setup-topics", build_parser, _main, argv, env=env, out=out)


if __name__ == "__main__":
    raise SystemExit(main())
