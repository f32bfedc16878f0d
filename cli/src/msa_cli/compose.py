"""Reads docker-compose.yml the way `msa dev up` needs it: which services are built from this
repository, with what command, environment, volumes, published port and health path.

Only the compose features this project uses are understood (YAML anchors and merge keys,
``${VAR}``/``${VAR:-default}`` interpolation from the environment and ``.env``); the tests compare
the result with the real ``docker-compose config`` output.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["ComposeService", "load_compose", "parse_dockerfile_cmd"]

_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>[^}]*))?\}|\$\$")
_HEALTH_URL = re.compile(r"https?://[^/\s'\"]+(?P<path>/[^\s'\"]*)")


@dataclass(frozen=True)
class ComposeService:
    name: str
    image: str | None
    dockerfile: Path | None  # set for services built from this repository
    command: list[str] | None
    environment: dict[str, str]
    published_port: int | None  # host port of the first published port
    container_port: int | None
    health_path: str | None
    depends_on: list[str]
    volumes: list[tuple[str, str]] = field(default_factory=list)  # (source, target); source "" = anonymous

    @property
    def built_here(self) -> bool:
        return self.dockerfile is not None


def load_compose(path: Path, environ: Mapping[str, str] | None = None) -> dict[str, ComposeService]:
    environ = dict(os.environ if environ is None else environ)
    dotenv = path.parent / ".env"
    variables = {**_read_dotenv(dotenv), **environ} if dotenv.exists() else environ
    raw = yaml.safe_load(path.read_text())
    doc = _interpolate(raw, variables)
    services: dict[str, ComposeService] = {}
    for name, spec in (doc.get("services") or {}).items():
        services[name] = _service(name, spec, path.parent)
    return services


def _service(name: str, spec: dict[str, Any], root: Path) -> ComposeService:
    build = spec.get("build")
    dockerfile: Path | None = None
    if isinstance(build, str):
        dockerfile = (root / build / "Dockerfile").resolve()
    elif isinstance(build, dict):
        context = root / build.get("context", ".")
        dockerfile = (context / build.get("dockerfile", "Dockerfile")).resolve()
    command = spec.get("command")
    if isinstance(command, str):
        command = shlex.split(command)
    published, container = _first_port(spec.get("ports") or [])
    return ComposeService(
        name=name,
        image=spec.get("image"),
        dockerfile=dockerfile,
        command=command,
        environment={k: "" if v is None else str(v) for k, v in _environment(spec).items()},
        published_port=published,
        container_port=container,
        health_path=_health_path(spec.get("healthcheck")),
        depends_on=list(spec.get("depends_on") or []),
        volumes=[_volume(v) for v in spec.get("volumes") or []],
    )


def _environment(spec: dict[str, Any]) -> dict[str, Any]:
    env = spec.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return dict(env)


def _first_port(ports: list[Any]) -> tuple[int | None, int | None]:
    for port in ports:
        if isinstance(port, dict):
            return int(port["published"]), int(port["target"])
        parts = str(port).split(":")
        if len(parts) >= 2:
            return int(parts[-2]), int(parts[-1].split("/")[0])
    return None, None


def _volume(volume: Any) -> tuple[str, str]:
    if isinstance(volume, dict):
        return str(volume.get("source", "")), str(volume["target"])
    parts = str(volume).split(":")
    return (parts[0], parts[1]) if len(parts) >= 2 else ("", parts[0])


def _health_path(healthcheck: Any) -> str | None:
    if not isinstance(healthcheck, dict):
        return None
    test = healthcheck.get("test")
    text = " ".join(test) if isinstance(test, list) else str(test or "")
    match = _HEALTH_URL.search(text)
    return match.group("path") if match else None


def parse_dockerfile_cmd(dockerfile: Path) -> list[str]:
    """The last ``CMD`` of a Dockerfile, exec form (JSON) or shell form."""
    cmd: list[str] | None = None
    for line in dockerfile.read_text().splitlines():
        stripped = line.strip()
        if stripped.upper().startswith("CMD "):
            rest = stripped[4:].strip()
            cmd = json.loads(rest) if rest.startswith("[") else ["/bin/sh", "-c", rest]
    if not cmd:
        raise ValueError(f"{dockerfile} has no CMD")
    return [str(part) for part in cmd]


def _read_dotenv(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip().strip("'\"")
    return values


def _interpolate(node: Any, variables: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return _VAR.sub(lambda m: _substitute(m, variables), node)
    if isinstance(node, list):
        return [_interpolate(item, variables) for item in node]
    if isinstance(node, dict):
        return {key: _interpolate(value, variables) for key, value in node.items()}
    return node


def _substitute(match: re.Match[str], variables: Mapping[str, str]) -> str:
    if match.group(0) == "$$":
        return "$"
    name, default = match.group("name"), match.group("default")
    value = variables.get(name)
    if value is None or (value == "" and ":-" in match.group(0)):
        return default or ""
    return value
