"""Change detection and refresh events.

Two ways a change is noticed: polling the repository's branch heads (every
``CONFIG_POLL_INTERVAL_S``; for a ``dir:`` directory, its content hash) and the ``/monitor``
webhook. Either way the affected apps are published as ``{"apps": [...], "version": sha}`` on
``msa:config:refresh``; services subscribed there re-fetch. On start-up config-service announces
``"*"``: clients may have missed changes while it was away.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any

import redis
import redis.asyncio as aioredis

from chassis.refresh import REFRESH_CHANNEL
from config_service.environment.repository import RepositoryError, UnknownLabel
from config_service.environment.service import EnvironmentService, app_names_for

__all__ = ["Monitor", "paths_from_payload"]

log = logging.getLogger(__name__)


def paths_from_payload(payload: Any) -> list[str]:
    """Changed file paths of a GitHub or GitLab push event (``commits[].added/modified/removed``)."""
    paths: list[str] = []
    commits = payload.get("commits") if isinstance(payload, Mapping) else None
    for commit in commits if isinstance(commits, list) else []:
        if not isinstance(commit, Mapping):
            continue
        for kind in ("added", "modified", "removed"):
            files = commit.get(kind)
            paths += [str(path) for path in files if isinstance(path, str)] if isinstance(files, list) else []
    head = payload.get("head_commit") if isinstance(payload, Mapping) else None
    if isinstance(head, Mapping) and not paths:
        for kind in ("added", "modified", "removed"):
            files = head.get(kind)
            paths += [str(path) for path in files if isinstance(path, str)] if isinstance(files, list) else []
    return paths


class Monitor:
    def __init__(self, service: EnvironmentService, redis_client: aioredis.Redis) -> None:
        self.service = service
        self.redis = redis_client
        self.published = 0

    def apps_for(self, paths: Iterable[str]) -> list[str]:
        apps: set[str] = set()
        for path in paths:
            apps.update(app_names_for(path.strip("/"), self.service.search_paths))
        return ["*"] if "*" in apps else sorted(apps)

    async def publish(self, apps: list[str], *, version: str | None, reason: str) -> bool:
        payload = json.dumps({"apps": apps, "version": version, "reason": reason})
        try:
            receivers = await self.redis.publish(REFRESH_CHANNEL, payload)
        except (redis.RedisError, OSError) as exc:
            log.warning(
                "refresh event for %s not published: Redis unreachable (%s)", apps, type(exc).__name__
            )
            return False
        self.published += 1
        log.info(
            "refresh event (%s) for %s at version %s reached %d subscriber(s)",
            reason,
            apps,
            version,
            receivers,
        )
        return True

    async def head(self) -> str | None:
        try:
            return (await self.service.call(self.service.check_head)).version
        except (UnknownLabel, RepositoryError) as exc:
            log.warning("default label unreadable: %s", exc)
            return None

    async def on_webhook(self, paths: list[str], apps: list[str]) -> list[str]:
        """``/monitor``: fetch (remote repositories), then announce the named apps."""
        await self.service.call(self.service.repository.update)
        named = {"*" if app in ("application", "*") else app for app in apps}
        affected = sorted(set(self.apps_for(paths)) | named)
        if "*" in affected:
            affected = ["*"]
        if affected:
            await self.publish(affected, version=await self.head(), reason="monitor")
        return affected

    async def poll(self, interval_s: float) -> None:
        """Runs until cancelled: announce once, then compare branch heads every ``interval_s``."""
        heads = await self._heads()
        await self.publish(["*"], version=await self.head(), reason="config-service started")
        if interval_s <= 0:
            return
        while True:
            await asyncio.sleep(interval_s)
            try:
                if heads is None:  # unreadable so far (a dir: volume): announce once it reads
                    heads = await self._heads()
                    if heads is not None:
                        await self.publish(["*"], version=await self.head(), reason="repository readable")
                    continue
                heads = await self._poll_once(heads)
            except Exception:  # the poller must outlive any one bad commit or I/O hiccup
                log.exception("polling the config repository failed")

    async def _heads(self) -> dict[str, str] | None:
        try:
            return await self.service.call(self.service.repository.heads)
        except RepositoryError as exc:  # /health/ready says why
            log.debug("repository heads unreadable: %s", exc)
            return None

    async def _poll_once(self, heads: dict[str, str]) -> dict[str, str]:
        await self.service.call(self.service.repository.update)
        current = await self.service.call(self.service.repository.heads)
        if current == heads:
            return heads
        paths: set[str] = set()
        for ref, sha in current.items():
            old = heads.get(ref)
            if old is not None and old != sha:
                changed = await self.service.call(partial(self.service.repository.changed_paths, old, sha))
                paths.update(changed)
        version = await self.head()
        apps = self.apps_for(paths)
        kind = self.service.repository.kind
        change = (
            f"new commit(s) on {', '.join(_moved(heads, current))}"
            if kind == "git"
            else f"{kind} content changed (version {version})"  # e.g. the kubelet swapped ..data
        )
        # Commits that touch no config file (most of them, in this project's own repository) are quiet.
        log.log(logging.INFO if apps else logging.DEBUG, "%s; affected apps: %s", change, apps or "none")
        if apps:
            await self.publish(apps, version=version, reason="commit" if kind == "git" else "change")
        return current


def _moved(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    return sorted(ref for ref in new.keys() | old.keys() if old.get(ref) != new.get(ref))
