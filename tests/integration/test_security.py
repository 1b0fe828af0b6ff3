"""Authentication and encryption for real: every component over SASL_SSL (SCRAM-SHA-512) and over mutual TLS.

One secured broker serves the session (``tests.support.secured_kafka``). The code under test reaches it only
through the secured listeners, as real processes configured by environment variables: ``setup-topics``,
the processor, the sender (which also talks HTTPS with a client certificate to the endpoint), ``lag`` and
``replay-dlq``; the publisher is the library an app-server embeds. The test itself uses the PLAINTEXT
listener only to read what arrived.

A wrong password, a broker certificate signed by an unknown CA, or a client certificate the broker does not
trust ends every command within seconds with exit code 4 and one error line (``services.kafka_errors``),
instead of a client that retries its bootstrap forever.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from schemas.codec import decode_fact
from services.exitcodes import EXIT_AUTH
from services.kafka_errors import KafkaAuthFailed
from services.producer import BROADCAST, FactPublisher
from tests.support.kafka import free_ports, random_topic_name, read_topic, wait_until
from tests.support.pipeline import expected_rows_by_family
from tests.support.secured_kafka import WRONG_PASSWORD, Listener, Spoil, listener_env, listener_settings
from tools.demo.endpoint import RecordingEndpoint
from tools.demo.generator import Workload
from tools.kafka_security import SecuredBroker

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "tok-https-only-5a5a"
POISON = b"\x00 not a fact"


class Command:
    """One command line, run as its own process with exactly the given environment (plus PATH)."""

    def __init__(self, name: str, module: str, *args: str) -> None:
        self.name, self.module, self.args = name, module, args

    async def start(self, env: Mapping[str, str]) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            self.module,
            *self.args,
            env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), **env},
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )

    async def run(self, env: Mapping[str, str], timeout: float = 120) -> tuple[int, str, str]:  # noqa: ASYNC109
        process = await self.start(env)
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise AssertionError(f"{self.name} did not exit within {timeout} s") from None
        assert process.returncode is not None
        return process.returncode, out.decode(errors="replace"), err.decode(errors="replace")


async def stop(process: asyncio.subprocess.Process, name: str) -> str:
    """SIGTERM, wait for exit 0, return stdout and stderr."""
    process.send_signal(signal.SIGTERM)
    try:
        out, err = await asyncio.wait_for(process.communicate(), 60)
    except TimeoutError:
        process.kill()
        out, err = await process.communicate()
    text = out.decode(errors="replace") + err.decode(errors="replace")
    assert process.returncode == 0, f"{name} exited {process.returncode}:\n{text[-3000:]}"
    return text


def endpoint_tls(broker: SecuredBroker) -> ssl.SSLContext:
    """HTTPS with the broker's certificate (it names 127.0.0.1), requiring a client certificate from our CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(broker.material.ca_cert))
    context.load_cert_chain(str(broker.material.broker_cert), str(broker.material.broker_key))
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def listening_hosts(port: int) -> set[str]:
    """Addresses a TCP socket listens on for ``port``, read from /proc/net/tcp (IPv4)."""
    hosts: set[str] = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, _, hex_port = local.partition(":")
        if state == "0A" and int(hex_port, 16) == port:
            hosts.add(".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0)))
    return hosts


@pytest.mark.parametrize("listener", ["sasl_ssl", "mtls"])
async def test_every_component_works_over_the_secured_listener(
    secured_kafka: SecuredBroker, listener: Listener
) -> None:
    started = time.monotonic()
    plaintext = secured_kafka.plaintext_bootstrap
    facts_topic = random_topic_name(f"secure-{listener}-facts")
    events_topic = random_topic_name(f"secure-{listener}-events")
    group = random_topic_name(f"secure-{listener}-group")
    kafka_env = listener_env(secured_kafka, listener)
    pipeline_env = {
        **kafka_env,
        "PROCESSOR_FACTS_TOPIC": facts_topic,
        "PROCESSOR_EVENTS_TOPIC": events_topic,
        "PROCESSOR_GROUP_ID": group,
        "PROCESSOR_TRANSACTIONAL_ID_PREFIX": group,
        "PROCESSOR_METRICS_PORT": "0",
        "PROCESSOR_POLL_TIMEOUT_MS": "50",
    }

    # setup-topics
    code, out, err = await Command("setup-topics", "services.setup_topics", "--partitions", "2").run(pipeline_env)
    assert code == 0, err
    assert f"created  {facts_topic}" in out and f"created  {events_topic}" in out

    # the publisher (in this process, as an app-server embeds it): a workload plus one undecodable fact
    facts = [(fact.key, fact.value) for fact in Workload(seed=7, threads=12).facts()]
    publisher = FactPublisher(
        kafka=listener_settings(secured_kafka, listener), topic=facts_topic, producer_id="secure", buffer_size=10**6
    )
    await publisher.start()
    for key, value in facts:
        assert publisher.publish_encoded(BROADCAST if key is None else key.encode(), value)
    assert publisher.publish_encoded(b"poison-thread", POISON)
    await publisher.close()
    assert publisher.failed == 0
    expected = sum(len(rows) for rows in expected_rows_by_family(facts).values())
    assert expected > 0

    # the processor and the sender, as processes; the endpoint wants HTTPS with a client certificate
    (metrics_port,) = free_ports(1)
    sender_env = {
        **kafka_env,
        "SENDER_EVENTS_TOPIC": events_topic,
        "SENDER_DLQ_TOPIC": f"{events_topic}.dlq",
        "SENDER_GROUP_ID": f"{group}-sender",
        "SENDER_AUTH_TOKEN": TOKEN,
        "SENDER_ENDPOINT_CAFILE": str(secured_kafka.material.ca_cert),
        "SENDER_ENDPOINT_CERTFILE": str(secured_kafka.material.client_cert),
        "SENDER_ENDPOINT_KEYFILE": str(secured_kafka.material.client_key),
        "SENDER_METRICS_PORT": str(metrics_port),
        "SENDER_METRICS_HOST": "127.0.0.1",
    }
    with RecordingEndpoint(expected_token=TOKEN, tls=endpoint_tls(secured_kafka)) as endpoint:
        sender_env["SENDER_ENDPOINT_URL"] = endpoint.url
        assert endpoint.url.startswith("https://")
        processor = await Command("processor", "services.processor").start(pipeline_env)
        sender = await Command("sender", "services.sender").start(sender_env)
        try:
            await wait_until(
                lambda: len(endpoint.unique_accepted_events()) >= expected,
                timeout=120,
                message=f"{expected} rows delivered over HTTPS",
            )
            assert listening_hosts(metrics_port) == {"127.0.0.1"}  # SENDER_METRICS_HOST binds loopback only
        finally:
            processor_output = await stop(processor, "processor")
            sender_output = await stop(sender, "sender")
        assert {request.status for request in endpoint.requests} == {200}  # token and client certificate accepted
    assert len(endpoint.unique_accepted_events()) == expected
    for output in (processor_output, sender_output):
        assert '"exit_code"' not in output and "Traceback" not in output

    # the undecodable fact was dead-lettered; lag and replay-dlq read the group and the dead letters
    assert [record.value for record in await read_topic(plaintext, f"{facts_topic}.dlq")] == [POISON]
    code, out, err = await Command("lag", "services.lag", "--json", "--group", f"{group}:{facts_topic}").run(kafka_env)
    assert code == 0, err
    assert json.loads(out)["groups"][0]["group"] == group
    replay = Command("replay-dlq", "services.dlq_replay", "--json", "--dlq-topic", f"{facts_topic}.dlq")
    code, out, err = await replay.run({**kafka_env, "PROCESSOR_FACTS_TOPIC": facts_topic})
    assert code == 0, err
    assert (json.loads(out)["matched"], json.loads(out)["replayed"]) == (1, 1)
    replayed = [record.value for record in await read_topic(plaintext, facts_topic)]
    assert replayed.count(POISON) == 2  # published once, replayed once
    with pytest.raises(ValueError):
        decode_fact(POISON)
    print(f"{listener}: whole pipeline over the secured listener in {time.monotonic() - started:.1f} s")


COMMANDS = [
    Command("processor", "services.processor"),
    Command("sender", "services.sender"),
    Command("lag", "services.lag"),
    Command("setup-topics", "services.setup_topics"),
    Command("replay-dlq", "services.dlq_replay", "--dry-run"),
]


@pytest.mark.parametrize(
    ("listener", "spoil", "says"),
    [
        ("sasl_ssl", "wrong_password", "Kafka authentication failed"),
        ("sasl_ssl", "untrusted_ca", "TLS: the broker's certificate is not trusted"),
        ("mtls", "untrusted_client_cert", "TLS: the broker refused the client certificate"),
    ],
)
async def test_a_refused_login_or_certificate_ends_every_command_with_exit_4_and_one_line(
    secured_kafka: SecuredBroker, listener: Listener, spoil: Spoil, says: str
) -> None:
    env = {**listener_env(secured_kafka, listener, spoil), "SENDER_METRICS_PORT": "0", "PROCESSOR_METRICS_PORT": "0"}
    started = time.monotonic()
    gate = asyncio.Semaphore(3)  # two cores: a few interpreters at a time

    async def run(command: Command) -> tuple[int, str, str]:
        async with gate:
            return await command.run(env, timeout=90)

    results = await asyncio.gather(*(run(command) for command in COMMANDS))
    elapsed = time.monotonic() - started
    for command, (code, out, err) in zip(COMMANDS, results, strict=True):
        output = out + err
        assert code == EXIT_AUTH, f"{command.name} exited {code}:\n{output[-3000:]}"
        assert WRONG_PASSWORD not in output
        assert "Traceback" not in output
        if command.name in ("processor", "sender"):  # JSON logs: exactly one error line, and nothing else loud
            errors = [json.loads(line) for line in out.splitlines() if '"level":"error"' in line]
            assert len(errors) == 1, f"{command.name}: {errors}"
            assert errors[0]["error"].startswith(says) and errors[0]["exit_code"] == EXIT_AUTH
            assert err == ""
        else:  # command-line tools: exactly one line on stderr
            assert len(err.splitlines()) == 1, f"{command.name}: {err!r}"
            assert says in err
    print(f"{listener}/{spoil}: 5 commands refused in {elapsed:.1f} s")


@pytest.mark.parametrize(("listener", "spoil"), [("sasl_ssl", "wrong_password"), ("mtls", "untrusted_client_cert")])
async def test_the_publisher_refuses_to_start_with_a_refused_login_or_certificate(
    secured_kafka: SecuredBroker, listener: Listener, spoil: Spoil
) -> None:
    publisher = FactPublisher(
        kafka=listener_settings(secured_kafka, listener, spoil), topic="facts", producer_id="refused"
    )
    with pytest.raises(KafkaAuthFailed) as caught:
        await publisher.start()
    assert str(caught.value).startswith(("Kafka authentication failed", "TLS: the broker refused"))
    assert WRONG_PASSWORD not in str(caught.value)
