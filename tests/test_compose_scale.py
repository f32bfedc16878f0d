"""docker-compose.scale.yml against the base file and the code: the pinned Compose accepts the pair,
every service that owns a store gets PostgreSQL (its own database and role, the password the init
script gives that role) and two replicas, and the settings validate from that environment.
The containers tier runs it for real (tests/containers/test_scale_postgres.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from chassis.store import StoreSettings
from msa_testing.containers import read_model
from msa_testing.workspace import service_settings

REPO = Path(__file__).resolve().parents[1]
BASE = read_model()
SCALED = read_model(files=["docker-compose.yml", "docker-compose.scale.yml"])
INIT = REPO / "deploy" / "postgres" / "initdb.d" / "10-service-databases.sh"


def _owners_of_a_store() -> list[str]:
    """Services whose settings are StoreSettings: found from the code, not listed here."""
    built_here = [name for name, spec in BASE.items() if "SERVICE" in spec.get("build", {}).get("args", {})]
    return sorted(name for name in built_here if issubclass(service_settings(BASE[name]), StoreSettings))


OWNERS = _owners_of_a_store()


def test_the_services_that_own_a_store_are_the_domain_services() -> None:
    assert OWNERS == ["catalog", "inventory", "orders", "reviews"]


def test_the_override_adds_postgres_and_changes_nothing_else() -> None:
    assert set(SCALED) - set(BASE) == {"postgres"}
    for name in set(BASE) - set(OWNERS):
        assert SCALED[name] == BASE[name], f"{name} changed"


def test_postgres_is_pinned_health_checked_limited_and_keeps_its_data_on_a_volume() -> None:
    postgres = SCALED["postgres"]
    env_file = (REPO / ".env").read_text()
    version = re.search(r"^POSTGRES_VERSION=(\S+)$", env_file, re.M)
    assert version is not None
    assert postgres["image"] == f"postgres:{version.group(1)}-bookworm"
    assert "pg_isready" in postgres["healthcheck"]["test"]
    assert int(postgres["deploy"]["resources"]["limits"]["memory"]) == 256 * 2**20
    mounts = {v["target"]: v for v in postgres["volumes"]}
    assert mounts["/var/lib/postgresql/data"]["type"] == "volume"
    init = mounts["/docker-entrypoint-initdb.d"]
    assert init["read_only"]
    assert Path(init["source"]) == INIT.parent
    assert "ports" not in postgres, "reached by the services only"


@pytest.mark.parametrize("service", OWNERS)
def test_each_owner_runs_twice_on_its_own_database_with_the_password_of_its_role(service: str) -> None:
    spec = SCALED[service]
    assert spec["deploy"]["replicas"] == 2
    assert spec["deploy"]["resources"] == BASE[service]["deploy"]["resources"], "limits as in the base file"
    assert spec["depends_on"]["postgres"]["condition"] == "service_healthy"
    url = urlsplit(spec["environment"]["DATABASE_URL"])
    assert (url.scheme, url.hostname, url.port, url.path) == ("postgresql", "postgres", 5432, f"/{service}")
    assert url.username == service, "a role per service: none can read another's tables"
    password_variable = f"{service.upper()}_DB_PASSWORD"
    assert url.password == SCALED["postgres"]["environment"][password_variable]
    assert "dev-only" in str(url.password), "a marked default: production refuses it"


def test_the_init_script_creates_exactly_the_owners_databases() -> None:
    script = INIT.read_text()
    listed = re.search(r"^for service in ([a-z -]+); do$", script, re.M)
    assert listed is not None
    assert sorted(listed.group(1).split()) == OWNERS
    assert "ON_ERROR_STOP=1" in script
    assert "REVOKE ALL ON DATABASE" in script
    assert INIT.stat().st_mode & 0o111, "executable: the image runs it rather than sourcing it"


@pytest.mark.parametrize("service", OWNERS)
def test_settings_validate_from_the_scaled_environment(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    environment: dict[str, Any] = SCALED[service]["environment"]
    for name, value in environment.items():
        monkeypatch.setenv(name, str(value))
    settings = service_settings(SCALED[service])()
    assert isinstance(settings, StoreSettings)
    assert settings.store_url(service).startswith(f"postgresql://{service}:")
