"""Where config files come from: a Git repository (labels = branch, tag or commit), when there
is no ``.git`` (a downloaded archive) the plain folder (version null, no labels), or, for
``dir:<path>``, a directory served as it is now with a content hash for version (a Kubernetes
ConfigMap volume: see ``DirectoryRepository``).

Files are read from the commit's tree, never from a working copy, so every label serves exactly
what was committed. dulwich objects are not thread-safe: callers serialise access (the service
holds a lock) and run these blocking calls in a worker thread.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import posixpath
import re
import stat
from collections import OrderedDict
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

from config_service.environment.parsing import EXTENSIONS

__all__ = [
    "ConfigRepository",
    "DirectoryRepository",
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

DIR_SCHEME = "dir:"
DATA_LINK = "..data"  # the kubelet's symlink to the current timestamped directory
VERSION_CHARS = 40  # hex digits of the content hash: 160 bits, the length of a Git commit id
KEEP_VERSIONS = 8  # snapshots remembered, for reads of a resolved version and for changed_paths
MAX_BYTES = 32 * 1024 * 1024  # a ConfigMap holds at most 1 MiB; this only stops a wrong mount
_CONFIG_SUFFIXES = tuple(f".{ext}" for ext in EXTENSIONS)
_READ_ATTEMPTS = 3


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
    if uri.startswith(DIR_SCHEME):
        folder = uri.removeprefix(DIR_SCHEME)
        if not folder.strip():
            raise RepositoryError(f"{uri!r}: expected dir:/absolute/path or dir:relative/path")
        root = Path(folder).expanduser()
        if not root.is_dir():
            raise RepositoryError(f"{root} is not a folder")
        return DirectoryRepository(root)
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


@dataclass(frozen=True)
class _Snapshot:
    version: str
    files: dict[str, bytes]  # relative path ("catalog.yml", "sub/x.yml") -> content
    digests: dict[str, bytes]  # relative path -> sha256 of the content


class DirectoryRepository:
    """A directory served as it is now, e.g. a Kubernetes ConfigMap volume (``dir:/config``).

    A ConfigMap volume holds ``name.yml -> ..data/name.yml`` for each key and
    ``..data -> ..2026_12_02_10_00_00.123456789``, the timestamped directory with the real files.
    The kubelet updates it by writing a new timestamped directory and renaming ``..data`` over
    atomically. Everything is read through the resolved ``..data`` (the root itself when there is
    none: a plain directory), all at once, into memory: one answer never mixes two updates.

    The version is a hash of the config files' names and contents, so it changes exactly when
    they do; polling ``heads()`` turns a swap into a refresh event like a new commit. Names
    starting with ``..`` are never served nor listed, and nothing outside the root is followed.
    No labels (like a plain folder); a file that does not parse is served as it was in the last
    version remembered here where it did (if any).
    """

    kind = "directory"

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._seen: OrderedDict[str, _Snapshot] = OrderedDict()  # version -> snapshot, LRU
        # A kubelet's timestamped directory never changes once ..data points to it: it is read
        # once, then reused while ..data points to the same one.
        self._source: tuple[str, int, int] | None = None
        self._latest: _Snapshot | None = None
        self._heads: dict[str, str] | None = None
        self._problem: str | None = None

    # -- labels -------------------------------------------------------------------------------
    def resolve(self, label: str | None) -> Resolved:
        if label is not None:
            raise UnknownLabel(f"{self.root} is a directory, not a Git repository: labels are not available")
        return Resolved(None, self._snapshot().version)

    # -- reading the directory ----------------------------------------------------------------
    def _snapshot(self) -> _Snapshot:
        error: OSError | None = None
        for _ in range(_READ_ATTEMPTS):
            try:
                base, source = self._base()
                if source is not None and source == self._source and self._latest is not None:
                    return self._remember(self._latest)
                files = self._load(base)
            except (FileNotFoundError, NotADirectoryError) as exc:
                # The kubelet removes the previous timestamped directory right after the swap:
                # read again through the new ..data.
                error = exc
                continue
            except OSError as exc:
                raise RepositoryError(f"cannot read {self.root}: {exc}") from exc
            snapshot = self._remember(_snapshot_of(files))
            self._source, self._latest = source, snapshot
            return snapshot
        raise RepositoryError(f"cannot read {self.root}: {error}")

    def _base(self) -> tuple[Path, tuple[str, int, int] | None]:
        """Where the files are: the resolved ``..data`` (and its identity), else the root."""
        if not self.root.is_dir():
            raise RepositoryError(f"{self.root} is not a folder")
        link = self.root / DATA_LINK
        if not os.path.lexists(link):
            return self.root, None
        try:
            target = link.resolve(strict=True)
        except RuntimeError as exc:  # a symlink loop (Python 3.11 and 3.12)
            raise RepositoryError(f"{link}: {exc}") from exc
        if target == self.root or not target.is_relative_to(self.root) or not target.is_dir():
            raise RepositoryError(f"{link} must point to a folder inside {self.root}")
        info = target.stat()
        return target, (str(target), info.st_ino, info.st_mtime_ns)

    def _load(self, base: Path) -> dict[str, bytes]:
        """The config files under ``base`` (recursively; a ConfigMap is flat), by relative path."""
        files: dict[str, bytes] = {}
        total = 0
        visited: set[Path] = set()
        pending: list[tuple[Path, str]] = [(base, "")]
        while pending:
            folder, prefix = pending.pop()
            if folder in visited:  # a symlink loop
                continue
            visited.add(folder)
            with os.scandir(folder) as entries:
                names = sorted(entry.name for entry in entries)
            for name in names:
                if name.startswith(".."):  # ..data, ..2026_..., ..data_tmp: the kubelet's own
                    continue
                try:
                    full = (folder / name).resolve()
                except RuntimeError:  # a symlink loop
                    continue
                if not _inside(full, base):
                    continue
                if full.is_dir():
                    if not name.startswith("."):  # .git and the like hold no configuration
                        pending.append((full, f"{prefix}{name}/"))
                elif full.is_file() and name.endswith(_CONFIG_SUFFIXES):
                    data = full.read_bytes()
                    total += len(data)
                    if total > MAX_BYTES:
                        raise RepositoryError(
                            f"{self.root} holds more than {MAX_BYTES // 2**20} MiB of config files: "
                            "dir: is meant for a ConfigMap volume"
                        )
                    files[prefix + name] = data
        return files

    def _remember(self, snapshot: _Snapshot) -> _Snapshot:
        known = self._seen.setdefault(snapshot.version, snapshot)
        self._seen.move_to_end(snapshot.version)
        while len(self._seen) > KEEP_VERSIONS:
            self._seen.popitem(last=False)
        return known

    # -- files --------------------------------------------------------------------------------
    def read(self, version: str | None, path: str) -> bytes | None:
        snapshot = self._seen.get(version) if version is not None else None
        name = _relative(path)
        if snapshot is None or name is None:
            return None
        return snapshot.files.get(name)

    def history(self, version: str | None, path: str, limit: int) -> Iterator[tuple[str, bytes]]:
        """The file in the versions remembered before ``version``, newest first (this process's
        memory only: after a restart a broken file has no earlier version)."""
        name = _relative(path)
        versions = list(self._seen)  # oldest first: a version moves to the end when it is read again
        if name is None or version not in versions:
            return iter(())
        earlier = [self._seen[v] for v in reversed(versions[: versions.index(version)])]
        found = [(snapshot.version, snapshot.files[name]) for snapshot in earlier if name in snapshot.files]
        return iter(found[:limit])

    def list_files(self, version: str | None, folder: str) -> list[str]:
        snapshot = self._seen.get(version) if version is not None else None
        name = _relative(folder)
        if snapshot is None or name is None:
            return []
        inner = f"{name}/" if name else ""
        prefix = f"{folder}/" if folder else ""
        return sorted(
            prefix + path[len(inner) :]
            for path in snapshot.files
            if path.startswith(inner) and "/" not in path[len(inner) :]
        )

    # -- changes ------------------------------------------------------------------------------
    def heads(self) -> dict[str, str]:
        """The current version; while the directory cannot be read, the last one seen (quietly)."""
        try:
            version = self._snapshot().version
        except RepositoryError as exc:
            if self._heads is None:
                raise
            if self._problem != str(exc):
                log.warning("%s (keeping version %s until it can be read)", exc, self._heads["content"])
            self._problem = str(exc)
            return dict(self._heads)
        self._problem = None
        self._heads = {"content": version}
        return dict(self._heads)

    def changed_paths(self, old: str, new: str) -> list[str]:
        before, after = self._seen.get(old), self._seen.get(new)
        if before is None or after is None:
            # Forgotten (more than KEEP_VERSIONS versions since): every file we know of, so that
            # every app with a file refreshes.
            return sorted({path for snapshot in self._seen.values() for path in snapshot.files})
        paths = before.digests.keys() | after.digests.keys()
        return sorted(path for path in paths if before.digests.get(path) != after.digests.get(path))

    def update(self) -> None:
        return None  # the kubelet updates the volume; heads() reads it

    def close(self) -> None:
        self._seen.clear()
        self._latest = self._source = None

    def describe(self) -> dict[str, Any]:
        return {
            "backend": "directory",
            "uri": f"{DIR_SCHEME}{self.root}",
            "note": "the files as they are now (a ConfigMap volume is read through ..data): "
            "version = content hash, no labels",
        }


def _snapshot_of(files: dict[str, bytes]) -> _Snapshot:
    """Version: sha256 over the sorted (name, sha256 of content) pairs; a NUL ends each name."""
    digests = {path: hashlib.sha256(data).digest() for path, data in files.items()}
    total = hashlib.sha256()
    for path in sorted(digests):
        total.update(os.fsencode(path) + b"\0" + digests[path])
    return _Snapshot(total.hexdigest()[:VERSION_CHARS], files, digests)


def _inside(full: Path, base: Path) -> bool:
    """``full`` (resolved) is under ``base`` and not in one of the kubelet's ``..`` entries."""
    if not full.is_relative_to(base):
        return False
    return not any(part.startswith("..") for part in full.relative_to(base).parts)


def _relative(path: str) -> str | None:
    """A path asked for, normalised ("" for the top); None if it leaves the root or names ``..*``."""
    if path.startswith("/") or "\0" in path:
        return None
    name = posixpath.normpath(path) if path else "."
    if name == ".":
        return ""
    if any(part.startswith("..") for part in name.split("/")):
        return None
    return name
