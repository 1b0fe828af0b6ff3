"""docker-compose.yml, deploy/*.yaml, deploy/prometheus.yml and the Dockerfile, checked against the code.

docker-compose.yml is also validated as ``docker compose config`` does: against the compose-spec JSON schema
(compose-go's own copy, fetched once through the Go module proxy) and for references to undeclared services
and volumes.

Docker and Kubernetes are not needed: the files are parsed with PyYAML and every command, environment
variable, port, probe path, consumer group, topic and replica cap is compared with what the code really
accepts or uses. The variable names come from the ``setting(env, ...)`` metadata of ``services/config.py``
(and the ``--help`` of the commands that read a few more), so renaming a variable fails here.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib
import importlib.util
import io
import json
import re
import shlex
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import msgspec
import msgspec.inspect as mi
import pytest
import yaml
from prometheus_client import CollectorRegistry

from services.config import KafkaSettings, ProcessorConfig, SenderConfig
from services.metrics import start_metrics_server
from services.setup_topics import read_args
from tools.gotool import COMPOSE_SPEC, module_dir

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DEPLOY = ROOT / "deploy"
APP_IMAGE_MODULES = {"services.processor", "services.sender", "services.setup_topics", "tools.demo.endpoint"}


# --------------------------------------------------------------------------------------------------------
# What the code declares
# --------------------------------------------------------------------------------------------------------


def setting_envs(config_type: type[msgspec.Struct]) -> dict[str, Any]:
    """``{env name: default}`` of every ``setting(...)`` field of ``config_type``, nested structs included."""
    found: dict[str, Any] = {}
    info = mi.type_info(config_type)
    assert isinstance(info, mi.StructType)
    for field in info.fields:
        if isinstance(field.type, mi.StructType):
            found.update(setting_envs(field.type.cls))
        else:
            assert isinstance(field.type, mi.Metadata) and field.type.extra, f"{field.name} lacks setting()"
            default = None if field.default is msgspec.NODEFAULT else field.default
            found[field.type.extra["env"]] = default
    return found


PROCESSOR_ENVS = setting_envs(ProcessorConfig)
SENDER_ENVS = setting_envs(SenderConfig)
KAFKA_ENVS = setting_envs(KafkaSettings)


def main_module(module: str) -> str:
    """What ``python -m module`` runs: the module itself, or the package's ``__main__``."""
    spec = importlib.util.find_spec(module)
    assert spec is not None, f"no module {module!r}: `python -m {module}` would fail"
    return f"{module}.__main__" if spec.submodule_search_locations is not None else module


def parser_of(module: str) -> argparse.ArgumentParser:
    parser = importlib.import_module(main_module(module)).build_parser()
    assert isinstance(parser, argparse.ArgumentParser)
    return parser


def help_envs(module: str) -> set[str]:
    """Variables a command's ``--help`` says it reads (``[env X; ...]`` or ``(env X; ...)``)."""
    return set(re.findall(r"\benv\s+([A-Z][A-Z0-9_]+)", parser_of(module).format_help()))


def envs_read_by(module: str) -> set[str]:
    """Every environment variable ``python -m <module>`` reads."""
    by_module = {
        "services.processor": set(PROCESSOR_ENVS),
        "services.sender": set(SENDER_ENVS),
        "services.setup_topics": set(PROCESSOR_ENVS),
        "services.lag": set(PROCESSOR_ENVS) | set(SENDER_ENVS),  # default groups come from both configs
        "services.dlq_replay": set(PROCESSOR_ENVS),
    }
    return by_module.get(module, set()) | help_envs(module)


def check_command(argv: list[str]) -> str:
    """``argv`` is ``python -m services.X [flags]`` (or ``tools.X`` for the compose-only demo endpoint): the module
    exists and its parser accepts the flags."""
    assert argv[:2] == ["python", "-m"], f"expected `python -m services.<name> ...`, got {argv}"
    module = argv[2]
    assert module.startswith(("services.", "tools.")), argv
    importlib.import_module(main_module(module))
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            parser_of(module).parse_args(argv[3:])
    except SystemExit as exc:
        pytest.fail(f"`{shlex.join(argv)}` is refused by the module's parser: {errors.getvalue().strip()} ({exc})")
    return module


def setup_partitions(args: list[str], env: Mapping[str, str]) -> tuple[int, int]:
    """(facts partitions, events partitions) that ``python -m services.setup_topics args`` creates under ``env``."""
    wanted = read_args(parser_of("services.setup_topics").parse_args(args), env)
    return wanted.partitions, wanted.events_partitions or wanted.partitions


def effective(env: Mapping[str, Any], config_envs: Mapping[str, Any], name: str) -> str:
    value = env.get(name, config_envs[name])
    return str(value)


# --------------------------------------------------------------------------------------------------------
# The metrics server's real routes
# --------------------------------------------------------------------------------------------------------


def status_of(path: str, *, ready: bool) -> int:
    server = start_metrics_server(0, CollectorRegistry(), ready=lambda: ready, host="127.0.0.1")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    finally:
        server.close()


def test_probe_paths_exist_on_the_metrics_server() -> None:
    assert status_of("/healthz", ready=False) == 200
    assert status_of("/readyz", ready=True) == 200
    assert status_of("/readyz", ready=False) == 503
    assert status_of("/metrics", ready=False) == 200


# --------------------------------------------------------------------------------------------------------
# docker-compose.yml
# --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def services_of(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services = compose["services"]
    assert isinstance(services, dict)
    return services


def argv_of(service: dict[str, Any]) -> list[str]:
    entry = service.get("entrypoint") or []
    command = service.get("command") or []
    argv = [*entry, *command] if isinstance(entry, list) and isinstance(command, list) else None
    assert argv is not None, "use the exec (list) form for entrypoint and command"
    return [str(a) for a in argv]


def app_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services_of(compose).items() if str(s.get("image", "")).startswith("review-")}


_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>[^}]*))?\}")


def interpolated(node: Any) -> Any:
    """``node`` with ``${VAR}`` and ``${VAR:-default}`` replaced as compose does with nothing set."""
    if isinstance(node, str):
        return _VARIABLE.sub(lambda m: m.group("default") or "", node)
    if isinstance(node, dict):
        return {key: interpolated(value) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolated(value) for value in node]
    return node


@pytest.fixture(scope="module")
def compose_spec() -> jsonschema.Draft202012Validator:
    """The JSON schema ``docker compose config`` validates with, from compose-go through the Go module proxy."""
    schema = json.loads((module_dir(COMPOSE_SPEC) / "schema" / "compose-spec.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def compose_errors(validator: jsonschema.Draft202012Validator, document: dict[str, Any]) -> list[str]:
    """What ``docker compose config`` would refuse: schema errors, then references to undeclared names."""
    document = interpolated(document)
    errors = [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(document)
    ]
    services = document.get("services") or {}
    declared_volumes = set(document.get("volumes") or {})
    for name, service in services.items():
        depends = service.get("depends_on") or []
        for target in depends if isinstance(depends, list) else list(depends):
            if target not in services:
                errors.append(f"services/{name}/depends_on: undefined service {target!r}")
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source", "")
            if source and not source.startswith((".", "/", "~")) and source not in declared_volumes:
                errors.append(f"services/{name}/volumes: undefined volume {source!r}")
    return errors


def test_compose_file_passes_the_compose_spec_schema_and_its_references_resolve(
    compose: dict[str, Any], compose_spec: jsonschema.Draft202012Validator
) -> None:
    assert compose_errors(compose_spec, compose) == []


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (lambda c: c["services"]["kafka"].update(enviroment={}), "'enviroment' was unexpected"),
        (lambda c: c["services"]["kafka"].update(ports="9092:9092"), "is not of type 'array'"),
        (lambda c: c["services"]["kafka"].update(depends_on=["no-such-service"]), "undefined service"),
        (lambda c: c["services"]["kafka"].update(volumes=["no-such-volume:/data"]), "undefined volume"),
    ],
    ids=["misspelt-key", "wrong-type", "unknown-dependency", "undeclared-volume"],
)
def test_compose_check_refuses_a_broken_compose_file(
    compose: dict[str, Any],
    compose_spec: jsonschema.Draft202012Validator,
    breakage: Callable[[dict[str, Any]], None],
    expected: str,
) -> None:
    broken = copy.deepcopy(compose)
    breakage(broken)
    assert any(expected in error for error in compose_errors(compose_spec, broken))


def test_compose_has_the_whole_stack(compose: dict[str, Any]) -> None:
    services = services_of(compose)
    modules = {check_command(argv_of(s)) for s in app_services(compose).values()}
    assert modules >= APP_IMAGE_MODULES
    assert str(services["kafka"]["image"]).startswith("apache/kafka:")
    assert str(services["prometheus"]["image"]).startswith("prom/prometheus:")


def test_every_app_service_is_built_from_the_dockerfile_and_runs_a_real_command(compose: dict[str, Any]) -> None:
    for name, service in app_services(compose).items():
        assert service.get("build") == ".", name
        check_command(argv_of(service))


def test_kafka_runs_in_kraft_mode_with_a_listener_for_compose_clients_and_one_for_the_host(
    compose: dict[str, Any],
) -> None:
    kafka = services_of(compose)["kafka"]
    env = {k: str(v) for k, v in kafka["environment"].items()}
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert not any("ZOOKEEPER" in key for key in env)
    advertised = dict(reversed(item.split("://", 1)) for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    # Clients in compose use KAFKA_BOOTSTRAP_SERVERS; the host uses the services' default address.
    for name, service in app_services(compose).items():
        bootstrap = service.get("environment", {}).get("KAFKA_BOOTSTRAP_SERVERS")
        if check_command(argv_of(service)) != "tools.demo.endpoint":
            assert bootstrap in advertised, f"{name}: KAFKA_BOOTSTRAP_SERVERS={bootstrap} is not advertised"
    default = str(KAFKA_ENVS["KAFKA_BOOTSTRAP_SERVERS"])
    assert default in advertised
    assert f"127.0.0.1:{default.rsplit(':', 1)[1]}:{default.rsplit(':', 1)[1]}" in kafka["ports"]
    assert "kafka-broker-api-versions.sh" in " ".join(kafka["healthcheck"]["test"])


def test_compose_environment_keys_are_settings_the_commands_read(compose: dict[str, Any]) -> None:
    for name, service in app_services(compose).items():
        module = check_command(argv_of(service))
        unknown = set(service.get("environment", {})) - envs_read_by(module)
        assert not unknown, f"compose service {name!r} sets variables `{module}` does not read: {sorted(unknown)}"


def test_compose_health_checks_and_prometheus_targets_use_the_configured_ports(compose: dict[str, Any]) -> None:
    services = services_of(compose)
    prometheus = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    for name, config_envs, port_var in (
        ("reducer", PROCESSOR_ENVS, "PROCESSOR_METRICS_PORT"),
        ("sender", SENDER_ENVS, "SENDER_METRICS_PORT"),
    ):
        env = services[name]["environment"]
        port = int(effective(env, config_envs, port_var))
        assert port == config_envs[port_var], f"{name}: keep the default metrics port {config_envs[port_var]}"
        assert f"http://127.0.0.1:{port}/healthz" in " ".join(services[name]["healthcheck"]["test"])
        (sd,) = jobs[name]["dns_sd_configs"]
        assert sd["names"] == [name] and sd["port"] == port
        assert jobs[name].get("metrics_path", "/metrics") == "/metrics"
    endpoint = services["endpoint"]
    endpoint_args = parser_of("tools.demo.endpoint").parse_args(argv_of(endpoint)[3:])
    url = urlsplit(str(services["sender"]["environment"]["SENDER_ENDPOINT_URL"]))
    assert (url.hostname, url.port) == ("endpoint", endpoint_args.port)
    assert endpoint_args.host == "0.0.0.0"
    assert f":{endpoint_args.port}/healthz" in " ".join(endpoint["healthcheck"]["test"])
    # The endpoint checks exactly the token the sender sends.
    assert services["sender"]["environment"]["SENDER_AUTH_TOKEN"] == endpoint["environment"]["ENDPOINT_EXPECTED_TOKEN"]


def test_compose_runs_two_reducers_after_topic_setup_and_no_more_than_partitions(compose: dict[str, Any]) -> None:
    services = services_of(compose)
    setup = services["setup-topics"]
    partitions, _ = setup_partitions(argv_of(setup)[3:], {k: str(v) for k, v in setup["environment"].items()})
    replicas = services["reducer"]["deploy"]["replicas"]
    assert replicas == 2 and replicas <= partitions
    for name in ("reducer", "sender"):
        assert services[name]["depends_on"]["setup-topics"]["condition"] == "service_completed_successfully"
    assert setup["depends_on"]["kafka"]["condition"] == "service_healthy"
    env = services["reducer"]["environment"]
    sender_env = services["sender"]["environment"]
    setup_env = setup["environment"]
    # The topics setup-topics creates are the ones the services use.
    assert effective(setup_env, PROCESSOR_ENVS, "PROCESSOR_FACTS_TOPIC") == effective(
        env, PROCESSOR_ENVS, "PROCESSOR_FACTS_TOPIC"
    )
    assert effective(env, PROCESSOR_ENVS, "PROCESSOR_EVENTS_TOPIC") == effective(
        sender_env, SENDER_ENVS, "SENDER_EVENTS_TOPIC"
    )
    assert effective(setup_env, PROCESSOR_ENVS, "PROCESSOR_GROUP_ID") == effective(
        env, PROCESSOR_ENVS, "PROCESSOR_GROUP_ID"
    )


def test_the_dockerfile_installs_the_project_on_python_3_11_slim() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.MULTILINE)
    assert re.search(r"^RUN pip install \.", text, re.MULTILINE)
    copied = [
        source
        for line in text.splitlines()
        if line.startswith("COPY ")
        for source in line.split()[1:-1]
        if not source.startswith("--")
    ]
    for source in copied:
        assert (ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"
    for package in ("schemas", "reducer", "services"):
        assert package in copied, f"Dockerfile does not copy the {package} package"
    assert re.search(r"^USER \d+", text, re.MULTILINE), "run as a non-root user"


# --------------------------------------------------------------------------------------------------------
# deploy/*.yaml (Kubernetes)
# --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    docs = []
    files = sorted(DEPLOY.glob("*.yaml"))
    assert files, "deploy/ has no manifests"
    for path in files:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                assert {"apiVersion", "kind", "metadata"} <= set(doc), f"{path.name}: not a Kubernetes object"
                docs.append(doc)
    return docs


def by_kind(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in manifests if doc["kind"] == kind}


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec = workload["spec"]["template"]["spec"]
    assert isinstance(spec, dict)
    return spec


def container_env(container: dict[str, Any], manifests: list[dict[str, Any]]) -> dict[str, str]:
    """The literal environment of a container: its ConfigMaps, then its ``env`` values (not secret refs)."""
    config_maps = by_kind(manifests, "ConfigMap")
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        name = source["configMapRef"]["name"]
        assert name in config_maps, f"envFrom names ConfigMap {name!r}, which deploy/ does not define"
        env.update({k: str(v) for k, v in config_maps[name]["data"].items()})
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
    return env


def workloads(manifests: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for kind in ("Deployment", "Job"):
        for name, doc in by_kind(manifests, kind).items():
            for container in pod_spec(doc)["containers"]:
                yield f"{kind}/{name}", doc, container


def test_every_manifest_container_runs_a_real_command_with_variables_it_reads(manifests: list[dict[str, Any]]) -> None:
    secrets = by_kind(manifests, "Secret")
    seen = set()
    for where, _doc, container in workloads(manifests):
        module = check_command([*container["command"], *container.get("args", [])])
        seen.add(module)
        names = set(container_env(container, manifests)) | {item["name"] for item in container.get("env", [])}
        unknown = names - envs_read_by(module)
        assert not unknown, f"{where} sets variables `{module}` does not read: {sorted(unknown)}"
        for item in container.get("env", []):
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            if ref is not None:
                assert ref["name"] in secrets, f"{where}: Secret {ref['name']!r} is not defined"
                assert ref["key"] in secrets[ref["name"]]["stringData"], f"{where}: Secret key {ref['key']!r}"
    assert seen == {"services.processor", "services.sender", "services.setup_topics", "services.lag"}


DEPLOYMENTS = {
    "review-analytics-reducer": ("services.processor", PROCESSOR_ENVS, "PROCESSOR_METRICS_PORT"),
    "review-analytics-sender": ("services.sender", SENDER_ENVS, "SENDER_METRICS_PORT"),
}


LAG_EXPORTER = "review-analytics-lag-exporter"


def test_deployments_probe_the_metrics_server_on_the_configured_port(manifests: list[dict[str, Any]]) -> None:
    deployments = by_kind(manifests, "Deployment")
    assert set(deployments) == {*DEPLOYMENTS, LAG_EXPORTER}
    for name, (module, config_envs, port_var) in DEPLOYMENTS.items():
        deployment = deployments[name]
        (container,) = pod_spec(deployment)["containers"]
        assert check_command(container["command"]) == module
        env = container_env(container, manifests)
        port = int(effective(env, config_envs, port_var))
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"metrics": port}
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            if probe in container:
                assert container[probe]["httpGet"]["port"] in (port, "metrics"), f"{name} {probe}"
                assert status_of(container[probe]["httpGet"]["path"], ready=True) == 200
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(port)
        assert annotations["prometheus.io/path"] == "/metrics"
        requests = container["resources"]["requests"]
        assert {"cpu", "memory"} <= set(requests), f"{name}: set cpu and memory requests"
        # SIGTERM handling needs time to commit; the default 30 s is the floor.
        assert pod_spec(deployment).get("terminationGracePeriodSeconds", 30) >= 30


def test_the_lag_exporter_serves_on_its_port_and_reads_the_groups_and_topics_the_services_use(
    manifests: list[dict[str, Any]],
) -> None:
    deployments = by_kind(manifests, "Deployment")
    exporter = deployments[LAG_EXPORTER]
    (container,) = pod_spec(exporter)["containers"]
    argv = [*container["command"], *container["args"]]
    assert check_command(argv) == "services.lag"
    port = int(argv[argv.index("--serve") + 1])
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"metrics": port}
    assert exporter["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    env = container_env(container, manifests)
    for name, config_envs, variables in (
        ("review-analytics-reducer", PROCESSOR_ENVS, ("PROCESSOR_GROUP_ID", "PROCESSOR_FACTS_TOPIC")),
        ("review-analytics-sender", SENDER_ENVS, ("SENDER_GROUP_ID", "SENDER_EVENTS_TOPIC", "SENDER_DLQ_TOPIC")),
    ):
        service_env = container_env(pod_spec(deployments[name])["containers"][0], manifests)
        for variable in variables:
            assert effective(env, config_envs, variable) == effective(service_env, config_envs, variable), variable


def test_each_deployment_has_a_pod_disruption_budget_selecting_its_pods(manifests: list[dict[str, Any]]) -> None:
    budgets = list(by_kind(manifests, "PodDisruptionBudget").values())
    for name, deployment in by_kind(manifests, "Deployment").items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        matching = [b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert len(matching) == 1, f"Deployment {name} needs exactly one PodDisruptionBudget"
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_keda_scales_on_the_real_groups_and_topics_and_caps_replicas_at_the_partition_count(
    manifests: list[dict[str, Any]],
) -> None:
    jobs = by_kind(manifests, "Job")
    (setup,) = [pod_spec(job)["containers"][0] for job in jobs.values()]
    setup_env = container_env(setup, manifests)
    facts_partitions, events_partitions = setup_partitions(setup.get("args", []), setup_env)
    deployments = by_kind(manifests, "Deployment")
    kafka_map = by_kind(manifests, "ConfigMap")["review-analytics-kafka"]["data"]
    scaled = by_kind(manifests, "ScaledObject")
    expected = {
        "review-analytics-reducer": (
            ProcessorConfig().group_id,
            "PROCESSOR_GROUP_ID",
            ProcessorConfig().facts_topic,
            "PROCESSOR_FACTS_TOPIC",
            PROCESSOR_ENVS,
            facts_partitions,
        ),
        "review-analytics-sender": (
            SenderConfig().group_id,
            "SENDER_GROUP_ID",
            SenderConfig().events_topic,
            "SENDER_EVENTS_TOPIC",
            SENDER_ENVS,
            events_partitions,
        ),
    }
    assert {s["spec"]["scaleTargetRef"]["name"] for s in scaled.values()} == set(expected)
    for obj in scaled.values():
        target = obj["spec"]["scaleTargetRef"]["name"]
        group, group_var, topic, topic_var, config_envs, partitions = expected[target]
        assert target in deployments
        (container,) = pod_spec(deployments[target])["containers"]
        env = container_env(container, manifests)
        (trigger,) = obj["spec"]["triggers"]
        assert trigger["type"] == "kafka"
        meta = trigger["metadata"]
        assert meta["consumerGroup"] == group == effective(env, config_envs, group_var)
        assert meta["topic"] == topic == effective(env, config_envs, topic_var)
        assert meta["bootstrapServers"] == kafka_map["KAFKA_BOOTSTRAP_SERVERS"]
        assert meta.get("allowIdleConsumers", "false") == "false"
        assert meta["offsetResetPolicy"] == "earliest"
        assert obj["spec"]["maxReplicaCount"] == partitions, f"{target}: cap replicas at {partitions} partitions"
        assert 1 <= obj["spec"]["minReplicaCount"] <= partitions
        assert "replicas" not in deployments[target]["spec"], f"{target}: KEDA owns the replica count"
    # The setup job creates the topics the services use.
    reducer_env = container_env(pod_spec(deployments["review-analytics-reducer"])["containers"][0], manifests)
    for var in ("PROCESSOR_FACTS_TOPIC", "PROCESSOR_EVENTS_TOPIC", "PROCESSOR_GROUP_ID"):
        assert effective(setup_env, PROCESSOR_ENVS, var) == effective(reducer_env, PROCESSOR_ENVS, var)


def test_renaming_a_setting_would_be_caught() -> None:
    """The checks above compare against introspected names: a name that is not a setting is refused."""
    assert "PROCESSOR_METRICS_PORT" in envs_read_by("services.processor")
    assert "PROCESSOR_METRICS_PORTS" not in envs_read_by("services.processor")
    assert "SENDER_AUTH_TOKEN" in envs_read_by("services.sender")
    assert "SETUP_PARTITIONS" in envs_read_by("services.setup_topics")
