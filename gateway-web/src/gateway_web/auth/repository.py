"""Browser sessions in Redis, so any gateway-web process serves them and a restart keeps them.

``web:session:{sha256(cookie)}``: the tokens the browser never sees, plus its CSRF token. Only the
hash of the cookie is a key, so a Redis dump or key listing does not reveal usable cookies.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass, field

import redis
import redis.asyncio as aioredis

from chassis import ServiceError

__all__ = ["SessionRecord", "SessionRepository", "SessionStoreUnavailable"]

log = logging.getLogger(__name__)

PREFIX = "web:session:"
LOCK = "web:session-lock:"


class SessionStoreUnavailable(ServiceError):
    status = 503
    title = "Service Unavailable"

    def __init__(self) -> None:
        super().__init__("The session store is unavailable.", headers={"Retry-After": "2"})


@dataclass
class SessionRecord:
    sub: str
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    access_expires_at: int
    csrf_token: str = field(repr=False)
    scope: str = ""


@contextlib.contextmanager
def _guard() -> Iterator[None]:
    try:
        yield
    except (redis.RedisError, OSError) as exc:
        log.warning("session store unreachable (%s)", type(exc).__name__)
        raise SessionStoreUnavailable() from None


def _key(session_id: str) -> str:
    return PREFIX + hashlib.sha256(session_id.encode()).hexdigest()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


class SessionRepository:
    def __init__(self, client: aioredis.Redis) -> None:
        self._redis = client

    async def get(self, session_id: str) -> SessionRecord | None:
        with _guard():
            raw = await self._redis.get(_key(session_id))
        if raw is None:
            return None
        try:
            return SessionRecord(**json.loads(raw))
        except (ValueError, TypeError):
            return None

    async def put(self, session_id: str, record: SessionRecord, *, ttl_s: int) -> None:
        with _guard():
            await self._redis.set(_key(session_id), json.dumps(asdict(record)), ex=ttl_s)

    async def touch(self, session_id: str, *, ttl_s: int) -> None:
        with _guard():
            await self._redis.expire(_key(session_id), ttl_s)

    async def delete(self, session_id: str) -> None:
        with _guard():
            await self._redis.delete(_key(session_id))

    @contextlib.asynccontextmanager
    async def refresh_lock(self, session_id: str, *, ttl_ms: int = 5000) -> AsyncIterator[bool]:
        """True when this process may refresh the session's tokens (one refresh per session at a
        time across all gateway-web processes: two would trip auth-service's reuse detection)."""
        name = LOCK + hashlib.sha256(session_id.encode()).hexdigest()
        token = secrets.token_hex(8)
        with _guard():
            acquired = bool(await self._redis.set(name, token, nx=True, px=ttl_ms))
        try:
            yield acquired
        finally:
            if acquired:
                with contextlib.suppress(redis.RedisError, OSError):
                    if await self._redis.get(name) == token.encode():
                        await self._redis.delete(name)
