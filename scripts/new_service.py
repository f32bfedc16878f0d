"""Scaffold a domain service: one folder, one compose entry, one config file (CONTRIBUTING.md).

    python3 scripts/new_service.py shipping
    uv sync --all-packages && uv run msa dev up        # it is in the workspace, compose and dashboard

Writes ``services/<name>/`` (package, console script, a route that reads a setting, a test),
``deploy/config-repo/<name>.yml`` and the compose entry (before the top-level ``volumes:``).
Nothing else needs an edit: workspace, type checks, tests and lint find members by glob, the one
Dockerfile builds any member, the dashboard finds services in the registry. Standard library only.
"""

from __future__ import annotations

import argparse
import importlib.util
import keyword
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")

PYPROJECT = """\
[project]
name = "{name}"
version = "0.1.0"
description = "{name}: a domain service."
requires-python = ">=3.11"
dependencies = [
    "msa-chassis",
    "fastapi>=0.115",
    "pydantic>=2.9",
]

[project.scripts]
{name} = "{package}.main:run"

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["src/{package}"]
"""

SETTINGS = '''\
"""Settings of {name}: the chassis wiring plus what this service alone needs."""

from __future__ import annotations

from pydantic import Field

from chassis import ServiceSettings

__all__ = ["Settings"]


class Settings(ServiceSettings):
    service_name: str = "{name}"
    greeting: str = Field("Hello", description="deploy/config-repo/{name}.yml; changes live on commit")
'''

DEPENDENCIES = '''\
"""Annotated dependency aliases of {name}."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from chassis.dependencies import settings_of
from {package}.settings import Settings

__all__ = ["SettingsDep"]

SettingsDep = Annotated[Settings, Depends(settings_of(Settings))]  # the current snapshot
'''

ROUTER = '''\
"""{name}'s API. Replace the greeting with your domain (a package per domain: router.py,
service.py, repository.py, schemas.py, errors.py, as services/reviews does)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from chassis.params import id_path
from {package}.dependencies import SettingsDep

__all__ = ["router"]

router = APIRouter(tags=["{name}"])

Name = Annotated[str, id_path("who to greet")]


@router.get("/greetings/{{who}}", summary="A greeting, in the words config-service gives")
async def greet(settings: SettingsDep, who: Name) -> dict[str, str]:
    return {{"greeting": f"{{settings.greeting}}, {{who}}!"}}
'''

MAIN = '''\
"""Entry point: ``{name}`` (console script) or ``create()`` for tests."""

from __future__ import annotations

from fastapi import FastAPI

from chassis import create_app, serve
from chassis.config_client import load_settings
from {package}.router import router
from {package}.settings import Settings

__all__ = ["create", "run"]


def create(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings(Settings)
    return create_app(settings, title="{name}", routers=[router], max_body_bytes=64 * 1024)


def run() -> None:
    serve(create)
'''

TEST = '''\
"""{name}: the real app in-process, real Redis."""

from __future__ import annotations

from chassis.testing import running_app
from {package}.main import create
from {package}.settings import Settings


async def test_it_greets_and_refuses_what_cannot_be_a_name(redis_url: str) -> None:
    settings = Settings(redis_url=redis_url, zipkin_endpoint=None, env="test", greeting="Hi")
    async with running_app(create(settings)) as client:
        assert (await client.get("/greetings/ada")).json() == {{"greeting": "Hi, ada!"}}
        assert (await client.get("/greetings/..")).status_code in (404, 422)
        assert (await client.get("/health/ready")).status_code == 200
'''

README = """\
# {name}

A domain service made by `scripts/new_service.py`. `GET /greetings/{{who}}` answers with the
`greeting` of `deploy/config-repo/{name}.yml` (commit a change: it applies within seconds).

Run it: `uv run msa dev up` (it is in docker-compose.yml), or `docker compose up --build {name}`.
"""

CONFIG = """\
# {name}: behaviour (addresses come from docker-compose.yml). Commit a change: it applies live.
greeting: Welcome  # the code's default says Hello: this file wins
"""

COMPOSE = """\
  {name}:
    build: {{ context: ., args: {{ <<: *build-args, SERVICE: {name} }} }}
    image: msa-platform/{name}:dev
    environment:
      <<: *python-env
    healthcheck: *python-healthcheck
    depends_on:
      redis: {{ condition: service_healthy }}
      config-service: {{ condition: service_healthy }}
    deploy: *python-deploy
    restart: unless-stopped

"""


def scaffold(name: str, repo: Path = REPO) -> list[Path]:
    """Write the service ``name``; returns the paths written. Refuses to overwrite anything."""
    if not NAME.match(name):
        raise ValueError(f"{name!r}: use lower-case letters, digits and single dashes (e.g. 'shipping')")
    package = name.replace("-", "_")
    taken = keyword.iskeyword(package) or package in sys.stdlib_module_names
    members = [*repo.glob(f"*/src/{package}"), *repo.glob(f"services/*/src/{package}")]
    if taken or importlib.util.find_spec(package) is not None or members:
        raise ValueError(
            f"{name}: its package {package!r} would shadow an existing module; pick another name"
        )
    folder = repo / "services" / name
    config = repo / "deploy" / "config-repo" / f"{name}.yml"
    compose_file = repo / "docker-compose.yml"
    compose = compose_file.read_text()
    if folder.exists() or config.exists() or re.search(rf"^  {re.escape(name)}:\s*$", compose, re.M):
        raise ValueError(f"{name}: a service, config file or compose entry of that name exists")
    marker = compose.find("\nvolumes:\n")
    if marker < 0:
        raise ValueError("docker-compose.yml: no top-level 'volumes:' to insert the service before")

    values = {"name": name, "package": package}
    files = {
        folder / "pyproject.toml": PYPROJECT,
        folder / "README.md": README,
        folder / "src" / package / "__init__.py": f'"""{name}."""\n',
        folder / "src" / package / "settings.py": SETTINGS,
        folder / "src" / package / "dependencies.py": DEPENDENCIES,
        folder / "src" / package / "router.py": ROUTER,
        folder / "src" / package / "main.py": MAIN,
        folder / "tests" / f"test_{package}.py": TEST,
        config: CONFIG,
    }
    for path, template in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**values))
    compose_file.write_text(compose[: marker + 1] + COMPOSE.format(**values) + compose[marker + 1 :])
    return [*files, compose_file]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="the service's name, e.g. shipping (also its DNS name and script)")
    args = parser.parse_args()
    try:
        written = scaffold(args.name)
    except ValueError as exc:
        print(f"new_service: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path.relative_to(REPO)}")
    print("next: uv sync --all-packages && uv run msa dev up")
    return 0


if __name__ == "__main__":
    sys.exit(main())
