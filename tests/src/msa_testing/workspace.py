"""The uv workspace as the root pyproject.toml declares it: member folders (globs expanded, as uv
expands them) and their ``[project]`` tables."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

__all__ = ["REPO", "member_projects", "members"]

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
