"""Build Spring ``Environment`` answers: which files apply, in which order, decrypted.

Order, highest precedence first: for each profile from the last to the first,
``{app}-{profile}`` then ``application-{profile}``; then ``{app}``, then ``application``.
Within one name: each search path in the order given, ``.properties`` > ``.yml`` > ``.yaml`` >
``.json``. A file that does not parse is served at its last committed version that did.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from config_service.crypto.service import CIPHER_PREFIX, Cipher, CipherError
from config_service.environment.parsing import EXTENSIONS, ParseError, parse_file
from config_service.environment.repository import ConfigRepository, Resolved, safe_uri

__all__ = ["EnvironmentService", "FileState", "app_names_for"]

log = logging.getLogger(__name__)

T = TypeVar("T")
INVALID = "<n/a>"
HISTORY_LIMIT = 50


@dataclass(frozen=True)
class FileState:
    """One file at one version: its flat properties (as served) and, if broken, why."""

    source: dict[str, Any] | None  # None: no usable version at all
    served_version: str | None  # the commit whose content is served
    error: str | None = None


def app_names_for(path: str, search_paths: list[str]) -> list[str]:
    """Apps affected by a changed file: ``catalog-docker.yml`` -> catalog, ``application*`` -> ``*``.

    Names are guessed Spring-style (the whole stem and the stem before its last dash), since a dash
    may belong to the app name (``auth-service.yml``) or start a profile (``catalog-docker.yml``).
    Files outside the search paths are not configuration.
    """
    folder, _, filename = path.rpartition("/")
    if folder.strip("/") not in search_paths:
        return []
    stem, dot, ext = filename.rpartition(".")
    if not dot or ext not in EXTENSIONS or not stem:
        return []
    if stem == "application" or stem.startswith("application-"):
        return ["*"]
    names = [stem]
    if "-" in stem:
        names.append(stem.rsplit("-", 1)[0])
    return names


class EnvironmentService:
    def __init__(
        self, repository: ConfigRepository, *, search_paths: list[str], cipher: Cipher, uri: str
    ) -> None:
        self.repository = repository
        self.search_paths = search_paths
        self.cipher = cipher
        self.uri = safe_uri(uri).rstrip("/")
        self._lock = threading.Lock()  # dulwich objects are not thread-safe
        self._files: dict[tuple[str | None, str], FileState] = {}
        self.malformed: dict[str, dict[str, Any]] = {}  # at the default label's head, for /health/ready

    async def call(self, fn: Callable[[], T]) -> T:
        """Run blocking repository work in a worker thread, one at a time."""

        def locked() -> T:
            with self._lock:
                return fn()

        return await asyncio.to_thread(locked)

    # -- the Environment --------------------------------------------------------------------
    def environment(self, app: str, profiles: list[str], label: str | None) -> dict[str, Any]:
        """Raises ``UnknownLabel``. Runs in a worker thread (see ``call``)."""
        resolved = self.repository.resolve(label)
        sources = []
        for path in self._candidates(app, profiles):
            state = self._file(resolved, path)
            if state.source is None:
                continue
            sources.append({"name": f"{self.uri}/{path}", "source": self._decrypted(state.source, path)})
        return {
            "name": app,
            "profiles": profiles,
            "label": label,  # as asked; null for the default label, like Spring
            "version": resolved.version,
            "state": None,
            "propertySources": sources,
        }

    def _candidates(self, app: str, profiles: list[str]) -> list[str]:
        names: list[str] = []
        for profile in reversed(profiles):
            names += [f"{app}-{profile}", f"application-{profile}"]
        names += [app, "application"]
        seen: set[str] = set()
        paths = []
        for name in names:
            if name in seen:
                continue
            seen.add(name)
            for folder in self.search_paths:
                for ext in EXTENSIONS:
                    paths.append(f"{folder}/{name}.{ext}" if folder else f"{name}.{ext}")
        return paths

    def _file(self, resolved: Resolved, path: str) -> FileState:
        key = (resolved.version, path)
        cached = self._files.get(key)
        if cached is not None and resolved.version is not None:
            return cached
        data = self.repository.read(resolved.version, path)
        if data is None:
            state = FileState(None, None)
        else:
            try:
                state = FileState(parse_file(path, data), resolved.version)
            except ParseError as exc:
                state = self._last_good(resolved.version, path, str(exc))
        if len(self._files) > 4096:
            self._files.clear()
        self._files[key] = state
        return state

    def _last_good(self, version: str | None, path: str, error: str) -> FileState:
        for sha, data in self.repository.history(version, path, HISTORY_LIMIT):
            try:
                source = parse_file(path, data)
            except ParseError:
                continue
            log.error(
                "%s at %s does not parse (%s): serving its last good version %s",
                path,
                _short(version),
                error,
                _short(sha),
            )
            return FileState(source, sha, error)
        log.error(
            "%s at %s does not parse (%s) and has no earlier good version: left out",
            path,
            _short(version),
            error,
        )
        return FileState(None, None, error)

    def _decrypted(self, source: dict[str, Any], path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in source.items():
            if isinstance(value, str) and value.startswith(CIPHER_PREFIX):
                try:
                    out[key] = self.cipher.decrypt(value)
                except CipherError as exc:
                    # Spring's convention; the value itself is never logged.
                    log.warning("cannot decrypt %s in %s (%s): served as invalid.%s", key, path, exc, key)
                    out[f"invalid.{key}"] = INVALID
                continue
            out[key] = value
        return out

    # -- checks for the poller and /health/ready ---------------------------------------------
    def check_head(self) -> Resolved:
        """Parse every config file at the default label's head; remember what is broken."""
        resolved = self.repository.resolve(None)
        malformed: dict[str, dict[str, Any]] = {}
        for folder in self.search_paths:
            for path in self.repository.list_files(resolved.version, folder):
                if path.rpartition(".")[2] not in EXTENSIONS:
                    continue
                state = self._file(resolved, path)
                if state.error is not None:
                    malformed[path] = {
                        "commit": resolved.version,
                        "error": state.error,
                        "serving": state.served_version if state.source is not None else None,
                    }
        self.malformed = malformed
        return resolved


def _short(version: str | None) -> str:
    return version[:12] if version else "working files"
