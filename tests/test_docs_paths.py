"""Every repository path the documentation names exists: a renamed file breaks this, not a reader.

A path is a backticked word that starts with a top-level entry of the repository
(`chassis/src/chassis/app.py`, `deploy/config-repo/`, `Dockerfile`...); `<placeholders>` and
globs are left alone.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = ["README.md", "ARCHITECTURE.md", "CONTRIBUTING.md", "deploy/README.md", *[p.relative_to(REPO).as_posix() for p in
        sorted(REPO.glob("*/README.md")) + sorted(REPO.glob("services/*/README.md"))]]  # fmt: skip
# What a clone has at the top (not var/ or .venv/ that running things leave behind).
TOP = {
    line.split("/", 1)[0]
    for line in subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.splitlines()
}


def named_paths(text: str) -> set[str]:
    found = set()
    for word in re.findall(r"`([^`\s]+)`", text):
        word = word.rstrip(".,:;")
        if any(c in word for c in "<>*{}$") or "://" in word:
            continue
        if word.split("/", 1)[0] in TOP and (word in TOP or "/" in word):
            found.add(word)
    return found


@pytest.mark.parametrize("doc", sorted(set(DOCS)))
def test_every_path_a_document_names_exists(doc: str) -> None:
    # A member's README may name its own files (`tests/...` of that member) or the repository's.
    here = (REPO / doc).parent
    missing = sorted(
        p
        for p in named_paths((REPO / doc).read_text())
        if not (here / p).exists() and not (REPO / p).exists()
    )
    assert not missing, f"{doc} names paths that do not exist: {missing}"


def test_the_check_sees_paths_and_misses() -> None:
    assert named_paths("see `chassis/src/chassis/app.py`, `Dockerfile`, `services/<name>/` and `x`") == {
        "chassis/src/chassis/app.py",
        "Dockerfile",
    }
    assert not (REPO / "chassis/src/chassis/no_such_module.py").exists()


# Files of the team's workspace outside the repository: a clone does not have them.
OUTSIDE = re.compile(r"\bDESIGN\.md\b|\.\./shared/")


def test_architecture_is_in_the_repository_and_nothing_cites_an_outside_design() -> None:
    assert (REPO / "ARCHITECTURE.md").is_file()
    for path in REPO.rglob("*"):
        if path.suffix in {".py", ".md", ".yml", ".sh", ".toml"} and ".venv" not in path.parts:
            if path == Path(__file__):
                continue
            assert not OUTSIDE.search(path.read_text(errors="replace")), path
