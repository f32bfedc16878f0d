"""The environment docker-compose.yml gives each Python service, against that service's own code.

Settings are discovered, not listed: each member's ``Settings`` class is imported (found through
the console script its image runs, the one its ``SERVICE`` build arg names), so these tests follow
the fields engineers add.

- every required field (no default) and every address field (``*_url``, ``*_uri``,
  ``*_endpoint``, ``*_host``) is set by compose: a defaulted address is ``localhost``, which inside
  a container is the container itself;
- every variable compose sets is a setting the service reads (catches typos and leftovers);
- the values validate: ``Settings()`` built from exactly that environment does not raise;
- every healthcheck URL path is a route of the app ``create()`` builds from those settings.
"""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from chassis.config_client import ConfigClientSettings
from chassis.logging import shutdown_logging
from chassis.ops import OpsSettings
from msa_testing.containers import read_model
from msa_testing.workspace import console_scripts, member_projects, service_package, service_settings

REPO = Path(__file__).resolve().parents[1]
ADDRESS = re.compile(r".+_(url|uri|endpoint|host)$")
# addresses a service works out itself: its bind address, where it says it answers (its compose
# name and port, chassis.registry), and its store (unset: SQLite in DATA_DIR, which compose sets;
# docker-compose.scale.yml sets it, tests/test_compose_scale.py checks that file)
DERIVED_ADDRESSES = {"host", "advertise_url", "database_url"}


def _compose_services() -> dict[str, dict[str, Any]]:
    return read_model()


SERVICES = _compose_services()
BUILT_HERE = sorted(name for name, spec in SERVICES.items() if "build" in spec)
SCRIPTS = console_scripts()


def _package(service: str) -> str:
    return service_package(SERVICES[service], SCRIPTS)


def _settings_class(service: str) -> type[Any]:
    return service_settings(SERVICES[service], SCRIPTS)


def _env_name(name: str, field: FieldInfo) -> str:
    alias = field.validation_alias if isinstance(field.validation_alias, str) else field.alias
    return (alias or name).upper()


def _nested_model(field: FieldInfo) -> type[BaseModel] | None:
    annotation = field.annotation
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _known_names(settings_cls: type[Any]) -> tuple[set[str], set[str]]:
    """(flat env names, prefixes of nested names ``FIELD__``) the settings class reads."""
    flat, nested = set(), set()
    for cls in (settings_cls, ConfigClientSettings, OpsSettings):
        for name, field in cls.model_fields.items():
            flat.add(_env_name(name, field))
            if _nested_model(field) is not None:
                nested.add(_env_name(name, field) + "__")
    return flat, nested


@pytest.fixture
def compose_env(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, dict[str, str]]:
    """The process environment replaced by what compose gives the service (and nothing the
    settings read from this shell)."""
    service: str = request.param
    env = {key: str(value) for key, value in SERVICES[service]["environment"].items()}
    flat, nested = _known_names(_settings_class(service))
    for key in list(os.environ):
        if key.upper() in flat or key.upper().startswith(tuple(nested)):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return service, env


def test_every_service_member_is_checked_here() -> None:
    # A member ships a service when it has a console script of its own name (the cli's is `msa`).
    names = {project["name"] for project in member_projects().values()}
    assert set(BUILT_HERE) == names & set(SCRIPTS)
    assert {SERVICES[name]["build"]["args"]["SERVICE"] for name in BUILT_HERE} == set(BUILT_HERE)


@pytest.mark.parametrize("service", BUILT_HERE)
def test_required_and_address_settings_are_set_by_compose(service: str) -> None:
    settings_cls = _settings_class(service)
    env = set(SERVICES[service]["environment"])
    missing = []
    for name, field in settings_cls.model_fields.items():
        env_name = _env_name(name, field)
        model = _nested_model(field)
        if field.is_required() and model is not None:
            required = [_env_name(n, f) for n, f in model.model_fields.items() if f.is_required()]
            if env_name not in env and not all(f"{env_name}__{sub}" in env for sub in required):
                missing.append(env_name)
        elif field.is_required() or (ADDRESS.match(name) and name not in DERIVED_ADDRESSES):
            if env_name not in env:
                missing.append(env_name)
    assert not missing, f"{service}: docker-compose.yml does not set {missing}"


@pytest.mark.parametrize("service", BUILT_HERE)
def test_compose_sets_only_variables_the_service_reads(service: str) -> None:
    flat, nested = _known_names(_settings_class(service))
    unknown = [
        key
        for key in SERVICES[service]["environment"]
        if key.upper() not in flat and not key.upper().startswith(tuple(nested))
    ]
    assert not unknown, f"{service}: no setting reads {unknown} (typo, or a field that was renamed?)"


@pytest.mark.parametrize("compose_env", BUILT_HERE, indirect=True)
def test_compose_environment_validates(compose_env: tuple[str, dict[str, str]]) -> None:
    service, env = compose_env
    settings = _settings_class(service)()
    assert settings.redis_url == env["REDIS_URL"]
    assert settings.port == 8000


@pytest.mark.parametrize("compose_env", BUILT_HERE, indirect=True)
async def test_healthcheck_path_is_the_health_route_of_the_app(
    compose_env: tuple[str, dict[str, str]],
) -> None:
    service, _ = compose_env
    probe = " ".join(SERVICES[service]["healthcheck"]["test"])
    match = re.search(r"http://127\.0\.0\.1:(\d+)(/[^'\" ]*)", probe)
    assert match, probe
    port, path = int(match.group(1)), match.group(2)
    # Built, not started (no lifespan): nothing connects. Sinks that would look up compose host names off.
    settings = _settings_class(service)(logstash_host=None, zipkin_endpoint=None)
    assert settings.port == port
    create = importlib.import_module(f"{_package(service)}.main").create
    try:
        app = create(settings)
        # Ask the app itself: a catch-all route (config-service's /{app}/{profiles}) would also
        # "match" the path, so the answer must be the health report's own shape.
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as client:
            response = await client.get(path)
    finally:
        shutdown_logging()
    assert response.status_code in (200, 503), f"{service}: {path} answered {response.status_code}"
    assert response.json().get("status") in ("up", "down"), f"{service}: {path} is not the health route"
