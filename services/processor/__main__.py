"""``python -m services.processor``: the reducer service's composition root and CLI."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Sequence

import structlog
from prometheus_client import CollectorRegistry

from services.config import ProcessorConfig, add_config_arguments, config_summary, load_config
from services.errors import ConfigError
from services.gc_tuning import tune_gc
from services.lag_monitor import start_lag_monitor
from services.logging import configure_logging
from services.metrics import ProcessorMetrics, start_metrics_server
from services.processor.faults import CrashPoints
from services.processor.service import Processor


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m services.processor",
        description=(
            "Reducer service: consume analytics facts from Kafka, run the pure reducer per input partition, "
            "and publish review and tool-item rows to the events topic exactly once (one Kafka transaction per "
            "partition per batch, state kept in a compacted changelog topic and restored on assignment)."
        ),
        epilog=(
            "Every option can also be set by the environment variable named in its help; a flag wins over its "
            "variable. Topics must exist first: run `python -m services.setup_topics`. "
            "Metrics: http://<host>:<metrics port>/metrics, liveness /healthz, readiness /readyz. "
            "SIGTERM or SIGINT: finish the batch in hand, commit, leave the group, exit 0."
        ),
    )
    add_config_arguments(parser, ProcessorConfig)
    return parser


async def serve(config: ProcessorConfig) -> None:
    registry = CollectorRegistry()
    metrics = ProcessorMetrics(registry)
    processor = Processor(
        config,
        metrics=metrics,
        crash=CrashPoints.from_env(),
        client_id=f"reducer-{socket.gethostname()}-{os.getpid()}",
        negative_control=os.environ.get("RA_NEGATIVE_CONTROL") or None,
    )
    server = (
        start_metrics_server(config.metrics_port, registry, ready=processor.readiness) if config.metrics_port else None
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    lag_monitor = start_lag_monitor(
        config.kafka, {config.group_id: [config.facts_topic]}, metrics.consumer_lag, config.lag_interval_s
    )
    try:
        await processor.run(stop)
    finally:
        lag_monitor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await lag_monitor
        if server is not None:
            server.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_config(ProcessorConfig, env=os.environ, args=args)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    configure_logging("processor", config.log_level)
    structlog.get_logger("processor").info("config", **config_summary(config))
    tune_gc()
    asyncio.run(serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
