"""``python -m services.setup_topics``: create every topic the pipeline needs, idempotently."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from aiokafka.admin import AIOKafkaAdminClient

from services.config import ProcessorConfig, add_config_arguments, load_config
from services.errors import ConfigError
from services.processor.topics import ensure_topics, pipeline_topics


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m services.setup_topics",
        description=(
            "Create the pipeline's topics if missing: facts, facts.dlq, the reducer's compacted changelog, "
            "events and events.dlq. Existing topics are left alone; a partition-count mismatch is an error "
            "(the state of facts partition P lives in changelog partition P)."
        ),
        epilog="Safe to run any number of times, e.g. as a deployment's init job.",
    )
    parser.add_argument(
        "--partitions",
        type=int,
        default=int(os.environ.get("SETUP_PARTITIONS", "4")),
        help="Partitions of facts, facts.dlq and the changelog [env SETUP_PARTITIONS; default 4].",
    )
    parser.add_argument(
        "--events-partitions",
        type=int,
        default=None,
        help="Partitions of events and events.dlq [env SETUP_EVENTS_PARTITIONS; default: --partitions].",
    )
    parser.add_argument(
        "--replication-factor",
        type=int,
        default=int(os.environ.get("SETUP_REPLICATION_FACTOR", "1")),
        help="Replication factor of new topics [env SETUP_REPLICATION_FACTOR; default 1].",
    )
    add_config_arguments(parser, ProcessorConfig)
    return parser


async def setup(config: ProcessorConfig, partitions: int, events_partitions: int | None, rf: int) -> dict[str, str]:
    admin = AIOKafkaAdminClient(**config.kafka.client_kwargs(client_id="setup-topics"))
    await admin.start()
    try:
        specs = pipeline_topics(
            facts_topic=config.facts_topic,
            events_topic=config.events_topic,
            group_id=config.group_id,
            partitions=partitions,
            events_partitions=events_partitions,
        )
        return await ensure_topics(admin, specs, replication_factor=rf)
    finally:
        await admin.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    events_partitions = args.events_partitions
    if events_partitions is None and os.environ.get("SETUP_EVENTS_PARTITIONS"):
        events_partitions = int(os.environ["SETUP_EVENTS_PARTITIONS"])
    try:
        config = load_config(ProcessorConfig, env=os.environ, args=args)
        outcome = asyncio.run(setup(config, args.partitions, events_partitions, args.replication_factor))
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for name, what in sorted(outcome.items()):
        print(f"{what:8} {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
