"""A Git config repository made by a test, for config-service to serve (``CONFIG_REPO_URI``).

Files live under ``SEARCH_PATH`` as in the platform's own repository; git runs with a clean,
fixed identity so the developer's git config never leaks into a test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from msa_testing.fixtures import REPO

__all__ = ["SEARCH_PATH", "ConfigRepo"]

SEARCH_PATH = "deploy/config-repo"


class ConfigRepo:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")

    @classmethod
    def copy_of_platform(cls, root: Path) -> ConfigRepo:
        """A repository holding the platform's config files (``deploy/config-repo``), uncommitted."""
        shutil.copytree(REPO / SEARCH_PATH, root / SEARCH_PATH)
        return cls(root)

    def git(self, *args: str) -> str:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "test",
            "GIT_AUTHOR_EMAIL": "test@example.org",
            "GIT_COMMITTER_NAME": "test",
            "GIT_COMMITTER_EMAIL": "test@example.org",
        }
        done = subprocess.run(
            ["git", *args], cwd=self.root, env=env, check=True, capture_output=True, text=True, timeout=30
        )
        return done.stdout.strip()

    def commit(self, message: str, **files: str) -> str:
        """Write ``files`` (name -> text, under ``SEARCH_PATH``), commit everything; the new commit id."""
        for name, text in files.items():
            path = self.root / SEARCH_PATH / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")
