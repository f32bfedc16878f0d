"""Fixtures of config-service's tests: a real Git repository (git CLI), the app in-process and the
refresh events it publishes on a real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI

from chassis.refresh import REFRESH_CHANNEL
from config_service.main import create
from config_service.settings import Settings

DEV_AUTH = ("config-client", "dev-only-config-client-password")
SEARCH_PATH = "deploy/config-repo"


class GitRepo:
    """A throwaway repository driven through the git CLI (what a user does)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "test",
            "GIT_AUTHOR_EMAIL": "test@example.org",
            "GIT_COMMITTER_NAME": "test",
            "GIT_COMMITTER_EMAIL": "test@example.org",
        }
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", *args],
            cwd=self.root,
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        )
        return done.stdout.strip()

    def write(self, name: str, text: str, *, folder: str = SEARCH_PATH) -> None:
        path = self.root / folder / name if folder else self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def commit(self, message: str = "change", **files: str) -> str:
        """``commit(**{"catalog.yml": "..."})`` writes the files under the search path and commits."""
        for name, text in files.items():
            self.write(name, text)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def git_repo(tmp_path: Path) -> GitRepo:
    root = tmp_path / "repo"
    root.mkdir()
    return GitRepo(root)


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.levelname} {record.name} {record.getMessage()}")


@dataclass
class ConfigApp:
    app: FastAPI
    client: httpx.AsyncClient
    capture: _Capture

    @property
    def logs(self) -> str:
        return "\n".join(self.capture.messages)


AppFactory = Callable[..., contextlib.AbstractAsyncContextManager[ConfigApp]]


@pytest.fixture
def config_app(redis_url: str) -> AppFactory:
    """``async with config_app(repo_uri, **settings) as cfg``: lifespan run, dev credentials, logs kept."""

    @contextlib.asynccontextmanager
    async def make(repo_uri: Path | str, **overrides: Any) -> AsyncIterator[ConfigApp]:
        values: dict[str, Any] = {
            "config_repo_uri": str(repo_uri),
            "config_search_paths": SEARCH_PATH,
            "redis_url": redis_url,
            "zipkin_endpoint": None,
            "config_poll_interval_s": 0,
            **overrides,
        }
        app = create(Settings(**values))
        capture = _Capture()  # after create(): the chassis resets the root logger's handlers
        root = logging.getLogger()
        root.addHandler(capture)
        try:
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app)
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://config", auth=DEV_AUTH
                ) as client:
                    yield ConfigApp(app, client, capture)
        finally:
            root.removeHandler(capture)

    return make


RefreshEvents = Callable[..., Awaitable[list[dict[str, Any]]]]


@pytest.fixture
def refresh_events(redis_url: str) -> RefreshEvents:
    """``await refresh_events(action, count)``: run ``action`` while subscribed to the refresh channel;
    the first ``count`` events (bounded wait).

    ``startup=False`` drops the start-up announcement, which may come before or after ``action``."""

    async def collect(
        action: Callable[[], Awaitable[None]], count: int, *, startup: bool = True
    ) -> list[dict[str, Any]]:
        client = aioredis.Redis.from_url(redis_url)
        try:
            async with client.pubsub() as pubsub:
                await pubsub.subscribe(REFRESH_CHANNEL)
                await action()
                events: list[dict[str, Any]] = []
                async with asyncio.timeout(15):
                    while len(events) < count:
                        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                        if message is not None:
                            event = json.loads(message["data"])
                            if startup or event["reason"] != "config-service started":
                                events.append(event)
                return events
        finally:
            await client.aclose()

    return collect
