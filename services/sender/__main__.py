"""Composition root and command line of the sender: ``python -m services.sender [--flags]``.

Builds everything with a socket (Kafka consumer and producer, the HTTP client, the metrics server),
hands them to :class:`~services.sender.loop.Sender`, runs it until SIGTERM/SIGINT, and closes them in
reverse order. Nothing else in the package creates I/O.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any

import certifi
import httpx
import structlog
from prometheus_client import CollectorRegistry

from schemas.http import EVENTS_PATH
from services.cli import command_parser, port_in_use, run, stop_on_exit
from services.config import SenderConfig, add_config_arguments, config_summary, instance_client_id, load_config
from services.kafka_errors import check_kafka_access
from services.lag_monitor import start_lag_monitor
from services.logging import configure_logging
from services.metrics import SenderMetrics, start_metrics_server
from services.sender.client import EndpointClient
from services.sender.loop import Sender, create_consumer, create_producer

_log = structlog.get_logger("services.sender")

DESCRIPTION = f"""\
Deliver analytics rows from the Kafka topic 'events' to the analytics HTTP endpoint.

Rows are POSTed to <endpoint url>{EVENTS_PATH} in batches ({{"events": [...]}}), in order per
partition. Transient failures (5xx, 408, 429, timeouts) are retried forever with capped, jittered
backoff; rows the endpoint refuses (400, 413, 422, ...) go one by one to the dead-letter topic.
Offsets are committed only after the endpoint accepted (or the dead-letter topic stored) every row
before them: delivery is at least once, and every request carries an Idempotency-Key.

Every setting is read from its environment variable, then from its flag (a flag wins)."""

EPILOG = """\
examples:
  python -m services.sender
  SENDER_AUTH_TOKEN=... python -m services.sender --endpoint-url https://analytics.example.com
  python -m services.sender --kafka-bootstrap-servers kafka:9092 --metrics-port 0

signals: SIGTERM or SIGINT finishes the requests in flight, commits them and exits 0.
docs: docs/sender.md, docs/operations.md (Security)"""


def build_parser() -> argparse.ArgumentParser:
    """The ``--help`` of the sender: one flag per :class:`SenderConfig` field, with its variable and default."""
    parser = command_parser("sender", description=DESCRIPTION, epilog=EPILOG)
    add_config_arguments(parser, SenderConfig, title="sender settings")
    return parser


async def serve(config: SenderConfig) -> int:
    """Run the sender with real clients until SIGTERM/SIGINT; close everything on the way out."""
    registry = CollectorRegistry()
    metrics = SenderMetrics(registry)
    client_id = instance_client_id("sender")
    consumer = create_consumer(config, client_id=client_id)
    producer = create_producer(config, client_id=client_id)
    http = httpx.AsyncClient(
        http1=True,
        http2=False,
        verify=config.endpoint_ssl_context(default_cafile=certifi.where()),
        follow_redirects=False,  # a redirect means a wrong SENDER_ENDPOINT_URL; it is reported, not followed
        timeout=config.request_timeout_s,
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=30.0),
    )
    client = EndpointClient.for_config(http, config)
    sender = Sender(consumer=consumer, producer=producer, client=client, config=config, metrics=metrics)

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, sender.stop)

    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(http.aclose)
        stop_on_exit(stack, producer)  # registered now: a client never started is reported unclosed too
        stop_on_exit(stack, consumer)
        if config.metrics_port:
            try:
                server = start_metrics_server(
                    config.metrics_port, registry, ready=sender.is_ready, host=config.metrics_host
                )
            except OSError as error:
                raise port_in_use(error, setting="SENDER_METRICS_PORT", port=config.metrics_port) from error
            stack.callback(server.close)
            _log.info("metrics_serving", port=server.port)
        # After the port (a taken port is a configuration error, exit 2, whatever the brokers say):
        await check_kafka_access(config.kafka)  # a refused login or certificate ends the process here, exit 4
        await producer.start()
        await consumer.start()
        lag_monitor = start_lag_monitor(
            config.kafka, {config.group_id: [config.events_topic]}, metrics.lag, dlq_topics=[config.dlq_topic]
        )
        stack.push_async_callback(_cancel, lag_monitor)
        await sender.run()
    return 0


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _main(argv: Sequence[str] | None, env: Mapping[str, str]) -> Coroutine[Any, Any, int]:
    config = load_config(SenderConfig, env=env, args=build_parser().parse_args(argv))
    configure_logging("sender", config.log_level)
    _log.info("sender_configured", config=config_summary(config))
    return serve(config)


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Parse settings, configure logging, run; return the process exit code (:mod:`services.cli`)."""
    return run("sender", lambda: _main(argv, os.environ if env is None else env), log_to="stdout")


if __name__ == "__main__":
    sys.exit(main())
