"""Rate limits at the edge: per client address and per principal, per route group, in Redis.

Each request falls into at most one route group of ``rate_limit.groups`` (the live settings,
read on every request: a config commit changes the limits without a restart): the group whose
path prefix is the longest match; at equal length, a group that names the request's method wins
over one for every method, then the one listed first. The group's buckets are GCRA (the generic
cell rate algorithm: a token bucket kept as one timestamp per key), one per client address (IPv6:
its /64) and, when the request presents a credential, one per credential: ``limit`` requests per
``period_s`` on average, ``burst`` at once from a rested bucket.

All the buckets of one request are checked and, only if every one admits it, counted, by one Lua
script in one round trip: a request refused by one bucket uses up none of the others. The time
is Redis's own (``TIME``), so replicas with skewed clocks share a bucket fairly, and each key
expires once its bucket is full again.

Why the principal is the presented credential (a digest of the bearer token or session cookie)
and not the user it belongs to: the check then runs before routing, in one round trip, before
any work is done for the request (a session lookup, an introspection call), the same way for
both gateways; and only the holder of a credential can spend its bucket (a ``sub`` read from an
unverified token could be anyone's). A user with several sessions has several buckets, each
bounded, and sessions are made by logins, which the ``login`` group limits per address.

Over a limit: 429 problem+json (the draft's ``quota-exceeded`` problem type) with
``Retry-After`` and the ``RateLimit-Policy``/``RateLimit`` fields, which admitted answers of a
limited group carry too. Redis unreachable, or not answering within ``CHECK_TIMEOUT_S``:
requests are admitted (fail open), with a warning at most every ``WARN_EVERY_S``, and a second
later one request asks Redis again. Health, ops and the API documents are never limited.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Self, cast

import redis.asyncio as aioredis
from fastapi import FastAPI
from opentelemetry.instrumentation.utils import suppress_instrumentation
from pydantic import BaseModel, Field, field_validator, model_validator
from redis.exceptions import NoScriptError, RedisError
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chassis.errors import PROBLEM_JSON, ServiceError, problem_response
from chassis.middleware import RequestContextMiddleware
from chassis.paths import exempt, under_prefix
from chassis.state import chassis_state

__all__ = [
    "Credential",
    "Quota",
    "RateLimitMiddleware",
    "RateLimitSettings",
    "RateLimited",
    "RouteGroup",
    "Verdict",
    "address_bucket",
    "bearer_credential",
    "check_quotas",
    "install_rate_limit",
]

log = logging.getLogger(__name__)

KEY_PREFIX = "msa:rl"
WARN_EVERY_S = 10.0  # Redis unreachable: at most one warning this often
RETRY_REDIS_S = 1.0  # and no request asks it again sooner (a black-holed Redis costs one timeout a second)
# A slow Redis (not down: paused, swapping, far away) delays each request at most this long, then
# the request is admitted as if Redis were down: a limit is not worth a slow edge. The wait is
# measured on our event loop, which a burst lags too: at 0.1 s a burst of 30 requests on a busy
# 2-core machine timed some checks out while Redis answered in a millisecond, and they got through.
CHECK_TIMEOUT_S = 0.5
# https://www.ietf.org/archive/id/draft-ietf-httpapi-ratelimit-headers-11.txt, section 5.1
QUOTA_EXCEEDED = "https://iana.org/assignments/http-problem-types#quota-exceeded"
_GROUP_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


# --- settings -----------------------------------------------------------------------------------


class Quota(BaseModel):
    """One bucket: ``limit`` requests per ``period_s`` on average, up to ``burst`` at once."""

    limit: int = Field(ge=1, le=1_000_000, description="requests per period, on average")
    period_s: int = Field(1, ge=1, le=86_400, description="the period, in whole seconds (the draft's w)")
    burst: int | None = Field(None, ge=1, le=1_000_000, description="requests at once; default: limit")

    @property
    def capacity(self) -> int:
        return self.burst or self.limit

    @property
    def interval_us(self) -> int:
        """The GCRA emission interval: one request's share of the period."""
        return max(1, round(self.period_s * 1_000_000 / self.limit))


class RouteGroup(BaseModel):
    """Requests under any of ``paths`` (prefixes, whole segments), of ``methods`` (empty: all)."""

    paths: list[str] = Field(min_length=1, description="path prefixes: /auth/login, /api/orders, /")
    methods: list[str] = Field(default_factory=list, description="e.g. [POST]; empty: every method")
    per_ip: Quota | None = Field(None, description="one bucket per client address (IPv6: per /64)")
    per_principal: Quota | None = Field(
        None, description="one bucket per presented credential (bearer token, session cookie)"
    )

    @field_validator("paths")
    @classmethod
    def _absolute(cls, paths: list[str]) -> list[str]:
        for path in paths:
            if not path.startswith("/"):
                raise ValueError(f"path prefix {path!r} must start with '/'")
        return paths

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, methods: list[str]) -> list[str]:
        upper = [method.strip().upper() for method in methods]
        if unknown := sorted(set(upper) - _METHODS):
            raise ValueError(f"unknown HTTP methods {unknown}")
        return upper

    @model_validator(mode="after")
    def _some_quota(self) -> Self:
        if self.per_ip is None and self.per_principal is None:
            raise ValueError("a route group needs per_ip, per_principal or both")
        return self


class RateLimitSettings(BaseModel):
    """``rate_limit``: re-read on every request. Off by default: the config repository turns it on."""

    enabled: bool = Field(False, description="false: nothing is limited or counted")
    groups: dict[str, RouteGroup] = Field(
        default_factory=dict, description="name -> route group; the most specific match applies"
    )

    @field_validator("groups")
    @classmethod
    def _names(cls, groups: dict[str, RouteGroup]) -> dict[str, RouteGroup]:
        # a name goes into Redis keys and the RateLimit fields (a structured-field String)
        for name in groups:
            if not _GROUP_NAME.match(name):
                raise ValueError(f"group name {name!r}: lowercase letters, digits, '_' or '-', 32 at most")
        return groups

    def group_for(self, method: str, path: str) -> tuple[str, RouteGroup] | None:
        """The longest matching prefix; at equal length a group naming the method; then the first."""
        best: tuple[int, bool, int] | None = None
        found = None
        for index, (name, group) in enumerate(self.groups.items()):
            if group.methods and method not in group.methods:
                continue
            for prefix in group.paths:
                if under_prefix(path, prefix):
                    rank = (len(prefix.rstrip("/")), bool(group.methods), -index)
                    if best is None or rank > best:
                        best, found = rank, (name, group)
        return found


# --- the script ---------------------------------------------------------------------------------

# KEYS: one bucket each. ARGV: per key, its emission interval and tolerance (interval * burst), in
# microseconds. A key holds its bucket's theoretical arrival time (TAT). Returns the verdict, then
# per key: whether it alone admits, requests left, milliseconds until one more is allowed.
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tats, fits, admit = {}, {}, true
for i = 1, #KEYS do
  local tat = math.max(tonumber(redis.call('GET', KEYS[i]) or 0), now)
  tats[i] = tat
  fits[i] = tat + tonumber(ARGV[2 * i - 1]) - now <= tonumber(ARGV[2 * i])
  admit = admit and fits[i]
end
local out = {admit and 1 or 0}
for i = 1, #KEYS do
  local interval, tolerance = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local tat = tats[i]
  if admit then
    tat = tat + interval
    redis.call('SET', KEYS[i], string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000))
  end
  local debt = tat - now
  local left = math.max(0, math.floor((tolerance - debt) / interval))
  local wait = 0
  if debt > 0 then wait = math.max(0, debt + (left + 1) * interval - tolerance) end
  out[#out + 1] = fits[i] and 1 or 0
  out[#out + 1] = left
  out[#out + 1] = math.ceil(wait / 1000)
end
return out
"""
_SHA = hashlib.sha1(_SCRIPT.encode()).hexdigest()


@dataclass(frozen=True)
class Usage:
    """One bucket after the check: ``fits``: it alone would have admitted the request."""

    policy: str
    quota: Quota
    fits: bool
    remaining: int
    wait_ms: int  # until one more request is allowed


@dataclass(frozen=True)
class Verdict:
    admitted: bool
    usages: tuple[Usage, ...]

    @property
    def retry_after_s(self) -> int:
        """Whole seconds until every refusing bucket has room again (at least 1)."""
        waits = [usage.wait_ms for usage in self.usages if not usage.fits]
        return max(1, math.ceil(max(waits, default=0) / 1000))

    def headers(self) -> dict[str, str]:
        """``RateLimit-Policy`` and ``RateLimit`` as draft-ietf-httpapi-ratelimit-headers-11 (May
        2026) writes them, sections 3 and 4: Lists of Items whose value is the policy name, a String.
        ``q``/``w``: the average rate; ``msa-burst``: what a rested bucket admits at once (a
        vendor parameter, 3.1); ``r``: requests left; ``t``: seconds until one more is allowed."""
        policies = ", ".join(
            f'"{u.policy}";q={u.quota.limit};w={u.quota.period_s};msa-burst={u.quota.capacity}'
            for u in self.usages
        )
        limits = ", ".join(
            f'"{u.policy}";r={u.remaining};t={math.ceil(u.wait_ms / 1000)}' for u in self.usages
        )
        headers = {"RateLimit-Policy": policies, "RateLimit": limits}
        if not self.admitted:
            headers["Retry-After"] = str(self.retry_after_s)
        return headers


Check = tuple[str, str, Quota]  # Redis key, policy name, quota


async def check_quotas(client: aioredis.Redis, checks: Sequence[Check]) -> Verdict:
    """Check every bucket and count the request in all of them if all admit it: one round trip."""
    keys = [key for key, _, _ in checks]
    args: list[int] = []
    for _, _, quota in checks:
        args += [quota.interval_us, quota.interval_us * quota.capacity]
    try:
        reply = await cast(Any, client.evalsha(_SHA, len(keys), *keys, *args))
    except NoScriptError:  # a restarted or flushed Redis: send the script itself (cached again)
        reply = await cast(Any, client.eval(_SCRIPT, len(keys), *keys, *args))
    values = [int(value) for value in reply]
    usages = tuple(
        Usage(policy, quota, bool(values[1 + 3 * i]), values[2 + 3 * i], values[3 + 3 * i])
        for i, (_, policy, quota) in enumerate(checks)
    )
    return Verdict(bool(values[0]), usages)


# --- who is asking ------------------------------------------------------------------------------

Credential = Callable[[HTTPConnection], str | None]


def bearer_credential(connection: HTTPConnection) -> str | None:
    """The token of ``Authorization: Bearer <token>``, unchecked (a digest of it keys the bucket)."""
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def address_bucket(ip: str) -> str:
    """What a per-address limit counts: the IPv4 address, or the /64 of an IPv6 one (one customer's
    whole network: each address alone would let them rotate through 2^64)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip[:64]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)  # ::ffff:1.2.3.4 (a dual-stack socket) is 1.2.3.4, not ::/64
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


# --- the middleware -----------------------------------------------------------------------------


class RateLimited(ServiceError):
    """Over a rate limit of the edge: come back after ``Retry-After`` seconds."""

    status = 429
    title = "Too Many Requests"
    type = QUOTA_EXCEEDED


class RateLimitMiddleware:
    """Pure ASGI, inside the request context (access log, request id, trace): checks the route
    group's buckets before routing and answers 429 itself; otherwise adds the RateLimit fields."""

    def __init__(self, app: ASGIApp, credential: Credential = bearer_credential) -> None:
        self.app = app
        self.credential = credential
        self._retry_at = 0.0  # Redis failed: not asked again before this (time.monotonic())
        self._warned_at = -math.inf

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        verdict = await self._verdict(scope) if scope["type"] == "http" else None
        if verdict is None:
            await self.app(scope, receive, send)
            return
        headers = verdict.headers()
        if not verdict.admitted:
            chassis_state(scope["app"]).edge.record("rate_limited")
            error = RateLimited(
                f"Too many requests: retry in {verdict.retry_after_s} s.",
                headers=headers,
                extras={"violated-policies": [u.policy for u in verdict.usages if not u.fits]},
            )
            response = problem_response(
                error.status, title=error.title, detail=error.detail, type=error.type,
                instance=scope["path"], headers=error.headers, **error.extras,
            )  # fmt: skip
            await response(scope, receive, send)
            return
        extra = [(name.lower().encode(), value.encode()) for name, value in headers.items()]

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_limits)

    async def _verdict(self, scope: Scope) -> Verdict | None:
        """None: nothing to check (off, exempt, no group, no key) or Redis unreachable."""
        path = scope["path"]
        state = chassis_state(scope["app"])
        current = state.live.current  # one snapshot for the whole check
        settings: RateLimitSettings = current.rate_limit
        if not settings.enabled or exempt(path):
            return None
        match = settings.group_for(scope["method"], path)
        if match is None:
            return None
        name, group = match
        base = f"{KEY_PREFIX}:{current.service_name}:{name}"
        checks: list[Check] = []
        if group.per_principal is not None and (credential := self.credential(HTTPConnection(scope))):
            digest = hashlib.sha256(credential.encode()).hexdigest()[:32]
            checks.append((f"{base}:p:{digest}", f"{name}-principal", group.per_principal))
        if group.per_ip is not None and (client := scope.get("client")):
            checks.append((f"{base}:ip:{address_bucket(client[0])}", f"{name}-ip", group.per_ip))
        if not checks or time.monotonic() < self._retry_at:
            return None
        if self._retry_at:  # Redis failed lately: this request alone asks it again, for a second
            self._retry_at = time.monotonic() + RETRY_REDIS_S
        try:
            with suppress_instrumentation():  # bookkeeping, not a step of the request's trace
                async with asyncio.timeout(CHECK_TIMEOUT_S):
                    verdict = await check_quotas(state.redis, checks)
            self._retry_at = 0.0
            return verdict
        except (RedisError, OSError, TimeoutError) as exc:
            now = time.monotonic()
            self._retry_at = now + RETRY_REDIS_S
            if now - self._warned_at >= WARN_EVERY_S:
                self._warned_at = now
                problem = f"slower than {CHECK_TIMEOUT_S:g} s" if isinstance(exc, TimeoutError) else repr(exc)
                log.warning("rate limits not checked, requests admitted: Redis unreachable (%s)", problem)
            return None


def install_rate_limit(app: FastAPI, *, credential: Credential = bearer_credential) -> None:
    """Limit a ``create_app`` app by its settings' ``rate_limit`` (a ``RateLimitSettings`` field).

    ``credential`` reads what identifies the principal (default: the bearer token). The middleware
    goes just inside ``RequestContextMiddleware``, so a 429 has its access-log line, request id and
    trace id; every limitable operation documents its 429."""
    if not isinstance(getattr(chassis_state(app).live.current, "rate_limit", None), RateLimitSettings):
        raise TypeError("install_rate_limit needs a settings class with a `rate_limit: RateLimitSettings`")
    stack = app.user_middleware
    context = next(i for i, entry in enumerate(stack) if cast(object, entry.cls) is RequestContextMiddleware)
    stack.insert(context + 1, Middleware(RateLimitMiddleware, credential=credential))
    _document_429(app)


_DOCUMENTED_HEADERS = {
    name: {"description": description, "schema": {"type": "string"}}
    for name, description in (
        ("Retry-After", "seconds to wait before trying again"),
        ("RateLimit-Policy", "the quota policies of the route group (draft-ietf-httpapi-ratelimit-headers)"),
        ("RateLimit", "requests left under each policy, and seconds until one more is allowed"),
    )
}


def _document_429(app: FastAPI) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        fresh = app.openapi_schema is None
        schema = build()  # cached by the chassis generator: changed here once
        if fresh:
            for path, operations in schema.get("paths", {}).items():
                if exempt(path):
                    continue
                for operation in operations.values():
                    answer = operation.setdefault("responses", {}).setdefault(
                        "429", {"description": "Too Many Requests (a rate limit of the edge)"}
                    )
                    answer["content"] = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
                    answer.setdefault("headers", {}).update(_DOCUMENTED_HEADERS)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
