"""deploy/helm/review-analytics, rendered by the real ``helm`` and checked against the code and deploy/*.yaml.

``helm`` is built once from source through the Go module proxy (``python -m tools.gotool install helm``, run by
scripts/test; this module builds it too when it is missing). Each values combination below is linted with
``helm lint --strict`` and rendered with ``helm template``; the rendered objects must parse, every container must
run a real ``python -m`` module with only variables that module reads, the settings must pass the services' own
validation, and the default render must keep the key fields of the plain manifests in deploy/.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from services.config import ProcessorConfig, SenderConfig, load_config
from services.errors import ConfigError
from tests.unit.test_deploy_files import (
    DEPLOY,
    PROCESSOR_ENVS,
    SENDER_ENVS,
    by_kind,
    check_command,
    container_env,
    effective,
    envs_read_by,
    pod_spec,
    setup_partitions,
    workloads,
)
from tools import gotool

CHART = DEPLOY / "helm" / "review-analytics"
CONFIG_YAML = DEPLOY / "config.yaml"
ALERTS = DEPLOY / "alerts.yml"
RELEASE = "review-analytics"  # the release name under which the chart's objects are named like deploy/*.yaml
# helm built by `go install` has no version stamp and assumes Kubernetes v1.20, below the chart's kubeVersion.
KUBE_VERSION = "1.30.0"
WORKLOAD_MODULES = {
    "reducer": "services.processor",
    "sender": "services.sender",
    "setupTopics": "services.setup_topics",
    "lagExporter": "services.lag",
}
CONFIG_OF: dict[str, type[msgspec.Struct]] = {
    "services.processor": ProcessorConfig,
    "services.sender": SenderConfig,
    "services.setup_topics": ProcessorConfig,
    "services.lag": ProcessorConfig,  # the exporter validates the same Kafka settings and reads the group names
}

# The settings that name a file: the chart mounts them from Secrets (secretEnv rows with `file: true`).
FILE_SETTINGS = {
    "KAFKA_SSL_CAFILE",
    "KAFKA_SSL_CERTFILE",
    "KAFKA_SSL_KEYFILE",
    "SENDER_ENDPOINT_CAFILE",
    "SENDER_ENDPOINT_CERTFILE",
    "SENDER_ENDPOINT_KEYFILE",
}
LAG_EXPORTER = f"{RELEASE}-lag-exporter"

SASL_SSL: dict[str, Any] = {
    "kafka": {
        "securityProtocol": "SASL_SSL",
        "sasl": {"mechanism": "SCRAM-SHA-512", "username": "review-analytics"},
    },
    "secretEnv": {"KAFKA_SSL_CAFILE": {"secretName": "kafka-cluster-ca-cert"}},
}
VALUES_CASES: dict[str, dict[str, Any]] = {
    "defaults": {},
    "keda-off": {"keda": {"enabled": False}, "reducer": {"replicas": 3}, "sender": {"replicas": 2}},
    "sasl-ssl-keda-servicemonitor": {
        **SASL_SSL,
        "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}}},
        "topics": {"partitions": 6, "eventsPartitions": 3},
    },
    "sasl-plaintext-keda-off": {
        "kafka": {
            "securityProtocol": "SASL_PLAINTEXT",
            "allowSaslPlaintext": True,
            "sasl": {"mechanism": "PLAIN", "username": "ra"},
        },
        "keda": {"enabled": False},
        "reducer": {"settings": {"PROCESSOR_MAX_BATCH_RECORDS": 2000}},
        "sender": {"settings": {"SENDER_MAX_BATCH_ROWS": "250"}},
    },
    "ssl-only-keda": {
        "kafka": {"securityProtocol": "SSL"},
        "secretEnv": {"KAFKA_SSL_CAFILE": {"secretName": "kafka-ca"}},
        "setupTopics": {"settings": {"SETUP_REPLICATION_FACTOR": "1"}},
    },
    "mutual-tls-no-lag-exporter": {
        "kafka": {"securityProtocol": "SSL"},
        "secretEnv": {
            "KAFKA_SSL_CAFILE": {"secretName": "kafka-tls"},
            "KAFKA_SSL_CERTFILE": {"secretName": "kafka-tls"},
            "KAFKA_SSL_KEYFILE": {"secretName": "kafka-tls"},
            "SENDER_ENDPOINT_CAFILE": {"secretName": "endpoint-tls"},
            "SENDER_ENDPOINT_CERTFILE": {"secretName": "endpoint-tls"},
            "SENDER_ENDPOINT_KEYFILE": {"secretName": "endpoint-tls"},
        },
        "lagExporter": {"enabled": False},
        "metrics": {"prometheusRule": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}}},
    },
}


# --------------------------------------------------------------------------------------------------------
# Running helm
# --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def helm() -> Path:
    return gotool.install("helm").path


def run_helm(helm: Path, *args: str, values: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    return subprocess.run(
        [str(helm), *args, "-f", str(values_file)], capture_output=True, text=True, timeout=120, check=False
    )


def render(helm: Path, values: dict[str, Any], tmp_path: Path) -> list[dict[str, Any]]:
    result = run_helm(
        helm,
        "template",
        RELEASE,
        str(CHART),
        "--kube-version",
        KUBE_VERSION,
        "--namespace",
        "analytics",
        values=values,
        tmp_path=tmp_path,
    )
    assert result.returncode == 0, f"helm template failed:\n{result.stderr}"
    docs = [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]
    for doc in docs:
        assert {"apiVersion", "kind", "metadata"} <= set(doc), f"not a Kubernetes object: {doc}"
    return docs


def refusal(helm: Path, values: dict[str, Any], tmp_path: Path) -> str:
    result = run_helm(
        helm, "template", RELEASE, str(CHART), "--kube-version", KUBE_VERSION, values=values, tmp_path=tmp_path
    )
    assert result.returncode != 0, f"helm template accepted {values}"
    return result.stderr


@pytest.fixture(scope="module", params=sorted(VALUES_CASES))
def case(request: pytest.FixtureRequest, helm: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Any]:
    name = str(request.param)
    return name, render(helm, VALUES_CASES[name], tmp_path_factory.mktemp(name))


@pytest.fixture(scope="module")
def default_render(helm: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    values = {"metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}}}
    return render(helm, values, tmp_path_factory.mktemp("default"))


@pytest.fixture(scope="module")
def plain() -> list[dict[str, Any]]:
    return [doc for path in sorted(DEPLOY.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


def chart_values() -> dict[str, Any]:
    loaded = yaml.safe_load((CHART / "values.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


# --------------------------------------------------------------------------------------------------------
# What the rendered objects say
# --------------------------------------------------------------------------------------------------------


def secret_refs(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container.get("env", []) if "valueFrom" in e}


def environment_with_secrets(container: dict[str, Any], docs: list[dict[str, Any]]) -> dict[str, str]:
    """What the container's process sees: literal settings, plus a stand-in for each value from a Secret."""
    return {**container_env(container, docs), **{name: "from-secret" for name in secret_refs(container)}}


def mounted_secret_files(doc: dict[str, Any], container: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """``{path in the container: (Secret, key)}`` of the Secret volumes mounted into the container."""
    volumes = {v["name"]: v["secret"] for v in pod_spec(doc).get("volumes", []) if "secret" in v}
    files = {}
    for mount in container.get("volumeMounts", []):
        secret = volumes[mount["name"]]
        assert mount.get("readOnly") is True
        for item in secret["items"]:
            files[f"{mount['mountPath']}/{item['path']}"] = (secret["secretName"], item["key"])
    return files


# --------------------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(VALUES_CASES))
def test_helm_lint_strict_passes_for_each_values_combination(helm: Path, name: str, tmp_path: Path) -> None:
    result = run_helm(helm, "lint", "--strict", str(CHART), values=VALUES_CASES[name], tmp_path=tmp_path)
    assert result.returncode == 0, f"{name}: helm lint --strict failed:\n{result.stdout}\n{result.stderr}"


def test_rendered_containers_run_real_modules_with_settings_the_services_accept(case: tuple[str, Any]) -> None:
    name, docs = case
    seen = set()
    for where, doc, container in workloads(docs):
        module = check_command([*container["command"], *container.get("args", [])])
        seen.add(module)
        env = environment_with_secrets(container, docs)
        unknown = set(env) - envs_read_by(module)
        assert not unknown, f"{name}: {where} sets variables `{module}` does not read: {sorted(unknown)}"
        # The service's own validation accepts the combination (protocol, SASL user and password, CA file).
        try:
            load_config(CONFIG_OF[module], env=env)
        except ConfigError as exc:
            pytest.fail(f"{name}: {where}: `{module}` refuses its environment: {exc}")
        for variable in FILE_SETTINGS & set(env):
            path = env[variable]
            assert path in mounted_secret_files(doc, container), f"{name}: {where}: {variable}={path} is not mounted"
    lag_exporter = VALUES_CASES[name].get("lagExporter", {}).get("enabled", True)
    assert seen == set(WORKLOAD_MODULES.values()) - (set() if lag_exporter else {"services.lag"}), name


def test_every_secret_env_row_is_a_setting_of_each_workload_it_goes_to() -> None:
    rows = chart_values()["secretEnv"]
    assert {"SENDER_AUTH_TOKEN", "KAFKA_SASL_PASSWORD", *FILE_SETTINGS} <= set(rows)
    for variable, row in rows.items():
        assert row["workloads"], variable
        for workload in row["workloads"]:
            module = WORKLOAD_MODULES[workload]
            assert variable in envs_read_by(module), (
                f"secretEnv.{variable} goes to {workload}, `{module}` does not read it"
            )
        assert row.get("keda", "") in ("", "password", "ca", "cert", "key"), variable


def test_secret_env_rows_become_secret_refs_or_mounted_files(helm: Path, tmp_path: Path) -> None:
    values = {
        **SASL_SSL,
        "secretEnv": {
            "KAFKA_SSL_CAFILE": {"secretName": "kafka-ca", "key": "bundle.pem"},
            "KAFKA_SASL_PASSWORD": {"secretName": "kafka-user", "key": "password", "optional": False},
            "SENDER_AUTH_TOKEN": {"secretName": "endpoint-token", "key": "token"},
        },
    }
    docs = render(helm, values, tmp_path)
    for where, doc, container in workloads(docs):
        module = check_command(container["command"])
        refs = secret_refs(container)
        assert refs["KAFKA_SASL_PASSWORD"] == {"name": "kafka-user", "key": "password"}, where
        if module == "services.sender":
            assert refs["SENDER_AUTH_TOKEN"] == {"name": "endpoint-token", "key": "token"}
        else:
            assert "SENDER_AUTH_TOKEN" not in refs, f"{where} gets the endpoint token it does not use"
        cafile = container_env(container, docs)["KAFKA_SSL_CAFILE"]
        assert mounted_secret_files(doc, container)[cafile] == ("kafka-ca", "bundle.pem"), where
    (auth,) = by_kind(docs, "TriggerAuthentication").values()
    assert {(r["parameter"], r["name"], r["key"]) for r in auth["spec"]["secretTargetRef"]} == {
        ("password", "kafka-user", "password"),
        ("ca", "kafka-ca", "bundle.pem"),
    }
    assert auth["spec"]["env"] == [{"parameter": "username", "name": "KAFKA_SASL_USERNAME"}]
    for scaled in by_kind(docs, "ScaledObject").values():
        (trigger,) = scaled["spec"]["triggers"]
        assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
        assert (trigger["metadata"]["sasl"], trigger["metadata"]["tls"]) == ("scram_sha512", "enable")


def test_keda_caps_replicas_at_the_partitions_setup_topics_creates(case: tuple[str, Any]) -> None:
    name, docs = case
    (job,) = by_kind(docs, "Job").values()
    (setup,) = pod_spec(job)["containers"]
    facts_partitions, events_partitions = setup_partitions(setup.get("args", []), container_env(setup, docs))
    deployments = by_kind(docs, "Deployment")
    exporter = deployments.pop(LAG_EXPORTER, None)
    assert (exporter is not None) == VALUES_CASES[name].get("lagExporter", {}).get("enabled", True), name
    if exporter is not None:
        assert exporter["spec"]["replicas"] == 1, f"{name}: one lag exporter, whatever scales the consumers"
    scaled = {s["spec"]["scaleTargetRef"]["name"]: s for s in by_kind(docs, "ScaledObject").values()}
    keda = VALUES_CASES[name].get("keda", {}).get("enabled", True)
    assert bool(scaled) == keda, name
    expected = {
        f"{RELEASE}-reducer": ("PROCESSOR_GROUP_ID", "PROCESSOR_FACTS_TOPIC", PROCESSOR_ENVS, facts_partitions),
        f"{RELEASE}-sender": ("SENDER_GROUP_ID", "SENDER_EVENTS_TOPIC", SENDER_ENVS, events_partitions),
    }
    assert set(deployments) == set(expected)
    for target, (group_var, topic_var, config_envs, partitions) in expected.items():
        spec = deployments[target]["spec"]
        env = container_env(pod_spec(deployments[target])["containers"][0], docs)
        if not keda:
            assert 1 <= spec["replicas"] <= partitions, f"{name}: {target}"
            continue
        assert "replicas" not in spec, f"{name}: {target}: KEDA owns the replica count"
        meta = scaled[target]["spec"]["triggers"][0]["metadata"]
        assert meta["consumerGroup"] == effective(env, config_envs, group_var)
        assert meta["topic"] == effective(env, config_envs, topic_var)
        assert meta["bootstrapServers"] == env["KAFKA_BOOTSTRAP_SERVERS"]
        assert scaled[target]["spec"]["maxReplicaCount"] == partitions, f"{name}: cap {target} at {partitions}"
        assert 1 <= scaled[target]["spec"]["minReplicaCount"] <= partitions


def test_service_monitor_selects_every_metrics_service_on_its_metrics_port(case: tuple[str, Any]) -> None:
    name, docs = case
    services = by_kind(docs, "Service")
    monitors = list(by_kind(docs, "ServiceMonitor").values())
    enabled = VALUES_CASES[name].get("metrics", {}).get("serviceMonitor", {}).get("enabled", False)
    assert len(monitors) == (1 if enabled else 0), name
    deployments = by_kind(docs, "Deployment")
    assert {f"{d}-metrics" for d in deployments} == set(services), name
    for service_name, service in services.items():
        deployment = deployments[service_name.removesuffix("-metrics")]
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= pod_labels.items()
        (container,) = pod_spec(deployment)["containers"]
        (port,) = service["spec"]["ports"]
        assert port["name"] == "metrics" and port["targetPort"] == "metrics"
        assert port["port"] == container["ports"][0]["containerPort"]
        for monitor in monitors:
            assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
            assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    for monitor in monitors:
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def comparable(doc: dict[str, Any], docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The fields of an object that the chart must keep equal to deploy/*.yaml (labels and annotations aside)."""
    kind = doc["kind"]
    if kind in ("Deployment", "Job"):
        spec = pod_spec(doc)
        (container,) = spec["containers"]
        keep = ("image", "command", "args", "ports", "livenessProbe", "readinessProbe", "startupProbe", "resources")
        return {
            "container": {k: container.get(k) for k in (*keep, "securityContext")},
            "env": container_env(container, docs),
            "secrets": secret_refs(container),
            "pod": {k: spec.get(k) for k in ("securityContext", "terminationGracePeriodSeconds", "restartPolicy")},
            "spec": {k: v for k, v in doc["spec"].items() if k not in ("template", "selector")},
            "prometheus": {
                k: v for k, v in doc["spec"]["template"]["metadata"].get("annotations", {}).items() if "prometheus" in k
            },
        }
    # Services, ServiceMonitors, PodDisruptionBudgets, ScaledObjects: the whole spec; selectors are compared apart
    # (the chart's also name the release).
    return {k: v for k, v in doc["spec"].items() if k != "selector"}


def test_default_render_keeps_the_key_fields_of_the_plain_manifests(
    default_render: list[dict[str, Any]], plain: list[dict[str, Any]]
) -> None:
    rendered = {(d["kind"], d["metadata"]["name"]): d for d in default_render}
    # Plain-only: the setup-topics ConfigMap (the chart's hook Job carries its settings inline) and the
    # placeholder Secret (the chart expects Secrets to exist). Everything else must exist in both.
    plain_only = {("ConfigMap", f"{RELEASE}-setup-topics"), ("Secret", f"{RELEASE}-secrets")}
    expected = {(d["kind"], d["metadata"]["name"]): d for d in plain}
    assert set(rendered) == set(expected) - plain_only
    for key, doc in expected.items():
        if key in plain_only or key[0] == "ConfigMap":
            continue  # ConfigMaps are compared through the environment of the containers that use them
        assert comparable(rendered[key], default_render) == comparable(doc, plain), f"{key[0]}/{key[1]} differs"
    for kind in ("Deployment", "ServiceMonitor", "Service", "PodDisruptionBudget"):
        for name, doc in by_kind(plain, kind).items():
            selector = doc["spec"]["selector"]
            selector = selector.get("matchLabels", selector)
            chart_selector = rendered[(kind, name)]["spec"]["selector"]
            assert selector.items() <= chart_selector.get("matchLabels", chart_selector).items(), f"{kind}/{name}"


def test_chart_values_match_the_settings_defaults_where_the_plain_manifests_rely_on_them() -> None:
    values = chart_values()
    assert values["reducer"]["metricsPort"] == PROCESSOR_ENVS["PROCESSOR_METRICS_PORT"]
    assert values["sender"]["metricsPort"] == SENDER_ENVS["SENDER_METRICS_PORT"]
    assert values["reducer"]["groupId"] == ProcessorConfig().group_id
    assert values["sender"]["groupId"] == SenderConfig().group_id
    assert (values["topics"]["facts"], values["topics"]["events"]) == (
        ProcessorConfig().facts_topic,
        ProcessorConfig().events_topic,
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"kafka": {"securityProtocol": "SASL_SSL"}}, "kafka.sasl.username is required"),
        (
            {
                "kafka": {"securityProtocol": "SASL_SSL", "sasl": {"username": "u"}},
                "secretEnv": {"KAFKA_SASL_PASSWORD": None},
            },
            "needs secretEnv.KAFKA_SASL_PASSWORD.secretName",
        ),
        ({"kafka": {"securityProtocol": "TLS"}}, "kafka.securityProtocol=TLS: use PLAINTEXT"),
        ({"secretEnv": {"KAFKA_SSL_CAFILE": {"secretName": "ca"}}}, "does not use TLS"),
        ({"secretEnv": {"KAFKA_SSL_CERTFILE": {"secretName": "tls"}}}, "KAFKA_SSL_CERTFILE is set but"),
        (
            {
                "kafka": {"securityProtocol": "SASL_PLAINTEXT", "sasl": {"username": "u"}},
            },
            "set kafka.allowSaslPlaintext=true to accept that",
        ),
        (
            {"kafka": {"securityProtocol": "SSL"}, "secretEnv": {"KAFKA_SSL_KEYFILE": {"secretName": "tls"}}},
            "secretEnv.KAFKA_SSL_KEYFILE is set without secretEnv.KAFKA_SSL_CERTFILE",
        ),
        (
            {
                "kafka": {"securityProtocol": "SSL"},
                "secretEnv": {"KAFKA_SSL_CAFILE": {"secretName": "ca"}, "KAFKA_SSL_CERTFILE": {"secretName": "tls"}},
            },
            "rows sharing a mountDir name the same Secret",
        ),
        ({"keda": {"enabled": False}, "reducer": {"replicas": 13}}, "reducer.replicas=13 exceeds topics.partitions=12"),
        (
            {"keda": {"enabled": False}, "topics": {"eventsPartitions": 2}, "sender": {"replicas": 3}},
            "sender.replicas=3 exceeds the partitions of events (2)",
        ),
        ({"topics": {"partitions": 0}}, "topics.partitions=0: must be at least 1"),
        ({"metrics": {"service": {"enabled": False}, "serviceMonitor": {"enabled": True}}}, "needs metrics.service"),
        ({"reducer": {"settings": {"PROCESSOR_METRICS_HOST": "127.0.0.1"}}}, "set reducer.metricsHost instead"),
        ({"sender": {"settings": {"SENDER_GROUP_INSTANCE_ID": "s"}}}, "every replica of the Deployment would share it"),
    ],
)
def test_chart_refuses_values_the_services_or_kafka_would_refuse(
    helm: Path, tmp_path: Path, values: dict[str, Any], message: str
) -> None:
    assert message in refusal(helm, values, tmp_path)


def documented_file_paths() -> dict[str, str]:
    """``{variable: path}`` of the certificate files deploy/config.yaml documents (in its comments)."""
    paths: dict[str, str] = {}
    for variable, path in re.findall(r"\b([A-Z_]+FILE): (/etc/review-analytics/[\w./-]*\w)", CONFIG_YAML.read_text()):
        assert paths.setdefault(variable, path) == path, f"deploy/config.yaml documents two paths for {variable}"
    return paths


def secret_mounts(doc: dict[str, Any], container: dict[str, Any]) -> dict[str, tuple[str, int]]:
    """``{mount path: (Secret, defaultMode)}`` of the Secret volumes mounted into the container."""
    volumes = {v["name"]: v["secret"] for v in pod_spec(doc).get("volumes", []) if "secret" in v}
    return {
        m["mountPath"]: (volumes[m["name"]]["secretName"], volumes[m["name"]]["defaultMode"])
        for m in container.get("volumeMounts", [])
        if m["name"] in volumes
    }


def test_certificate_files_are_mounted_where_the_plain_manifests_mount_them(
    helm: Path, tmp_path: Path, plain: list[dict[str, Any]]
) -> None:
    secret_of = {"KAFKA": f"{RELEASE}-kafka-tls", "SENDER": f"{RELEASE}-endpoint-tls"}
    values = {
        "kafka": {"securityProtocol": "SSL"},
        "secretEnv": {v: {"secretName": secret_of[v.split("_")[0]]} for v in FILE_SETTINGS},
    }
    docs = render(helm, values, tmp_path)
    documented = documented_file_paths()
    assert set(documented) == FILE_SETTINGS
    chart_workloads = {where: (doc, container) for where, doc, container in workloads(docs)}
    plain_workloads = list(workloads(plain))
    assert set(chart_workloads) == {where for where, _, _ in plain_workloads}
    for where, plain_doc, plain_container in plain_workloads:
        doc, container = chart_workloads[where]
        assert secret_mounts(doc, container) == secret_mounts(plain_doc, plain_container), where
        env = container_env(container, docs)
        for variable in FILE_SETTINGS & set(env):
            assert env[variable] == documented[variable], f"{where}: {variable}"
            assert env[variable] in mounted_secret_files(doc, container), f"{where}: {variable}"


def test_the_prometheus_rule_carries_the_groups_of_deploy_alerts_yml(helm: Path, tmp_path: Path) -> None:
    link = CHART / "files" / "alerts.yml"
    assert link.is_symlink() and link.resolve() == ALERTS.resolve(), "files/alerts.yml must link deploy/alerts.yml"
    values = {"metrics": {"prometheusRule": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}}}}
    (rule,) = by_kind(render(helm, values, tmp_path), "PrometheusRule").values()
    assert rule["spec"]["groups"] == yaml.safe_load(ALERTS.read_text())["groups"]
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
