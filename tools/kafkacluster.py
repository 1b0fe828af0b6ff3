"""A local 3-node Apache Kafka (KRaft) cluster on 127.0.0.1, built from ``tools.localkafka`` nodes.

Every node is a combined broker+controller (``process.roles=broker,controller``) and a voter of one static
quorum of all nodes. That is the smallest layout with a real quorum (2 of 3) and real replication (factor 3,
``min.insync.replicas=2``) in three JVMs instead of six; separate controllers would add three JVMs and
change nothing the pipeline sees. The price: killing a node also kills a controller, so "two nodes down"
is a loss of the metadata quorum as well as of the in-sync replicas, which is the harder case.

Layout: ``<base dir>/node-<id>/`` is one ``tools.localkafka`` data dir per node (``server.properties``,
``kraft-logs/``, ``logs/broker.log``, ``broker.pid``). Ports: node ``i`` (1-based) listens for clients on
``base_port + 2 (i - 1)`` and for the quorum on the port after it.

Public API::

    start_cluster(base_dir, nodes=3, base_port=None, ...) -> ClusterHandle   # returns when every node serves
    attach_cluster(base_dir) -> ClusterHandle | None                          # nodes started earlier
    ClusterHandle: .bootstrap .nodes .node(id) .stop() .running() .ensure_all_running()

Each node's configuration is a ``tools.localkafka.BrokerConfig`` (its ``server_properties()`` is the per-node
generator); ``start_cluster(configure=...)`` may replace each one before the first start, e.g. to add
listeners to one node through its ``overrides``.

Command line: ``python -m tools.localkafka cluster {start,stop,status} --help``.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from tools.localkafka import (
    REPO_ROOT,
    BrokerConfig,
    BrokerError,
    BrokerHandle,
    PortInUse,
    _await_ready,
    _new_cluster_id,
    _spawn,
    attach,
    default_kafka_home,
    find_java,
    free_ports,
    install,
)

__all__ = [
    "CLUSTER_SIZE",
    "DEFAULT_CLUSTER_BASE_PORT",
    "ClusterHandle",
    "attach_cluster",
    "default_cluster_dir",
    "start_cluster",
    "start_cluster_on_free_ports",
]

CLUSTER_SIZE: Final = 3
DEFAULT_CLUSTER_BASE_PORT: Final = 19192
"""Node 1: 19192 (clients) / 19193 (quorum), node 2: 19194 / 19195, node 3: 19196 / 19197."""
CLUSTER_HEAP: Final = "384m"
"""-Xmx of each node: three nodes fit in about 1 GB of RSS."""


def default_cluster_dir() -> Path:
    """The CLI's cluster directory, ``<repo>/.cache/kafka-cluster``; tests use temporary directories."""
    return REPO_ROOT / ".cache" / "kafka-cluster"


class ClusterHandle:
    """The nodes of one local cluster, by node id (1..n)."""

    def __init__(self, nodes: Sequence[BrokerHandle]) -> None:
        self.nodes = list(nodes)
        self.startup_seconds: float | None = None
        """How long :func:`start_cluster` took, from the first launch to every node serving."""

    def __repr__(self) -> str:
        return f"ClusterHandle(bootstrap={self.bootstrap!r})"

    @property
    def bootstrap(self) -> str:
        """Every node's client address, comma-separated (``KAFKA_BOOTSTRAP_SERVERS``)."""
        return ",".join(node.bootstrap for node in self.nodes)

    def node(self, node_id: int) -> BrokerHandle:
        for node in self.nodes:
            if node.config.node_id == node_id:
                return node
        raise KeyError(f"no node {node_id} in {self!r}")

    def running(self) -> list[int]:
        return [node.config.node_id for node in self.nodes if node.is_running()]

    def ensure_all_running(self, ready_timeout: float = 90.0) -> list[int]:
        """Resume every node (a paused one would otherwise stay paused) and start those that are down, all at
        once, then wait until each serves. Returns the ids it started."""
        for node in self.nodes:
            node.resume()
        down = [node for node in self.nodes if not node.is_running()]
        for node in down:
            node.start_again()
        for node in down:
            node.wait_ready(ready_timeout)
        return [node.config.node_id for node in down]

    def stop(self, timeout: float = 30.0) -> None:
        """Stop every node cleanly, all at once (a node stopped alone waits for the others' quorum)."""
        for node in self.nodes:
            node.resume()
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(self.nodes)) as pool:
            list(pool.map(lambda node: node.stop(timeout), self.nodes))


def node_configs(
    base_dir: Path,
    ports: Sequence[tuple[int, int]],
    *,
    heap: str = CLUSTER_HEAP,
    cluster_id: str | None = None,
) -> list[BrokerConfig]:
    """One ``BrokerConfig`` per ``(client port, controller port)``: node ids 1..n, one quorum of all of them."""
    voters = tuple((index, controller) for index, (_, controller) in enumerate(ports, start=1))
    cluster_id = cluster_id or _new_cluster_id()
    return [
        BrokerConfig(
            port=port,
            controller_port=controller,
            data_dir=(base_dir / f"node-{index}").resolve(),
            heap=heap,
            node_id=index,
            voters=voters,
            cluster_id=cluster_id,
        )
        for index, (port, controller) in enumerate(ports, start=1)
    ]


def start_cluster(
    base_dir: Path | None = None,
    *,
    nodes: int = CLUSTER_SIZE,
    base_port: int = DEFAULT_CLUSTER_BASE_PORT,
    ports: Sequence[tuple[int, int]] | None = None,
    heap: str = CLUSTER_HEAP,
    home: Path | None = None,
    ready_timeout: float = 90.0,
    configure: Callable[[BrokerConfig], BrokerConfig] | None = None,
) -> ClusterHandle:
    """Start ``nodes`` combined nodes and return once every one of them serves (lists itself in metadata).

    The JVMs are launched together (a node cannot be ready before a majority of the quorum runs), then
    waited for one by one. ``ports`` (``(client, controller)`` per node) replaces ``base_port``.
    ``configure`` gets each node's config before it is written and returns the one to use.

    Raises ``BrokerAlreadyRunning`` if a node of ``base_dir`` still runs, ``PortInUse``, or
    ``BrokerStartFailed`` (with that node's log tail); nodes launched so far are killed first.
    """
    base_dir = (base_dir or default_cluster_dir()).resolve()
    ports = list(ports or [(base_port + 2 * i, base_port + 2 * i + 1) for i in range(nodes)])
    existing = attach_cluster(base_dir, home=home)
    if existing is not None and existing.running():
        raise BrokerError(
            f"nodes {existing.running()} of the cluster in {base_dir} are running; stop them first "
            "(`scripts/kafka cluster stop`)."
        )
    configs = node_configs(base_dir, ports, heap=heap, cluster_id=_recorded_cluster_id(base_dir))
    if configure is not None:
        configs = [configure(config) for config in configs]
    home = (home or default_kafka_home()).resolve()
    installation = install(home)
    java = find_java()
    began = time.monotonic()
    handles: list[BrokerHandle] = []
    try:
        # Format in parallel (one JVM each, about 1.5 s), then launch every node before waiting for any.
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(configs)) as pool:
            spawned = list(pool.map(lambda c: _spawn(c, installation, java), configs))
        handles = [BrokerHandle(c, home=home, pid=p.pid, process=p) for c, p in zip(configs, spawned, strict=True)]
        deadline = began + ready_timeout
        for handle, process in zip(handles, spawned, strict=True):
            _await_ready(process, handle.config, max(1.0, deadline - time.monotonic()))
            handle.startup_seconds = time.monotonic() - began
    except BaseException:
        for handle in handles:
            handle.kill()
            handle.config.pid_path.unlink(missing_ok=True)
        raise
    cluster = ClusterHandle(handles)
    cluster.startup_seconds = time.monotonic() - began
    return cluster


def start_cluster_on_free_ports(
    base_dir: Path, *, nodes: int = CLUSTER_SIZE, attempts: int = 3, **options: Any
) -> ClusterHandle:
    """:func:`start_cluster` on free loopback ports, choosing again if another process wins the race."""
    for attempt in range(1, attempts + 1):
        chosen = free_ports(2 * nodes)
        ports = [(chosen[2 * i], chosen[2 * i + 1]) for i in range(nodes)]
        try:
            return start_cluster(base_dir, nodes=nodes, ports=ports, **options)
        except PortInUse:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable: the loop returns or raises")


def attach_cluster(base_dir: Path | None = None, *, home: Path | None = None) -> ClusterHandle | None:
    """The cluster whose node dirs are in ``base_dir``: running nodes attached by pid file, stopped ones
    as handles that :meth:`ClusterHandle.ensure_all_running` can start. None if no node was ever started."""
    base_dir = (base_dir or default_cluster_dir()).resolve()
    dirs = sorted(base_dir.glob("node-*/server.properties"))
    if not dirs:
        return None
    home = (home or default_kafka_home()).resolve()
    handles = []
    for properties in dirs:
        data_dir = properties.parent
        handle = attach(data_dir, home=home)
        if handle is None:
            handle = BrokerHandle(BrokerConfig.from_data_dir(data_dir), home=home, pid=0)  # not running
        handles.append(handle)
    return ClusterHandle(sorted(handles, key=lambda h: h.config.node_id))


def _recorded_cluster_id(base_dir: Path) -> str | None:
    """The cluster id a node of ``base_dir`` was formatted with (restarts of a stopped cluster keep it)."""
    for meta in sorted(base_dir.glob("node-*/kraft-logs/meta.properties")):
        for line in meta.read_text().splitlines():
            if line.startswith("cluster.id="):
                return line.partition("=")[2].strip()
    return None
