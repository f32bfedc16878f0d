"""The config store's life cycle: open the repository (retrying while it cannot be read), then poll.

A repository that cannot be read (not mounted, a worktree whose git dir is elsewhere, a clone that
fails) does not stop the process: ``/health/ready`` says why, reads answer 503, and opening is
retried until it works.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from chassis import ServiceError
from chassis.state import chassis_state
from config_service.crypto.service import Cipher
from config_service.environment.repository import RepositoryError, open_repository
from config_service.environment.service import EnvironmentService
from config_service.monitor.service import Monitor
from config_service.settings import Settings

__all__ = ["ConfigStore", "RepositoryUnavailable"]

log = logging.getLogger(__name__)

REOPEN_MAX_S = 30.0


class RepositoryUnavailable(ServiceError):
    status = 503
    title = "Config repository unavailable"


class ConfigStore:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.environment: EnvironmentService | None = None
        self.monitor: Monitor | None = None
        self.cipher: Cipher | None = None
        self.error: str | None = "not opened yet"

    def require(self) -> tuple[EnvironmentService, Monitor]:
        if self.environment is None or self.monitor is None:
            raise RepositoryUnavailable(self.error, headers={"Retry-After": "5"})
        return self.environment, self.monitor

    async def _open(self, app: FastAPI, cipher: Cipher) -> bool:
        settings = self.settings
        try:
            repository = await asyncio.to_thread(
                open_repository,
                settings.config_repo_uri,
                default_label=settings.config_default_label,
                clone_dir=settings.config_clone_dir,
            )
        except RepositoryError as exc:
            if self.error != str(exc):
                log.error("config repository unreadable (retrying): %s", exc)
            self.error = str(exc)
            return False
        self.environment = EnvironmentService(
            repository, search_paths=settings.search_paths, cipher=cipher, uri=settings.config_repo_uri
        )
        self.monitor = Monitor(self.environment, chassis_state(app).redis)
        self.error = None
        log.info(
            "serving %s (%s) from %s", settings.search_paths, repository.kind, repository.describe()["uri"]
        )
        if repository.kind == "directory":
            await self._warn_if_empty(self.environment)
        return True

    async def _warn_if_empty(self, environment: EnvironmentService) -> None:
        """A ConfigMap volume is flat: the default search path finds nothing in it."""

        def count() -> int:
            version = environment.repository.resolve(None).version
            return sum(len(environment.repository.list_files(version, f)) for f in environment.search_paths)

        try:
            found = await environment.call(count)
        except RepositoryError:
            return  # /health/ready says why
        if not found:
            log.warning(
                "no config file under %s in %s: for a flat ConfigMap volume set CONFIG_SEARCH_PATHS=/",
                environment.search_paths,
                environment.repository.describe()["uri"],
            )

    async def _run(self, app: FastAPI, cipher: Cipher, opened: bool) -> None:
        delay = 1.0
        while not opened:
            await asyncio.sleep(delay)
            delay = min(delay * 2, REOPEN_MAX_S)
            opened = await self._open(app, cipher)
        assert self.monitor is not None
        await self.monitor.poll(self.settings.config_poll_interval_s)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        cipher = await asyncio.to_thread(Cipher, self.settings.encrypt_key.get_secret_value())
        if cipher.dev_key:
            log.warning("ENCRYPT_KEY is the development key: fine on a laptop, refused with ENV=production")
        self.cipher = cipher
        opened = await self._open(app, cipher)
        task = asyncio.create_task(self._run(app, cipher, opened), name="config-store")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if self.environment is not None:
                await self.environment.call(self.environment.repository.close)

    async def ready(self) -> dict[str, Any]:
        environment, _ = self.require()
        resolved = await environment.call(environment.check_head)
        return {
            **environment.repository.describe(),
            "search_paths": environment.search_paths,
            "label": resolved.label,
            "version": resolved.version,
            "malformed": [{"path": path, **info} for path, info in sorted(environment.malformed.items())],
        }
