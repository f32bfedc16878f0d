"""The uv workspace as the root pyproject.toml declares it: member folders (globs expanded, as uv
expands them) and their ``[project]`` tables."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path
from typing import Any

__all__ = ["REPO", "console_scripts", "member_projects", "members", "service_package", "service_settings"]

REPO = Path(__file__).resolve().parents[3]


def members(repo: Path = REPO) -> list[Path]:
    """Every member folder (one with a pyproject.toml), in declaration order."""
    root = tomllib.loads((repo / "pyproject.toml").read_text())
    found: list[Path] = []
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        for folder in sorted(repo.glob(pattern)):
            if (folder / "pyproject.toml").is_file() and folder not in found:
                found.append(folder)
    return found


def member_projects(repo: Path = REPO) -> dict[Path, dict[str, Any]]:
    """Member folder -> its ``[project]`` table."""
    return {
        folder: tomllib.loads((folder / "pyproject.toml").read_text())["project"] for folder in members(repo)
    }


def console_scripts(repo: Path = REPO) -> dict[str, str]:
    """Console script -> entry point (``package.module:function``), over the workspace members."""
    scripts: dict[str, str] = {}
    for project in member_projects(repo).values():
        scripts |= project.get("scripts", {})
    return scripts


def service_package(spec: dict[str, Any], scripts: dict[str, str] | None = None) -> str:
    """The import package of a compose service built here, from the console script its image runs:
    the root Dockerfile's CMD is the link to the one its COMMAND build arg names, else SERVICE."""
    args = spec["build"]["args"]
    target = (scripts or console_scripts())[args.get("COMMAND") or args["SERVICE"]]
    return target.split(":")[0].split(".")[0]


def service_settings(spec: dict[str, Any], scripts: dict[str, str] | None = None) -> type[Any]:
    """The ``Settings`` class of a compose service built here."""
    cls: type[Any] = importlib.import_module(f"{service_package(spec, scripts)}.settings").Settings
    return cls
