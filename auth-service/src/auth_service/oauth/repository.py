"""Login sessions, refresh tokens and the login limits' counters in Redis.

``auth:session:{sid}``  hash (sub, client_id, scope, role, created_at), expires at the session's end.
``auth:refresh:{sha256}`` JSON ``{"sid", "used"}``: refresh tokens are stored hashed only. A rotated
token is kept, marked used, until it would have expired, so presenting it again is recognised
as reuse and ends the whole session.
``auth:login-failures:{sha256(user, address)}``, ``auth:login-failures-ip:{address}``: failed logins
of one user from one address, and of one address for any user, each expiring with its window.
``auth:login-attempts``: password checks platform-wide in the current global window.
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

__all__ = [
    "LoginAdmission",
    "LoginLimits",
    "RotateOutcome",
    "Session",
    "SessionStore",
    "StoreUnavailable",
    "token_digest",
]

log = logging.getLogger(__name__)

SESSION = "auth:session:"
REFRESH = "auth:refresh:"
FAILURES = "auth:login-failures:"
IP_FAILURES = "auth:login-failures-ip:"
ATTEMPTS = "auth:login-attempts"


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


@dataclass(frozen=True)
class LoginLimits:
    user_max: int
    user_window_s: int
    ip_max: int
    ip_window_s: int
    global_max: int
    global_window_s: int


@dataclass(frozen=True)
class LoginAdmission:
    """``limit`` is None when the password may be checked, else the limit that refuses it
    (``user``, ``ip``, ``global``) and ``retry_after_s``. The counts (this attempt included) tell
    when a limit has just been reached: the failures of the user+address and of the address when
    admitted, the attempts of the window when refused by the global limit."""

    limit: str | None
    retry_after_s: int = 0
    user_failures: int = 0
    address_failures: int = 0
    global_attempts: int = 0


# Admission of one login, atomic and before any hashing: the user+address and address limits are
# checked, then the attempt is counted against the global ceiling, then reserved as a failure of its
# user+address and address (released by _SETTLE when the password proves right or goes unchecked):
# concurrent attempts cannot all slip through under a limit.
# KEYS: user+address, address, global. ARGV: the six LoginLimits values, in field order.
_ADMIT = """
local function wait(key)
  local ms = redis.call('PTTL', key)
  if ms <= 0 then return 1 end
  return math.ceil(ms / 1000)
end
local function bump(key, window)
  local n = redis.call('INCR', key)
  if redis.call('PTTL', key) < 0 then redis.call('EXPIRE', key, window) end
  return n
end
if tonumber(redis.call('GET', KEYS[1]) or '0') >= tonumber(ARGV[1]) then
  return {'user', wait(KEYS[1]), 0, 0, 0}
end
if tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[3]) then
  return {'ip', wait(KEYS[2]), 0, 0, 0}
end
local attempts = bump(KEYS[3], ARGV[6])
if attempts > tonumber(ARGV[5]) then return {'global', wait(KEYS[3]), 0, 0, attempts} end
return {'ok', 0, bump(KEYS[1], ARGV[2]), bump(KEYS[2], ARGV[4]), attempts}
"""

# Settles a reservation of _ADMIT. ARGV[1]: 'success' (the user+address count starts over and the
# address gets its attempt back) or 'unchecked' (no password was tried: both get it back).
_SETTLE = """
local function release(key)
  if tonumber(redis.call('GET', key) or '0') > 0 then redis.call('DECR', key) end
end
if ARGV[1] == 'success' then redis.call('DEL', KEYS[1]) else release(KEYS[1]) end
release(KEYS[2])
return 1
"""


class SessionStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self._redis = client
        self._rotate = client.register_script(_ROTATE)
        self._admit = client.register_script(_ADMIT)
        self._settle = client.register_script(_SETTLE)

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

    # Login limits (brute force and floods): one round trip before hashing, one after a success.

    async def admit_login(self, *, user_key: str, address: str, limits: LoginLimits) -> LoginAdmission:
        """Checks and counts one login attempt (see ``_ADMIT``); an admitted attempt counts as a
        failure until ``settle_login`` says otherwise."""
        with _guard():
            status, wait, user, from_address, attempts = await self._admit(
                keys=[FAILURES + user_key, IP_FAILURES + address, ATTEMPTS],
                args=[
                    limits.user_max,
                    limits.user_window_s,
                    limits.ip_max,
                    limits.ip_window_s,
                    limits.global_max,
                    limits.global_window_s,
                ],
            )
        limit = _text(status)
        return LoginAdmission(
            None if limit == "ok" else limit, int(wait), int(user), int(from_address), int(attempts)
        )

    async def settle_login(self, *, user_key: str, address: str, checked: bool) -> None:
        """After a correct password (``checked``), or when the password was never checked."""
        with _guard():
            await self._settle(
                keys=[FAILURES + user_key, IP_FAILURES + address],
                args=["success" if checked else "unchecked"],
            )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _record(sid: str) -> str:
    return json.dumps({"sid": sid, "used": False})
