"""Login sessions, refresh tokens and login-failure counters in Redis.

``auth:session:{sid}``  hash (sub, client_id, scope, role, created_at), expires at the session's end.
``auth:refresh:{sha256}`` JSON ``{"sid", "used"}``: refresh tokens are stored hashed only. A rotated
token is kept, marked used, until it would have expired, so presenting it again is recognised
as reuse and ends the whole session.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis

from chassis import ServiceError
from chassis.auth import REVOCATION_CHANNEL

__all__ = ["RotateOutcome", "Session", "SessionStore", "StoreUnavailable", "token_digest"]

log = logging.getLogger(__name__)

SESSION = "auth:session:"
REFRESH = "auth:refresh:"
FAILURES = "auth:login-failures:"


class StoreUnavailable(ServiceError):
    status = 503
    title = "Service Unavailable"

    def __init__(self) -> None:
        super().__init__("The session store is unavailable.", headers={"Retry-After": "2"})


@contextlib.contextmanager
def _guard() -> Iterator[None]:
    try:
        yield
    except (redis.RedisError, OSError) as exc:
        log.warning("session store unreachable (%s)", type(exc).__name__)
        raise StoreUnavailable() from None


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    sid: str
    sub: str
    client_id: str
    scope: str
    role: str


RotateOutcome = str  # "ok" | "unknown" | "reuse" | "revoked"

# Atomic check-and-rotate. KEYS: old refresh, session, new refresh. ARGV: sid, new ttl.
_ROTATE = """
local rec = redis.call('GET', KEYS[1])
if not rec then return 'unknown' end
local data = cjson.decode(rec)
if data.sid ~= ARGV[1] then return 'unknown' end
if data.used then
  redis.call('DEL', KEYS[2])
  return 'reuse'
end
if redis.call('EXISTS', KEYS[2]) == 0 then return 'revoked' end
data.used = true
redis.call('SET', KEYS[1], cjson.encode(data), 'KEEPTTL')
redis.call('SET', KEYS[3], cjson.encode({sid = ARGV[1], used = false}), 'EX', tonumber(ARGV[2]))
return 'ok'
"""


class SessionStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self._redis = client
        self._rotate = client.register_script(_ROTATE)

    async def create(
        self, *, session: Session, refresh_token: str, refresh_ttl_s: int, session_ttl_s: int
    ) -> None:
        with _guard():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(
                    SESSION + session.sid,
                    mapping={
                        "sub": session.sub,
                        "client_id": session.client_id,
                        "scope": session.scope,
                        "role": session.role,
                        "created_at": str(int(time.time())),
                    },
                )
                pipe.expire(SESSION + session.sid, session_ttl_s)
                pipe.set(REFRESH + token_digest(refresh_token), _record(session.sid), ex=refresh_ttl_s)
                await pipe.execute()

    async def get(self, sid: str) -> Session | None:
        with _guard():
            raw = await self._redis.hgetall(SESSION + sid)
        if not raw:
            return None
        data = {_text(k): _text(v) for k, v in raw.items()}
        return Session(sid, data["sub"], data["client_id"], data.get("scope", ""), data.get("role", ""))

    async def exists(self, sid: str) -> bool:
        with _guard():
            return bool(await self._redis.exists(SESSION + sid))

    async def refresh_sid(self, refresh_token: str) -> tuple[str, bool] | None:
        """``(sid, used)`` of a refresh token, or None when unknown or expired."""
        with _guard():
            raw = await self._redis.get(REFRESH + token_digest(refresh_token))
        if raw is None:
            return None
        data: dict[str, Any] = json.loads(raw)
        return str(data["sid"]), bool(data.get("used"))

    async def rotate(self, *, sid: str, old: str, new: str, refresh_ttl_s: int) -> RotateOutcome:
        with _guard():
            outcome = await self._rotate(
                keys=[REFRESH + token_digest(old), SESSION + sid, REFRESH + token_digest(new)],
                args=[sid, refresh_ttl_s],
            )
        result = outcome.decode() if isinstance(outcome, bytes) else str(outcome)
        if result == "reuse":
            await self._announce(sid)
        return result

    async def revoke(self, sid: str) -> bool:
        with _guard():
            removed = bool(await self._redis.delete(SESSION + sid))
        await self._announce(sid)
        return removed

    async def _announce(self, sid: str) -> None:
        # Best effort: gateways' introspection caches also expire by themselves within seconds.
        try:
            await self._redis.publish(REVOCATION_CHANNEL, sid)
        except (redis.RedisError, OSError):
            log.warning("revocation of a session not announced: Redis unreachable")

    # Login failures per user + IP (brute-force protection).

    async def failures_retry_after(self, key: str, *, max_failures: int) -> int | None:
        """Seconds left in the lockout when ``key`` has used up its failures, else None."""
        with _guard():
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.get(FAILURES + key)
                pipe.ttl(FAILURES + key)
                count, ttl = await pipe.execute()
        if count is None or int(count) < max_failures:
            return None
        return max(1, int(ttl))

    async def record_failure(self, key: str, *, window_s: int) -> int:
        with _guard():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(FAILURES + key)
                pipe.expire(FAILURES + key, window_s, nx=True)
                count, _ = await pipe.execute()
        return int(count)

    async def clear_failures(self, key: str) -> None:
        with _guard():
            await self._redis.delete(FAILURES + key)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _record(sid: str) -> str:
    return json.dumps({"sid": sid, "used": False})
