"""``python -m services.processor``: the reducer service's composition root and CLI."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Coroutine, Sequence
from typing import Any

import structlog
from prometheus_client import CollectorRegistry

from schemas.topics import dead_letter_topic
from services.cli import command_parser, port_in_use, run
from services.config import ProcessorConfig, add_config_arguments, config_summary, instance_client_id, load_config
from services.gc_tuning import tune_gc
from services.kafka_errors import check_kafka_access
from services.lag_monitor import start_lag_monitor
from services.logging import configure_logging
from services.metrics import ProcessorMetrics, Readiness, start_metrics_server
from services.processor.clients import kafka_clients
from services.processor.hooks import HOOKS_ENV, load_entry_point
from services.processor.service import Processor


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "processor",
        description=(
            "Reducer service: consume analytics facts from Kafka, run the pure reducer per input partition,\n"
            "and publish review and tool-item rows to the events topic exactly once (one Kafka transaction per\n"
            "partition per batch, state kept in a compacted changelog topic and restored on assignment)."
        ),
        epilog=(
            "Every option can also be set by the environment variable named in its help; a flag wins over its\n"
            "variable. Topics must exist first: run `setup-topics`.\n"
            "Metrics: http://<host>:<metrics port>/metrics, liveness /healthz, readiness /readyz.\n"
            "SIGTERM or SIGINT: finish the batch in hand, commit, leave the group, exit 0.\n"
            "docs: docs/operations.md (Security)"
        ),
    )
    add_config_arguments(parser, ProcessorConfig)
    return parser


async def serve(config: ProcessorConfig) -> int:
    registry = CollectorRegistry()
    metrics = ProcessorMetrics(registry)
    processor: Processor | None = None

    def ready() -> bool | Readiness:
        return processor.readiness() if processor is not None else Readiness(False, "checking access to Kafka")

    # The port first: a taken port is a configuration error (exit 2) whatever the brokers say.
    server = None
    if config.metrics_port:
        try:
            server = start_metrics_server(config.metrics_port, registry, ready=ready, host=config.metrics_host)
        except OSError as error:
            raise port_in_use(error, setting="PROCESSOR_METRICS_PORT", port=config.metrics_port) from error
    try:
        await check_kafka_access(config.kafka)  # a refused login or certificate ends the process here, exit 4
        client_id = instance_client_id("reducer")
        clients = kafka_clients(config, client_id)
        hooks: dict[str, Any] = {}
        if os.environ.get(HOOKS_ENV):  # the reliability suite's crash points and broken variants (never in prod)
            hooks = load_entry_point(os.environ[HOOKS_ENV])(config=config, clients=clients)
        processor = Processor(config, metrics=metrics, clients=clients, client_id=client_id, **hooks)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        lag_monitor = start_lag_monitor(
            config.kafka,
            {config.group_id: [config.facts_topic]},
            metrics.lag,
            config.lag_interval_s,
            dlq_topics=[dead_letter_topic(config.facts_topic)],
        )
        try:
            await processor.run(stop)
        finally:
            lag_monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lag_monitor
    finally:
        if server is not None:
            server.close()
    return 0


def _main(argv: Sequence[str] | None) -> Coroutine[Any, Any, int]:
    config = load_config(ProcessorConfig, env=os.environ, args=build_parser().parse_args(argv))
    configure_logging("processor", config.log_level)
    log = structlog.get_logger("processor")
    log.info("config", **config_summary(config))
    tune_gc()
    return serve(config)


def main(argv: Sequence[str] | None = None) -> int:
    return run("processor", lambda: _main(argv), log_to="stdout")


if __name__ == "__main__":
    sys.exit(main())
