"""A real, single-node Apache Kafka (KRaft) on 127.0.0.1 that the project installs and runs itself.

No Docker and no mocks: the broker is the Apache Kafka server from Maven Central, run in a JVM subprocess.

Layout::

    <kafka home>  (RA_KAFKA_HOME, default <repo>/.cache/kafka/4.1.1)
        pom.xml                 throwaway POM that names the server and a log4j2 binding
        libs/*.jar              the broker's runtime classpath (mvn dependency:copy-dependencies)
        config/log4j2.properties
        .installed.json         marker, written last: the install is complete

    <data dir>  (one per broker; the CLI default is <repo>/.cache/kafka-data)
        server.properties       rewritten on every start from BrokerConfig
        kraft-logs/             log.dirs: topic data and the KRaft metadata log; survives restarts
        logs/broker.log         the JVM's stdout+stderr (log4j2 writes to stdout), appended per start
        broker.pid              pid of the running JVM (its own process group)

Public API::

    install(home=None) -> Installation
    start(port=..., controller_port=..., data_dir=..., ...) -> BrokerHandle
    attach(data_dir) -> BrokerHandle | None          # a broker started earlier, found by its pid file
    BrokerHandle: .bootstrap .pid .log_path .is_running() .stop() .kill() .restart()

Errors (each message says what to do)::

    LocalKafkaError
     ├── PrerequisiteMissing      java 17+ or mvn not found
     ├── InstallFailed            mvn could not fetch the jars (message ends with mvn's output tail)
     └── BrokerError
          ├── PortInUse           a listener port is taken before the JVM is launched
          ├── BrokerAlreadyRunning the data dir's pid file names a live broker
          └── BrokerStartFailed   the JVM exited or was not ready in time (message ends with the log tail)

Command line: ``python -m tools.localkafka {install,start,stop,status,restart,kill} --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import concurrent.futures
import contextlib
import dataclasses
import errno
import fcntl
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

__all__ = [
    "DEFAULT_CONTROLLER_PORT",
    "DEFAULT_PORT",
    "KAFKA_VERSION",
    "BrokerAlreadyRunning",
    "BrokerConfig",
    "BrokerError",
    "BrokerHandle",
    "BrokerStartFailed",
    "InstallFailed",
    "Installation",
    "LocalKafkaError",
    "PortInUse",
    "PrerequisiteMissing",
    "attach",
    "default_data_dir",
    "default_kafka_home",
    "install",
    "main",
    "start",
]

log = logging.getLogger(__name__)

KAFKA_VERSION: Final = "4.1.1"
SCALA_VERSION: Final = "2.13"
LOG4J_VERSION: Final = "2.24.3"
# Pinned so that an empty local Maven repository resolves the same plugin every time.
DEPENDENCY_PLUGIN_VERSION: Final = "3.8.1"
MIN_JAVA_MAJOR: Final = 17

HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 19092
DEFAULT_CONTROLLER_PORT: Final = 19093
DEFAULT_HEAP: Final = "512m"
NODE_ID: Final = 1

HOME_ENV: Final = "RA_KAFKA_HOME"
REPO_ROOT: Final = Path(__file__).resolve().parents[1]

_MARKER_NAME: Final = ".installed.json"
_PID_FILE_NAME: Final = "broker.pid"
_LOG_TAIL_LINES: Final = 40
_MVN_TAIL_LINES: Final = 40


# ---------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------


class LocalKafkaError(Exception):
    """Base class: anything that stops the local broker from being installed or run."""


class PrerequisiteMissing(LocalKafkaError):
    """``java`` (17 or newer) or ``mvn`` is not available."""


class InstallFailed(LocalKafkaError):
    """Maven could not fetch the Kafka jars; the message ends with the tail of Maven's output."""


class BrokerError(LocalKafkaError):
    """The broker process could not be started, found or stopped."""


class PortInUse(BrokerError):
    """A listener port is already bound by another process (checked before the JVM is launched)."""


class BrokerAlreadyRunning(BrokerError):
    """The data directory's pid file names a broker that is still running."""


class BrokerStartFailed(BrokerError):
    """The JVM exited, or did not answer a metadata request before the deadline.

    The message ends with the last lines of the broker log.
    """


# ---------------------------------------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------------------------------------


def default_kafka_home() -> Path:
    """Where the jars are cached: ``$RA_KAFKA_HOME`` or ``<repo>/.cache/kafka/<version>``."""
    override = os.environ.get(HOME_ENV)
    if override:
        return Path(override).expanduser().resolve()
    return REPO_ROOT / ".cache" / "kafka" / KAFKA_VERSION


def default_data_dir() -> Path:
    """The CLI's data directory, ``<repo>/.cache/kafka-data``; tests use temporary directories instead."""
    return REPO_ROOT / ".cache" / "kafka-data"


# ---------------------------------------------------------------------------------------------------------
# Prerequisites
# ---------------------------------------------------------------------------------------------------------


def find_java() -> str:
    """Return the ``java`` executable (``$JAVA_HOME/bin/java`` first, then ``PATH``), checking it is 17+."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home) / "bin" / "java" if java_home else None
    java = str(candidate) if candidate is not None and candidate.is_file() else shutil.which("java")
    if java is None:
        raise PrerequisiteMissing(
            f"`java` was not found on PATH (and JAVA_HOME is not set). Kafka {KAFKA_VERSION} needs Java "
            f"{MIN_JAVA_MAJOR} or newer: install a JDK/JRE (e.g. `apt-get install openjdk-17-jre-headless`) "
            "or set JAVA_HOME."
        )
    result = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    banner = result.stderr + result.stdout
    major = _java_major_version(banner)
    if major is None or major < MIN_JAVA_MAJOR:
        raise PrerequisiteMissing(
            f"{java} reports {banner.strip().splitlines()[0] if banner.strip() else 'no version'!r}; "
            f"Kafka {KAFKA_VERSION} needs Java {MIN_JAVA_MAJOR} or newer. Install a newer JDK and put it on "
            "PATH or point JAVA_HOME at it."
        )
    return java


def _java_major_version(banner: str) -> int | None:
    """Parse ``java -version`` output: ``version "17.0.15"`` -> 17, ``version "1.8.0_392"`` -> 8."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', banner)
    if match is None:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2) is not None:
        return int(match.group(2))
    return major


def find_mvn() -> str:
    """Return the ``mvn`` executable or explain how to get one."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise PrerequisiteMissing(
            "`mvn` (Apache Maven) was not found on PATH; it is used once to fetch the Kafka jars from Maven "
            "Central. Install it (e.g. `apt-get install maven`), or copy a complete install directory made by "
            f"`scripts/kafka install` on another machine and point {HOME_ENV} at it."
        )
    return mvn


# ---------------------------------------------------------------------------------------------------------
# Install
# ---------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Installation:
    """A complete install: the broker's classpath and logging config."""

    home: Path
    jar_count: int
    fetched: bool
    """True when this call downloaded the jars, False when the cache already had them."""
    duration_s: float

    @property
    def libs_dir(self) -> Path:
        return self.home / "libs"

    @property
    def classpath(self) -> str:
        """A JVM classpath wildcard (the JVM expands ``libs/*`` itself; no shell involved)."""
        return str(self.libs_dir / "*")

    @property
    def log4j_config(self) -> Path:
        return self.home / "config" / "log4j2.properties"


_POM_TEMPLATE: Final = """\
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by tools/localkafka.py only to resolve the broker's runtime classpath. Safe to delete. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.review-analytics</groupId>
  <artifactId>local-kafka-classpath</artifactId>
  <version>{kafka}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_{scala}</artifactId>
      <version>{kafka}</version>
    </dependency>
    <!-- The server POM brings no SLF4J binding: without one the broker logs nothing. -->
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>{log4j}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-api</artifactId>
      <version>{log4j}</version>
    </dependency>
  </dependencies>
  <build>
    <pluginManagement>
      <plugins>
        <plugin>
          <groupId>org.apache.maven.plugins</groupId>
          <artifactId>maven-dependency-plugin</artifactId>
          <version>{plugin}</version>
        </plugin>
      </plugins>
    </pluginManagement>
  </build>
</project>
"""

# log4j2 writes to stdout, which start() appends to <data dir>/logs/broker.log together with anything the JVM
# prints before logging is up (bad flags, UnsupportedClassVersionError): one file, in order, per broker.
_LOG4J2_PROPERTIES: Final = """\
# Written by tools/localkafka.py. The broker's stdout goes to <data dir>/logs/broker.log.
status = warn
name = review-analytics-local-kafka
# Kafka logs its own shutdown from a JVM shutdown hook; log4j's hook would stop logging halfway through it.
shutdownHook = disable

appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.target = SYSTEM_OUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d{ISO8601}] %p %m (%c)%n

rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT

# Per-request and per-partition state-change chatter drowns the lines that explain a failure.
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
"""


def install(home: Path | None = None) -> Installation:
    """Fetch the Kafka server and a log4j2 binding into ``home`` unless they are already there.

    Idempotent and safe to call from concurrent processes: an exclusive file lock serialises installs, and
    the marker file is written last, so a half-finished install (killed mid-download) is redone next time.

    Raises:
        PrerequisiteMissing: ``java`` 17+ or ``mvn`` is not installed.
        InstallFailed: Maven failed; the message carries the tail of its output.
    """
    home = (home or default_kafka_home()).resolve()
    started = time.monotonic()
    existing = _read_installation(home, started)
    if existing is not None:
        return existing

    find_java()  # fail before downloading anything the JVM could not run
    mvn = find_mvn()
    home.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(home.parent / f".{home.name}.lock"):
        existing = _read_installation(home, started)  # another process may have finished while we waited
        if existing is not None:
            return existing
        libs = home / "libs"
        shutil.rmtree(libs, ignore_errors=True)
        (home / "pom.xml").write_text(
            _POM_TEMPLATE.format(
                kafka=KAFKA_VERSION, scala=SCALA_VERSION, log4j=LOG4J_VERSION, plugin=DEPENDENCY_PLUGIN_VERSION
            )
        )
        command = [
            mvn,
            "--batch-mode",
            "--no-transfer-progress",
            "-Dstyle.color=never",
            "--file",
            str(home / "pom.xml"),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={libs}",
        ]
        log.info("fetching kafka %s with %s", KAFKA_VERSION, " ".join(command))
        result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=home)
        jars = sorted(libs.glob("*.jar")) if libs.is_dir() else []
        if result.returncode != 0 or not any(_is_kafka_server_jar(jar) for jar in jars):
            tail = _tail_lines((result.stdout + result.stderr).splitlines(), _MVN_TAIL_LINES)
            raise InstallFailed(
                f"`mvn dependency:copy-dependencies` could not fetch org.apache.kafka:kafka_{SCALA_VERSION}:"
                f"{KAFKA_VERSION} into {libs} (exit code {result.returncode}). Check that Maven Central "
                "(https://repo.maven.apache.org) is reachable, or that ~/.m2/settings.xml points at a "
                f"working mirror, then run `scripts/kafka install` again.\n--- last lines of mvn output ---\n"
                f"{tail}"
            )
        _write_if_changed(home / "config" / "log4j2.properties", _LOG4J2_PROPERTIES)
        duration = time.monotonic() - started
        marker = {
            "kafka_version": KAFKA_VERSION,
            "scala_version": SCALA_VERSION,
            "log4j_version": LOG4J_VERSION,
            "jar_count": len(jars),
            "install_seconds": round(duration, 2),
            "installed_at_unix": int(time.time()),
        }
        (home / _MARKER_NAME).write_text(json.dumps(marker, indent=2) + "\n")
        return Installation(home=home, jar_count=len(jars), fetched=True, duration_s=duration)


def _read_installation(home: Path, started: float) -> Installation | None:
    """Return the installation in ``home`` if its marker and the server jar are both present."""
    marker = home / _MARKER_NAME
    libs = home / "libs"
    if not marker.is_file() or not libs.is_dir():
        return None
    jars = list(libs.glob("*.jar"))
    if not any(_is_kafka_server_jar(jar) for jar in jars):
        return None
    installation = Installation(home=home, jar_count=len(jars), fetched=False, duration_s=0.0)
    _write_if_changed(installation.log4j_config, _LOG4J2_PROPERTIES)  # keeps a cached install in step with code
    return dataclasses.replace(installation, duration_s=time.monotonic() - started)


def _write_if_changed(path: Path, text: str) -> None:
    """Atomically replace ``path`` with ``text`` unless it already holds exactly that."""
    with contextlib.suppress(FileNotFoundError):
        if path.read_text() == text:
            return
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def _is_kafka_server_jar(jar: Path) -> bool:
    return jar.name == f"kafka_{SCALA_VERSION}-{KAFKA_VERSION}.jar"


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ---------------------------------------------------------------------------------------------------------
# Broker configuration
# ---------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class BrokerConfig:
    """Everything needed to (re)start one broker; ``restart()`` reuses it unchanged."""

    port: int = DEFAULT_PORT
    controller_port: int = DEFAULT_CONTROLLER_PORT
    data_dir: Path = dataclasses.field(default_factory=default_data_dir)
    heap: str = DEFAULT_HEAP
    overrides: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Extra or replacement ``server.properties`` entries, applied last."""
    extra_listeners: Mapping[str, int] = dataclasses.field(default_factory=dict)
    """More client listeners, ``{name: port}``; each name is also its protocol (``SSL``, ``SASL_SSL``): see
    ``tools.kafka_security``, which also supplies their ``overrides``."""
    format_args: Sequence[str] = ()
    """Extra ``kafka-storage format`` arguments (``--add-scram ...``), used on a data dir's first start only."""
    node_id: int = NODE_ID
    voters: tuple[tuple[int, int], ...] = ()
    """The KRaft quorum as ``(node id, controller port)`` pairs; empty: a quorum of this node alone. Every
    node of a cluster (``tools.kafkacluster``) is a voter, so the cluster size is ``len(voters)``."""
    cluster_id: str | None = None
    """The id the storage is formatted with on the first start (all nodes of a cluster share one); None: new."""

    @property
    def quorum(self) -> tuple[tuple[int, int], ...]:
        return self.voters or ((self.node_id, self.controller_port),)

    @property
    def replication(self) -> int:
        """Replication factor of Kafka's internal topics: the cluster size, at most 3."""
        return min(3, len(self.quorum))

    @property
    def min_insync(self) -> int:
        """``min.insync.replicas``: 2 from replication factor 3 on (one replica may be down), else 1."""
        return 2 if self.replication >= 3 else 1

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def log_dir(self) -> Path:
        """Kafka's ``log.dirs`` (topic data and the KRaft metadata log)."""
        return self.data_dir / "kraft-logs"

    @property
    def properties_path(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def pid_path(self) -> Path:
        return self.data_dir / _PID_FILE_NAME

    @property
    def log_path(self) -> Path:
        return self.data_dir / "logs" / "broker.log"

    def listener_properties(self) -> dict[str, str]:
        """This node's listeners: PLAINTEXT for clients and brokers, CONTROLLER for the KRaft quorum.

        The one place listeners are spelled; a caller adds more per node through ``overrides`` (e.g. the
        ``configure`` hook of ``tools.kafkacluster.start_cluster``), extending these same keys."""
        return {
            "listeners": f"PLAINTEXT://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{self.port}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
        }

    def server_properties(self) -> dict[str, str]:
        """The node's settings: a KRaft combined broker+controller that supports transactions, alone or as
        one voter of a cluster (``voters``)."""
        replication, min_insync = str(self.replication), str(self.min_insync)
        properties = {
            # KRaft: every node is both broker and controller, in a static quorum of all nodes.
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": ",".join(f"{node}@{HOST}:{port}" for node, port in self.quorum),
            **self.listener_properties(),
            "log.dirs": str(self.log_dir),
            # Topics exist only when created on purpose, with one partition unless asked otherwise.
            "num.partitions": "1",
            "auto.create.topics.enable": "false",
            # Replication: the cluster size (at most 3) for internal topics and as the default; min ISR 2 from
            # 3 replicas on, so a write survives one broker down and none is acknowledged by one broker alone.
            # Fewer internal partitions than the default 50 so the first group or transaction does not wait
            # for 50 partitions to be created.
            "default.replication.factor": replication,
            "min.insync.replicas": min_insync,
            "offsets.topic.replication.factor": replication,
            "offsets.topic.num.partitions": "5",
            "transaction.state.log.replication.factor": replication,
            "transaction.state.log.min.isr": min_insync,
            "transaction.state.log.num.partitions": "5",
            "share.coordinator.state.topic.replication.factor": replication,
            "share.coordinator.state.topic.min.isr": min_insync,
            # After a crash (kill -9) the controller refuses the restarted broker's registration until the old
            # incarnation's session expires: 9 s by default, 3 s here. Heartbeats never leave this JVM.
            "broker.heartbeat.interval.ms": "500",
            "broker.session.timeout.ms": "3000",
            # A group's first rebalance starts at once instead of after 3 s.
            "group.initial.rebalance.delay.ms": "0",
            # Verification only causes spurious NotEnoughReplicas retries on back-to-back transactions on one
            # node (aiokafka #1172); nothing is lost without it.
            "transaction.partition.verification.enable": "false",
            # Upper bound for a producer's transaction_timeout_ms (aiokafka defaults to 60 s); abandoned
            # transactions of killed producers are looked for every second rather than every 10 s.
            "transaction.max.timeout.ms": "300000",
            "transaction.abort.timed.out.transaction.cleanup.interval.ms": "1000",
        }
        for name, port in self.extra_listeners.items():
            properties["listeners"] += f",{name}://{HOST}:{port}"
            properties["advertised.listeners"] += f",{name}://{HOST}:{port}"
            properties["listener.security.protocol.map"] += f",{name}:{name}"
        properties.update(self.overrides)
        return properties

    def render(self) -> str:
        lines = ["# Written by tools/localkafka.py on every start; edits are overwritten."]
        lines += [f"{key}={value}" for key, value in self.server_properties().items()]
        return "\n".join(lines) + "\n"

    @classmethod
    def from_data_dir(cls, data_dir: Path) -> BrokerConfig:
        """Recover the ports of a broker started earlier from its ``server.properties``."""
        properties = _parse_properties(data_dir / "server.properties")
        ports = dict(re.findall(r"(\w+)://[^:,]+:(\d+)", properties.get("listeners", "")))
        if "PLAINTEXT" not in ports or "CONTROLLER" not in ports:
            raise BrokerError(
                f"{data_dir / 'server.properties'} has no PLAINTEXT and CONTROLLER listeners; start the broker "
                "with `scripts/kafka start` to rewrite it."
            )
        voters = tuple(
            (int(node), int(port))
            for node, port in re.findall(r"(\d+)@[^:,]+:(\d+)", properties.get("controller.quorum.voters", ""))
        )
        return cls(
            port=int(ports["PLAINTEXT"]),
            controller_port=int(ports["CONTROLLER"]),
            data_dir=data_dir,
            node_id=int(properties.get("node.id", NODE_ID)),
            voters=voters if len(voters) > 1 else (),
        )


def _parse_properties(path: Path) -> dict[str, str]:
    properties: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")) and "=" in line:
            key, _, value = line.partition("=")
            properties[key.strip()] = value.strip()
    return properties


def _new_cluster_id() -> str:
    """A Kafka ``Uuid`` string: 16 random bytes, URL-safe base64 without padding, not starting with '-'."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


# ---------------------------------------------------------------------------------------------------------
# The running broker
# ---------------------------------------------------------------------------------------------------------


class BrokerHandle:
    """One local broker process: its address, its pid and its lifecycle.

    Responsibilities:
      1. Know where the broker listens (``bootstrap``) and logs (``log_path``).
      2. Stop it gracefully (``stop``: SIGTERM, SIGKILL after a timeout) or crash it (``kill``: SIGKILL).
      3. Start it again on the same ports and data dir (``restart``), also after a ``kill``.

    Signals go to the broker's process group (it is started in its own session), so nothing it spawned
    outlives it.
    """

    def __init__(
        self,
        config: BrokerConfig,
        *,
        home: Path,
        pid: int,
        process: subprocess.Popen[bytes] | None = None,
    ) -> None:
        self.config = config
        self._home = home
        self._process = process  # None when attached through a pid file (we are not the parent)
        self._pid = pid
        self._spawned_at = time.monotonic()
        self.startup_seconds: float | None = None
        """How long the last start took, from launching the JVM to a successful metadata request."""

    def __repr__(self) -> str:
        return f"BrokerHandle(bootstrap={self.bootstrap!r}, pid={self._pid}, data_dir={str(self.config.data_dir)!r})"

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:<port>``, ready to pass as aiokafka's ``bootstrap_servers``."""
        return self.config.bootstrap

    @property
    def pid(self) -> int:
        return self._pid

    @property
    def log_path(self) -> Path:
        return self.config.log_path

    def is_running(self) -> bool:
        if self._process is not None:
            return self._process.poll() is None
        return _pid_is_broker(self._pid, self.config.properties_path)

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        return _file_tail(self.log_path, lines)

    def stop(self, timeout: float = 30.0) -> None:
        """Shut the broker down cleanly (SIGTERM); SIGKILL it if it is still running after ``timeout`` s."""
        if self.is_running():
            self._signal(signal.SIGTERM)
            if not self._wait_exit(timeout):
                log.warning("broker pid %d ignored SIGTERM for %.0f s; sending SIGKILL", self._pid, timeout)
                self._signal(signal.SIGKILL)
                self._wait_exit(10.0)
        self.config.pid_path.unlink(missing_ok=True)

    def kill(self) -> None:
        """Crash the broker (SIGKILL) for fault tests. The pid file is left behind, as a real crash would."""
        if self.is_running():
            self._signal(signal.SIGKILL)
            self._wait_exit(10.0)

    def pause(self) -> None:
        """SIGSTOP the broker: it neither answers nor heartbeats until :meth:`resume` (a long GC pause)."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT a broker stopped by :meth:`pause`."""
        self._signal(signal.SIGCONT)

    def restart(self, ready_timeout: float = 60.0) -> None:
        """Stop the broker if it runs, then start it again on the same ports and data dir."""
        self.stop()
        process, elapsed = _launch(self.config, install(self._home), find_java(), ready_timeout)
        self._process, self._pid, self.startup_seconds = process, process.pid, elapsed

    def start_again(self) -> None:
        """Launch the JVM of a stopped or killed broker without waiting; :meth:`wait_ready` waits.

        For nodes of a cluster that cannot be ready alone (a quorum needs a majority of voters running)."""
        if self.is_running():
            raise BrokerAlreadyRunning(f"{self!r} is still running")
        self._process = _spawn(self.config, install(self._home), find_java())
        self._pid = self._process.pid
        self._spawned_at = time.monotonic()

    def wait_ready(self, ready_timeout: float = 60.0) -> None:
        """Wait until a broker launched by :meth:`start_again` answers; kill it and raise if it does not."""
        assert self._process is not None, "wait_ready follows start_again"
        _await_ready(self._process, self.config, ready_timeout)
        self.startup_seconds = time.monotonic() - self._spawned_at

    def _signal(self, signum: signal.Signals) -> None:
        if self._pid <= 0:  # a handle of a node that was not running when attached
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._pid, signum)

    def _wait_exit(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the process to exit (and reap it if it is our child)."""
        if self._process is not None:
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        deadline = time.monotonic() + timeout
        while _pid_is_alive(self._pid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return True


def start(
    *,
    port: int = DEFAULT_PORT,
    controller_port: int = DEFAULT_CONTROLLER_PORT,
    data_dir: Path | None = None,
    heap: str = DEFAULT_HEAP,
    overrides: Mapping[str, str] | None = None,
    extra_listeners: Mapping[str, int] | None = None,
    format_args: Sequence[str] = (),
    home: Path | None = None,
    ready_timeout: float = 60.0,
) -> BrokerHandle:
    """Start a broker and return once it answers a metadata request.

    Steps: install if needed; refuse a data dir whose broker still runs; write ``server.properties``; format
    the storage (first start only, so a restart keeps the data); launch the JVM in its own process group with
    stdout/stderr appended to ``logs/broker.log``; write the pid file; wait until the port accepts connections
    and an aiokafka metadata request succeeds.

    Raises:
        PrerequisiteMissing / InstallFailed: see ``install``.
        BrokerAlreadyRunning: the data dir's pid file names a live broker (stop it or use ``attach``).
        PortInUse: ``port`` or ``controller_port`` is taken.
        BrokerStartFailed: format failed, the JVM exited, or it was not ready within ``ready_timeout`` s.
    """
    config = BrokerConfig(
        port=port,
        controller_port=controller_port,
        data_dir=(data_dir or default_data_dir()).resolve(),
        heap=heap,
        overrides=dict(overrides or {}),
        extra_listeners=dict(extra_listeners or {}),
        format_args=tuple(format_args),
    )
    home = (home or default_kafka_home()).resolve()
    installation = install(home)
    java = find_java()
    running = attach(config.data_dir, home=home)
    if running is not None:
        raise BrokerAlreadyRunning(
            f"a broker (pid {running.pid}, {running.bootstrap}) is already running on {config.data_dir}; "
            "stop it first (`scripts/kafka stop`) or attach to it with tools.localkafka.attach()."
        )
    process, elapsed = _launch(config, installation, java, ready_timeout)
    handle = BrokerHandle(config, home=home, pid=process.pid, process=process)
    handle.startup_seconds = elapsed
    return handle


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct loopback ports that were free a moment ago (all held open while choosing)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def start_on_free_ports(data_dir: Path, *, attempts: int = 3, **options: Any) -> BrokerHandle:
    """:func:`start` a private broker in ``data_dir`` on free ports, choosing new ones if another process wins
    the race for them. ``options`` go to :func:`start` (``heap``, ``overrides``, ``ready_timeout``...)."""
    for attempt in range(1, attempts + 1):
        port, controller_port = free_ports(2)
        try:
            return start(port=port, controller_port=controller_port, data_dir=data_dir, **options)
        except PortInUse:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable: the loop returns or raises")


def attach(data_dir: Path | None = None, *, home: Path | None = None) -> BrokerHandle | None:
    """Return a handle for the broker whose pid file is in ``data_dir`` if it is still running, else None.

    A stale pid file (the process is gone, or the pid now belongs to another program) counts as not running.
    """
    data_dir = (data_dir or default_data_dir()).resolve()
    pid_path = data_dir / _PID_FILE_NAME
    try:
        pid = int(pid_path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    if not _pid_is_broker(pid, data_dir / "server.properties"):
        return None
    # Ports come from the broker's server.properties; heap and overrides are not recorded, so a restart()
    # of an attached handle uses the defaults for those.
    config = BrokerConfig.from_data_dir(data_dir)
    return BrokerHandle(config, home=(home or default_kafka_home()).resolve(), pid=pid)


def _launch(
    config: BrokerConfig, installation: Installation, java: str, ready_timeout: float
) -> tuple[subprocess.Popen[bytes], float]:
    """Write the config, format if needed, launch the JVM and wait for readiness. Returns (process, seconds)."""
    started = time.monotonic()
    process = _spawn(config, installation, java)
    _await_ready(process, config, ready_timeout)
    return process, time.monotonic() - started


def _await_ready(process: subprocess.Popen[bytes], config: BrokerConfig, ready_timeout: float) -> None:
    """Wait for readiness; on failure kill the JVM, remove the pid file and re-raise."""
    try:
        _wait_until_ready(process, config, time.monotonic() + ready_timeout)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        config.pid_path.unlink(missing_ok=True)
        raise


def _spawn(config: BrokerConfig, installation: Installation, java: str) -> subprocess.Popen[bytes]:
    """Check the ports, write the config, format the storage on the first start, launch the JVM in its own
    process group with output appended to the broker log, and write the pid file. Does not wait."""
    for port in (config.port, config.controller_port):
        if not _port_is_free(port):
            raise PortInUse(
                f"{HOST}:{port} is already in use; stop whatever listens there (`scripts/kafka status` shows a "
                "broker started by this project) or choose other ports (--port / --controller-port)."
            )
    config.log_dir.mkdir(parents=True, exist_ok=True)
    config.log_path.parent.mkdir(parents=True, exist_ok=True)
    config.properties_path.write_text(config.render())
    if not (config.log_dir / "meta.properties").is_file():
        _format_storage(config, installation, java)

    command = [
        java,
        f"-Xmx{config.heap}",
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={installation.log4j_config}",
        "-cp",
        installation.classpath,
        "kafka.Kafka",
        str(config.properties_path),
    ]
    with config.log_path.open("ab") as log_file:
        banner = f"\n===== {time.strftime('%Y-%m-%dT%H:%M:%S%z')} starting: {' '.join(command)}\n"
        log_file.write(banner.encode())
        log_file.flush()
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=config.data_dir,
            start_new_session=True,
        )
    config.pid_path.write_text(f"{process.pid}\n")
    return process


def _format_storage(config: BrokerConfig, installation: Installation, java: str) -> None:
    """Format ``log.dirs`` for KRaft with a fresh cluster id (first start of a data dir only)."""
    command = [
        java,
        f"-Dlog4j2.configurationFile={installation.log4j_config}",
        "-cp",
        installation.classpath,
        "kafka.tools.StorageTool",
        "format",
        "-t",
        config.cluster_id or _new_cluster_id(),
        "-c",
        str(config.properties_path),
        *config.format_args,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    with config.log_path.open("a") as log_file:
        log_file.write(f"\n===== formatting storage: {' '.join(command)}\n{result.stdout}{result.stderr}")
    if result.returncode != 0:
        raise BrokerStartFailed(
            f"formatting {config.log_dir} failed (exit code {result.returncode}). If the directory holds "
            f"data from another cluster, delete {config.data_dir} and start again.\n"
            f"--- output ---\n{_tail_lines((result.stdout + result.stderr).splitlines(), _LOG_TAIL_LINES)}"
        )


# ---------------------------------------------------------------------------------------------------------
# Readiness
# ---------------------------------------------------------------------------------------------------------


def _wait_until_ready(process: subprocess.Popen[bytes], config: BrokerConfig, deadline: float) -> None:
    """Poll until the port accepts connections and a metadata request lists this node, or fail loudly."""
    last_problem = "the port never accepted a connection"
    while True:
        exit_code = process.poll()
        if exit_code is not None:
            raise BrokerStartFailed(
                f"the broker exited with code {exit_code} during startup; see {config.log_path}.\n"
                f"--- last {_LOG_TAIL_LINES} lines of the broker log ---\n{_file_tail(config.log_path)}"
            )
        if _port_accepts(config.port):
            problem = _metadata_problem(config.bootstrap, config.node_id)
            if problem is None:
                return
            last_problem = problem
        if time.monotonic() >= deadline:
            raise BrokerStartFailed(
                f"the broker at {config.bootstrap} was not ready before the deadline ({last_problem}); "
                f"see {config.log_path}.\n"
                f"--- last {_LOG_TAIL_LINES} lines of the broker log ---\n{_file_tail(config.log_path)}"
            )
        time.sleep(0.2)


def _metadata_problem(bootstrap: str, node_id: int = NODE_ID) -> str | None:
    """Ask the broker for cluster metadata with aiokafka; return None on success, else what went wrong.

    Runs in a worker thread with its own event loop, so ``start()`` works from synchronous code, from
    pytest's synchronous fixtures, and from inside a running event loop alike.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="kafka-probe") as pool:
        return pool.submit(asyncio.run, _probe_metadata(bootstrap, node_id)).result()


async def _probe_metadata(bootstrap: str, node_id: int) -> str | None:
    from aiokafka.admin import AIOKafkaAdminClient  # imported lazily: install/stop/status do not need it

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
    except Exception as exc:  # any failure just means "not ready yet"; the caller keeps polling
        return f"metadata request failed: {exc!r}"
    finally:
        await admin.close()
    brokers = {broker["node_id"] for broker in cluster.get("brokers", [])}
    if node_id not in brokers:
        return f"metadata lists brokers {sorted(brokers)}, not node {node_id}"
    return None


def _port_accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1.0):
        return True
    return False


def _port_is_free(port: int) -> bool:
    """True if ``port`` can be bound the way the JVM binds it (SO_REUSEADDR, so TIME_WAIT does not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


# ---------------------------------------------------------------------------------------------------------
# Processes and files
# ---------------------------------------------------------------------------------------------------------


def _pid_is_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie (0 and negative pids name groups, never one process)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        with contextlib.suppress(OSError):
            # "pid (comm) S ...": the state letter follows the last ')'.
            return stat.read_text().rpartition(")")[2].split()[0] != "Z"
    return True


def _pid_is_broker(pid: int, properties_path: Path) -> bool:
    """True if ``pid`` is alive and (where /proc exists) is a kafka.Kafka JVM started with this config."""
    if not _pid_is_alive(pid):
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.exists():
        return True  # no /proc (macOS): trust the pid file
    try:
        arguments = cmdline.read_bytes().split(b"\0")
    except OSError:
        return False
    return b"kafka.Kafka" in arguments and os.fsencode(properties_path) in arguments


def _file_tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 256 * 1024))
            text = handle.read().decode(errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return _tail_lines(text.splitlines(), lines)


def _tail_lines(lines: Sequence[str], count: int) -> str:
    return "\n".join(lines[-count:])


# ---------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------

_EPILOG: Final = f"""\
examples:
  scripts/kafka install      fetch the jars once (a no-op when cached)
  scripts/kafka start        start on {HOST}:{DEFAULT_PORT} (controller :{DEFAULT_CONTROLLER_PORT}) in .cache/kafka-data
  scripts/kafka status       exit code 0 if running, 3 if not
  scripts/kafka stop         SIGTERM, then SIGKILL after --timeout seconds
  scripts/kafka kill         SIGKILL: a crash; data survives and `start` recovers it
  scripts/kafka cluster start|stop|status   3 nodes on {HOST}:19192,19194,19196 in .cache/kafka-cluster

environment:
  {HOME_ENV}  where the jars are cached (default <repo>/.cache/kafka/{KAFKA_VERSION})
  JAVA_HOME      the JDK that runs the broker (default: java on PATH; 17 or newer)
"""


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.localkafka",
        description=(
            f"Install and run a real single-node Apache Kafka {KAFKA_VERSION} (KRaft, broker+controller) on "
            f"{HOST}, fetched from Maven Central with mvn and run with the local java."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--home", type=Path, default=None, help=f"jar cache directory (default: ${HOME_ENV} or {default_kafka_home()})"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("install", help="fetch the Kafka jars with mvn (no-op when cached)")

    def add_data_dir(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--data-dir", type=Path, default=default_data_dir(), help="broker data directory (default: %(default)s)"
        )

    def add_start_options(sub: argparse.ArgumentParser) -> None:
        add_data_dir(sub)
        sub.add_argument("--port", type=int, default=DEFAULT_PORT, help="client listener port (default: %(default)s)")
        sub.add_argument(
            "--controller-port",
            type=int,
            default=DEFAULT_CONTROLLER_PORT,
            help="KRaft controller listener port (default: %(default)s)",
        )
        sub.add_argument("--heap", default=DEFAULT_HEAP, help="JVM -Xmx (default: %(default)s)")
        sub.add_argument(
            "--timeout", type=float, default=60.0, help="seconds to wait for readiness (default: %(default)s)"
        )

    add_start_options(commands.add_parser("start", help="install if needed, start, wait until ready"))
    restart = commands.add_parser("restart", help="stop (if running) and start again with the same data dir")
    add_start_options(restart)
    stop = commands.add_parser("stop", help="stop the broker named by the pid file (SIGTERM, then SIGKILL)")
    add_data_dir(stop)
    stop.add_argument("--timeout", type=float, default=30.0, help="seconds before SIGKILL (default: %(default)s)")
    add_data_dir(commands.add_parser("status", help="say whether the broker runs and where it listens"))
    add_data_dir(commands.add_parser("kill", help="SIGKILL the broker named by the pid file"))
    cluster = commands.add_parser(
        "cluster",
        help="a 3-node cluster (combined broker+controller nodes, replication 3, min ISR 2)",
        description="Start, stop or show a local 3-node KRaft cluster (tools/kafkacluster.py).",
    )
    cluster.add_argument("action", choices=("start", "stop", "status"))
    cluster.add_argument(
        "--data-dir", type=Path, default=None, help="cluster directory (default: <repo>/.cache/kafka-cluster)"
    )
    cluster.add_argument(
        "--base-port",
        type=int,
        default=None,
        help="node i listens on base + 2(i-1), its controller on the port after (default: 19192)",
    )
    cluster.add_argument("--timeout", type=float, default=90.0, help="seconds to wait (default: %(default)s)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the process exit code."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = _build_parser().parse_args(argv)
    try:
        return _run_command(args)
    except LocalKafkaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _run_command(args: argparse.Namespace) -> int:
    home: Path | None = args.home
    command: str = args.command
    if command == "install":
        installation = install(home)
        verb = "installed" if installation.fetched else "already installed"
        print(
            f"{verb} Kafka {KAFKA_VERSION} in {installation.home} "
            f"({installation.jar_count} jars) in {installation.duration_s:.1f} s"
        )
        return 0

    if command == "cluster":
        return _run_cluster_command(args)
    data_dir: Path = args.data_dir.resolve()
    running = attach(data_dir, home=home)
    if command == "status":
        if running is None:
            print(f"not running (data dir {data_dir})")
            return 3
        print(f"running: pid {running.pid}, bootstrap {running.bootstrap}, log {running.log_path}")
        return 0
    if command in ("stop", "kill"):
        if running is None:
            print(f"not running (data dir {data_dir})")
            return 0
        began = time.monotonic()
        if command == "stop":
            running.stop(timeout=args.timeout)
        else:
            running.kill()
        verb = "stopped" if command == "stop" else "killed"
        print(f"{verb} broker pid {running.pid} in {time.monotonic() - began:.1f} s")
        return 0

    # start / restart
    if running is not None:
        if command == "start":
            print(f"already running: pid {running.pid}, bootstrap {running.bootstrap}")
            return 0
        began = time.monotonic()
        running.stop()
        print(f"stopped broker pid {running.pid} in {time.monotonic() - began:.1f} s")
    installation = install(home)
    if installation.fetched:
        print(f"installed Kafka {KAFKA_VERSION} ({installation.jar_count} jars) in {installation.duration_s:.1f} s")
    handle = start(
        port=args.port,
        controller_port=args.controller_port,
        data_dir=data_dir,
        heap=args.heap,
        home=home,
        ready_timeout=args.timeout,
    )
    print(
        f"started Kafka {KAFKA_VERSION}: pid {handle.pid}, bootstrap {handle.bootstrap}, "
        f"ready in {handle.startup_seconds or 0.0:.1f} s, log {handle.log_path}"
    )
    return 0


def _run_cluster_command(args: argparse.Namespace) -> int:
    from tools import kafkacluster  # a module of its own; it builds on this one

    base_dir: Path = (args.data_dir or kafkacluster.default_cluster_dir()).resolve()
    cluster = kafkacluster.attach_cluster(base_dir, home=args.home)
    running = cluster.running() if cluster is not None else []
    action: str = args.action
    if action == "status":
        if cluster is None:
            print(f"no cluster in {base_dir}")
            return 3
        for node in cluster.nodes:
            state = f"running, pid {node.pid}" if node.is_running() else "not running"
            print(f"node {node.config.node_id}: {node.bootstrap} {state}, log {node.log_path}")
        print(f"bootstrap {cluster.bootstrap}")
        return 0 if len(running) == len(cluster.nodes) else 3
    if action == "stop":
        if cluster is None or not running:
            print(f"not running (cluster dir {base_dir})")
            return 0
        began = time.monotonic()
        cluster.stop(timeout=args.timeout)
        print(f"stopped nodes {running} in {time.monotonic() - began:.1f} s")
        return 0
    if cluster is not None and running:
        print(f"already running: nodes {running}, bootstrap {cluster.bootstrap}")
        return 0
    options: dict[str, Any] = {"home": args.home, "ready_timeout": args.timeout}
    if args.base_port is not None:
        options["base_port"] = args.base_port
    elif cluster is not None:  # a stopped cluster starts again on its own ports
        options["ports"] = [(node.config.port, node.config.controller_port) for node in cluster.nodes]
    started = kafkacluster.start_cluster(base_dir, **options)
    print(
        f"started a {len(started.nodes)}-node Kafka {KAFKA_VERSION} cluster in {started.startup_seconds or 0.0:.1f} s: "
        f"bootstrap {started.bootstrap}, logs {base_dir}/node-*/logs/broker.log"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
