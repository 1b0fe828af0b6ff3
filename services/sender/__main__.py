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
from collections.abc import Mapping, Sequence

import httpx
import structlog
from prometheus_client import CollectorRegistry

from services.config import SenderConfig, add_config_arguments, config_summary, load_config
from services.errors import ConfigError
from services.lag_monitor import start_lag_monitor
from services.logging import configure_logging
from services.metrics import SenderMetrics, start_metrics_server
from services.sender.client import EVENTS_PATH, EndpointClient
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
exit codes: 0 stopped, 1 failed (see the last log line), 2 invalid configuration.
docs: docs/sender.md"""


def build_parser() -> argparse.ArgumentParser:
    """The ``--help`` of the sender: one flag per :class:`SenderConfig` field, with its variable and default."""
    parser = argparse.ArgumentParser(
        prog="python -m services.sender",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_arguments(parser, SenderConfig, title="sender settings")
    return parser


async def serve(config: SenderConfig) -> None:
    """Run the sender with real clients until SIGTERM/SIGINT; close everything on the way out."""
    registry = CollectorRegistry()
    metrics = SenderMetrics(registry)
    consumer = create_consumer(config)
    producer = create_producer(config)
    http = httpx.AsyncClient(
        http1=True,
        http2=False,
        verify=config.verify_tls,
        follow_redirects=False,  # a redirect means a wrong SENDER_ENDPOINT_URL; it is reported, not followed
        timeout=config.request_timeout_s,
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=30.0),
    )
    client = EndpointClient(
        http,
        base_url=config.endpoint_url,
        auth_token=config.auth_token,
        account_id=config.account_id,
        timeout_s=config.request_timeout_s,
    )
    sender = Sender(consumer=consumer, producer=producer, client=client, config=config, metrics=metrics)

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, sender.stop)

    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(http.aclose)
        await producer.start()
        stack.push_async_callback(producer.stop)
        await consumer.start()
        stack.push_async_callback(consumer.stop)
        if config.metrics_port:
            server = start_metrics_server(config.metrics_port, registry, ready=sender.is_ready)
            stack.callback(server.close)
            _log.info("metrics_serving", port=server.port)
        lag_monitor = start_lag_monitor(config.kafka, {config.group_id: [config.events_topic]}, metrics.consumer_lag)
        stack.push_async_callback(_cancel, lag_monitor)
        await sender.run()


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Parse settings, configure logging, run; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = load_config(SenderConfig, env=os.environ if env is None else env, args=args)
    except ConfigError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    configure_logging("sender", config.log_level)
    _log.info("sender_configured", config=config_summary(config))
    try:
        asyncio.run(serve(config))
    except ConfigError as exc:
        _log.error("sender_failed", error=str(exc))
        return 2
    except Exception:
        _log.exception("sender_failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
