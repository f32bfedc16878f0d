"""Where config files come from: a Git repository (labels = branch, tag or commit) or, when there
is no ``.git`` (a downloaded archive), the plain folder (version null, no labels).

Files are read from the commit's tree, never from a working copy, so every label serves exactly
what was committed. dulwich objects are not thread-safe: callers serialise access (the service
holds a lock) and run these blocking calls in a worker thread.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from dulwich import porcelain
from dulwich.diff_tree import tree_changes
from dulwich.errors import NotGitRepository, NotTreeError
from dulwich.object_store import tree_lookup_path
from dulwich.objects import Commit, ObjectID, Tree
from dulwich.objectspec import parse_commit
from dulwich.refs import Ref
from dulwich.repo import Repo

__all__ = [
    "ConfigRepository",
    "GitRepository",
    "NativeRepository",
    "RepositoryError",
    "Resolved",
    "UnknownLabel",
    "open_repository",
    "safe_uri",
]

log = logging.getLogger(__name__)

_URL = re.compile(r"^[a-z][a-z0-9+.-]*://|^[^/\s]+@[^/\s]+:")  # scheme:// or scp-like user@host:path


class RepositoryError(Exception):
    """The repository cannot be read (missing, not a repository, git dir not mounted...)."""


class UnknownLabel(LookupError):
    """No branch, tag or commit by that name."""


@dataclass(frozen=True)
class Resolved:
    label: str | None
    version: str | None  # commit sha, None for a plain folder


class ConfigRepository(Protocol):
    kind: str

    def resolve(self, label: str | None) -> Resolved: ...
    def read(self, version: str | None, path: str) -> bytes | None: ...
    def history(self, version: str | None, path: str, limit: int) -> Iterator[tuple[str, bytes]]: ...
    def list_files(self, version: str | None, folder: str) -> list[str]: ...
    def heads(self) -> dict[str, str]: ...
    def changed_paths(self, old: str, new: str) -> list[str]: ...
    def update(self) -> None: ...
    def describe(self) -> dict[str, Any]: ...
    def close(self) -> None: ...


def safe_uri(uri: str) -> str:
    """The URI without credentials, for names, logs and health details."""
    if "://" not in uri:
        return uri
    parts = urlsplit(uri)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def open_repository(uri: str, *, default_label: str, clone_dir: Path) -> ConfigRepository:
    if _URL.match(uri) and not uri.startswith("file://"):
        return GitRepository.clone(uri, default_label=default_label, clone_dir=clone_dir)
    path = Path(uri.removeprefix("file://")).expanduser()
    if not path.is_dir():
        raise RepositoryError(f"{path} is not a folder")
    dot_git = path / ".git"
    if dot_git.is_file() and not _gitdir_reachable(dot_git):
        raise RepositoryError(
            f"{dot_git} points to a git dir that is not mounted (a worktree or submodule): "
            "mount that git dir too, or use a plain clone"
        )
    if dot_git.exists() or (path / "HEAD").is_file() and (path / "objects").is_dir():
        try:
            return GitRepository(Repo(str(path)), uri=uri, default_label=default_label)
        except NotGitRepository as exc:
            raise RepositoryError(f"{path}: {exc}") from exc
    return NativeRepository(path)


def _gitdir_reachable(dot_git: Path) -> bool:
    text = dot_git.read_text(errors="replace").strip()
    target = text.removeprefix("gitdir:").strip()
    gitdir = (dot_git.parent / target).resolve() if target else None
    return gitdir is not None and gitdir.is_dir()


class GitRepository:
    kind = "git"

    def __init__(self, repo: Repo, *, uri: str, default_label: str, remote: bool = False) -> None:
        self.repo = repo
        self.uri = uri
        self.default_label = default_label
        self.remote = remote
        self._blobs: dict[tuple[str, str], bytes | None] = {}

    @classmethod
    def clone(cls, uri: str, *, default_label: str, clone_dir: Path) -> GitRepository:
        target = clone_dir / hashlib.sha256(safe_uri(uri).encode()).hexdigest()[:16]
        try:
            if (target / "HEAD").is_file():
                repo = Repo(str(target))
                porcelain.fetch(repo, uri, quiet=True, errstream=io.BytesIO(), outstream=io.StringIO())
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                repo = porcelain.clone(
                    uri, str(target), bare=True, errstream=io.BytesIO(), outstream=io.BytesIO()
                )
        except Exception as exc:  # dulwich raises many kinds for network and protocol trouble
            raise RepositoryError(f"cannot clone {safe_uri(uri)}: {type(exc).__name__}") from exc
        return cls(repo, uri=uri, default_label=default_label, remote=True)

    # -- labels -------------------------------------------------------------------------------
    def resolve(self, label: str | None) -> Resolved:
        if label is None:
            candidates = [self.default_label] + (["master"] if self.default_label == "main" else [])
            for name in candidates:
                sha = self._ref(name)
                if sha is not None:
                    return Resolved(name, sha)
            raise UnknownLabel(f"neither of the default labels {candidates} exists")
        sha = self._ref(label)
        if sha is None and re.fullmatch(r"[0-9a-fA-F]{7,40}", label):
            try:
                sha = parse_commit(self.repo, label.lower().encode()).id.decode()
            except (KeyError, ValueError):
                sha = None
        if sha is None:
            raise UnknownLabel(f"no branch, tag or commit named {label!r}")
        return Resolved(label, sha)

    def _ref(self, name: str) -> str | None:
        prefixes = (
            ("refs/remotes/origin/", "refs/heads/", "refs/tags/")
            if self.remote
            else ("refs/heads/", "refs/tags/")
        )
        refs = self.repo.refs
        for prefix in prefixes:
            ref = Ref(f"{prefix}{name}".encode())
            if refs.read_ref(ref) is not None:
                try:
                    sha = self.repo.get_peeled(ref)
                except KeyError:
                    continue
                obj = self.repo[sha]
                if isinstance(obj, Commit):
                    return obj.id.decode()
        return None

    # -- files --------------------------------------------------------------------------------
    def read(self, version: str | None, path: str) -> bytes | None:
        assert version is not None
        key = (version, path)
        if key not in self._blobs:
            self._blobs[key] = self._read(version, path)
            if len(self._blobs) > 4096:  # commits are immutable; the bound only caps memory
                self._blobs.pop(next(iter(self._blobs)))
        return self._blobs[key]

    def _read(self, version: str, path: str) -> bytes | None:
        commit = self.repo[version.encode()]
        assert isinstance(commit, Commit)
        try:
            mode, sha = tree_lookup_path(self.repo.__getitem__, commit.tree, path.encode())
        except (KeyError, NotTreeError):
            return None
        if not stat.S_ISREG(mode):
            return None
        blob = self.repo[sha]
        return bytes(blob.as_raw_string())

    def history(self, version: str | None, path: str, limit: int) -> Iterator[tuple[str, bytes]]:
        """Earlier committed versions of one file, newest first (for 'last good version')."""
        assert version is not None
        walker = self.repo.get_walker(
            include=[ObjectID(version.encode())], paths=[path.encode()], max_entries=limit
        )
        for entry in walker:
            sha = entry.commit.id.decode()
            data = self.read(sha, path)
            if data is not None:
                yield sha, data

    def list_files(self, version: str | None, folder: str) -> list[str]:
        assert version is not None
        commit = self.repo[version.encode()]
        assert isinstance(commit, Commit)
        tree_id = commit.tree
        if folder:
            try:
                mode, tree_id = tree_lookup_path(self.repo.__getitem__, commit.tree, folder.encode())
            except (KeyError, NotTreeError):
                return []
            if not stat.S_ISDIR(mode):
                return []
        tree = self.repo[tree_id]
        assert isinstance(tree, Tree)
        prefix = f"{folder}/" if folder else ""
        return sorted(prefix + item.path.decode() for item in tree.iteritems() if stat.S_ISREG(item.mode))

    # -- changes ------------------------------------------------------------------------------
    def heads(self) -> dict[str, str]:
        prefixes = (b"refs/remotes/origin/", b"refs/heads/") if self.remote else (b"refs/heads/",)
        return {
            ref.decode(): sha.decode()
            for ref, sha in self.repo.get_refs().items()
            if ref.startswith(prefixes)
        }

    def changed_paths(self, old: str, new: str) -> list[str]:
        old_commit, new_commit = self.repo[old.encode()], self.repo[new.encode()]
        assert isinstance(old_commit, Commit)
        assert isinstance(new_commit, Commit)
        paths: set[str] = set()
        for change in tree_changes(self.repo.object_store, old_commit.tree, new_commit.tree):
            for side in (change.old, change.new):
                if side is not None and side.path is not None:
                    paths.add(side.path.decode())
        return sorted(paths)

    def update(self) -> None:
        if self.remote:
            try:
                porcelain.fetch(
                    self.repo, self.uri, quiet=True, errstream=io.BytesIO(), outstream=io.StringIO()
                )
            except Exception as exc:  # a failed fetch keeps serving what we have
                log.warning("fetch from %s failed: %s", safe_uri(self.uri), type(exc).__name__)

    def describe(self) -> dict[str, Any]:
        return {"backend": "git", "uri": safe_uri(self.uri), "remote": self.remote}

    def close(self) -> None:
        self.repo.close()  # open pack files


class NativeRepository:
    """A plain folder (no ``.git``): the files as they are, version null, only the default label."""

    kind = "native"

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def resolve(self, label: str | None) -> Resolved:
        if label is not None:
            raise UnknownLabel(f"{self.root} is not a Git repository: labels are not available")
        return Resolved(None, None)

    def _path(self, path: str) -> Path | None:
        full = (self.root / path).resolve()
        return full if full.is_relative_to(self.root) else None  # never leave the root

    def read(self, version: str | None, path: str) -> bytes | None:
        full = self._path(path)
        if full is None or not full.is_file():
            return None
        return full.read_bytes()

    def history(self, version: str | None, path: str, limit: int) -> Iterator[tuple[str, bytes]]:
        return iter(())

    def list_files(self, version: str | None, folder: str) -> list[str]:
        full = self._path(folder)
        if full is None or not full.is_dir():
            return []
        prefix = f"{folder}/" if folder else ""
        return sorted(prefix + child.name for child in full.iterdir() if child.is_file())

    def heads(self) -> dict[str, str]:
        return {}

    def changed_paths(self, old: str, new: str) -> list[str]:
        return []

    def update(self) -> None:
        return None

    def close(self) -> None:
        return None

    def describe(self) -> dict[str, Any]:
        return {
            "backend": "native",
            "uri": str(self.root),
            "note": "no .git here (an archive download?): serving the files as they are, version null, no labels",
        }
