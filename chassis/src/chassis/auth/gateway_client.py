"""The gateways' side: delegating login, refresh, logout and token checks to auth-service, and
the revocation listener that keeps their cache of token checks honest."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI
from pydantic import Field, SecretStr

from chassis.auth.answers import answer_field
from chassis.auth.verification import AuthSettings, Forbidden, Principal, Unauthorized
from chassis.errors import ServiceError
from chassis.http import Downstream
from chassis.pubsub import subscribe_forever
from chassis.state import chassis_state, provide

__all__ = [
    "REVOCATION_CHANNEL",
    "AuthClientSettings",
    "AuthServiceClient",
    "InvalidCredentials",
    "LoginsBusy",
    "TokenSet",
    "auth_client_lifespan",
    "listen_for_revocations",
]

_log = logging.getLogger(__name__)

# auth-service PUBLISHes the id (``sid``) of every session it ends here; gateways drop cached
# introspection answers of that session at once instead of waiting for their cache to expire.
REVOCATION_CHANNEL = "msa:auth:revoked"


@dataclass(frozen=True)
class TokenSet:
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: int
    scope: str


class AuthClientSettings(AuthSettings):
    """A gateway's ``auth`` settings: its OAuth client at auth-service and the token-check cache.
    Each gateway subclasses it with its own client's defaults (and whatever else it needs)."""

    client_id: str
    client_secret: SecretStr
    introspection_cache_s: float = Field(
        5.0, ge=0, le=60, description="see AuthServiceClient: revocation delay"
    )
    login_concurrency: int = Field(
        8,
        ge=1,
        le=1000,
        description="login and refresh grants in flight to auth-service at once, per process",
    )
    login_queue_s: float = Field(
        0.5, ge=0, le=10, description="how long a grant waits for one of those before 429 (read at start)"
    )


class LoginsBusy(ServiceError):
    """Every login slot of this gateway process is taken: shed the request rather than queue it."""

    status = 429
    title = "Too Many Requests"
    retry_after_s = 1

    def __init__(self) -> None:
        super().__init__("Too many logins in progress: try again shortly.")


class _Bulkhead:
    """At most ``limit`` calls at once; a caller waits at most ``wait_s`` for its turn, then
    ``LoginsBusy``. Bounded waiting keeps a flood from piling up requests (and memory) here."""

    def __init__(self, limit: int, wait_s: float) -> None:
        self.limit, self.wait_s = limit, wait_s
        self._slots = asyncio.Semaphore(limit)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self.wait_s):
                await self._slots.acquire()
        except TimeoutError:
            raise LoginsBusy() from None
        try:
            yield
        finally:
            self._slots.release()


class InvalidCredentials(ServiceError):
    status = 401
    title = "Unauthorized"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer error="invalid_grant"'})


class TooManyLogins(ServiceError):
    """One of auth-service's login limits refused the login; its text and Retry-After relayed."""

    status = 429
    title = "Too Many Requests"


class IncompleteLogin(ServiceError):
    status = 400
    title = "Bad Request"


class GatewayRefused(ServiceError):
    """auth-service refused this gateway's own client credentials: an operator problem."""

    status = 502
    title = "Bad Gateway"


class AuthServiceClient:
    """Calls auth-service as one OAuth client (``web``, ``mobile``) through the chassis Downstream,
    so an auth-service outage is a quick 503 problem+json (breaker, timeout), never a hang.

    Grants (login, refresh) go through a breaker of their own, ``<gateway>->auth-service/login``,
    and at most ``login_concurrency`` at once (a grant waits ``login_queue_s`` for a turn, then
    429): a login flood that makes auth-service slow or refuse opens the login circuit only, and
    token checks and logouts keep their own (``<gateway>->auth-service``).

    Access-token checks are cached for ``cache_s`` per token, but only while the revocation
    channel is subscribed (``listen_for_revocations``): a revoked session is then dropped from
    the cache the moment auth-service announces it, and without the channel every check asks
    auth-service. Revocation delay: the time the announcement takes (milliseconds); when an
    announcement is lost while the subscription looks healthy, at most ``cache_s``.
    """

    def __init__(
        self,
        *,
        downstream: Downstream,
        client_id: str,
        client_secret: str,
        cache_s: float,
        max_entries: int = 10_000,
        login_concurrency: int = 8,
        login_queue_s: float = 0.5,
    ) -> None:
        self._ds = downstream
        self._grants = downstream.with_breaker("login")
        self._login_slots = _Bulkhead(login_concurrency, login_queue_s)
        self._auth = (client_id, client_secret)
        self.client_id = client_id
        self.cache_s = cache_s
        self._max_entries = max_entries
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self.subscribed = False

    async def password_grant(self, *, username: str, password: str, client_ip: str | None) -> TokenSet:
        headers = {"x-forwarded-for": client_ip} if client_ip else {}
        form = {"grant_type": "password", "username": username, "password": password}
        return await self._grant(form, headers, "Invalid username or password.")

    async def refresh(self, refresh_token: str) -> TokenSet:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return await self._grant(form, {}, "The refresh token is invalid, expired or already used.")

    async def revoke(self, token: str, *, hint: str = "refresh_token") -> None:
        response = await self._ds.request(
            "POST", "/oauth/revoke", data={"token": token, "token_type_hint": hint}, auth=self._auth
        )
        if response.status_code >= 400:
            raise self._unexpected(response)

    async def introspect(self, token: str, *, required_scope: tuple[str, ...] = ()) -> Principal:
        """The active token's principal; 401 when inactive, 403 when a required scope is missing."""
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        cached = self._cache.get(key) if self.subscribed else None
        if cached is not None and cached[0] > now:
            principal = cached[1]
        else:
            form = {"token": token, "token_type_hint": "access_token"}
            if required_scope:
                form["required_scope"] = " ".join(required_scope)
            response = await self._ds.request("POST", "/oauth/introspect", data=form, auth=self._auth)
            if response.status_code != 200:
                raise self._unexpected(response)
            body = response.json()
            # a refresh token is active too, but it is no access token: never accept it as one
            usable = body.get("active") is True and body.get("token_type") != "refresh_token"
            principal = Principal.from_claims(body, token) if usable else None
            self._remember(key, principal, body.get("exp"))
        if principal is None:
            raise Unauthorized("The access token is not active (expired, revoked or invalid).")
        missing = [item for item in required_scope if item not in principal.scopes]
        if missing:
            raise Forbidden(missing)
        return principal

    def forget_session(self, sid: str) -> int:
        doomed = [key for key, (_, p) in self._cache.items() if p is not None and p.sid == sid]
        for key in doomed:
            del self._cache[key]
        return len(doomed)

    def clear_cache(self) -> None:
        self._cache.clear()

    def _remember(self, key: str, principal: Principal | None, exp: Any) -> None:
        if self.cache_s <= 0:
            return
        ttl = self.cache_s
        if isinstance(exp, int):
            ttl = min(ttl, exp - time.time())
        if ttl <= 0:
            return
        if len(self._cache) >= self._max_entries:  # drop the oldest entries (dicts keep insertion order)
            for old in list(self._cache)[: self._max_entries // 10 or 1]:
                del self._cache[old]
        self._cache[key] = (time.monotonic() + ttl, principal)

    async def _grant(self, form: dict[str, str], headers: dict[str, str], invalid: str) -> TokenSet:
        async with self._login_slots.slot():
            response = await self._grants.request(
                "POST", "/oauth/token", data=form, headers=headers, auth=self._auth
            )
        if response.status_code == 200:
            body = response.json()
            return TokenSet(
                access_token=body["access_token"],
                refresh_token=body["refresh_token"],
                expires_in=int(body["expires_in"]),
                scope=body.get("scope", ""),
            )
        error = answer_field(response, "error")
        if response.status_code == 429:  # one of auth-service's login limits (its text says which)
            raise TooManyLogins(
                answer_field(response, "detail") or "Too many logins: try again later.",
                headers={"Retry-After": response.headers.get("retry-after", "60")},
            )
        if error == "invalid_grant":
            raise InvalidCredentials(invalid)
        if error == "invalid_request":
            raise IncompleteLogin("The request is missing a required field.")
        raise self._unexpected(response)

    def _unexpected(self, response: httpx.Response) -> ServiceError:
        # invalid_client means this gateway's own credentials are wrong: an operator problem.
        _log.error(
            "auth-service answered %s (%s) to client %s",
            response.status_code,
            answer_field(response, "error") or "no error code",
            self.client_id,
        )
        return GatewayRefused("The authentication service refused the gateway.")


async def listen_for_revocations(redis_url: str, client: AuthServiceClient) -> None:
    """Runs for the life of a gateway: drops cached checks of every session auth-service ends.

    While not subscribed (Redis down), ``client.subscribed`` is False and nothing is cached.
    """

    async def subscribed(again: bool) -> None:
        client.clear_cache()  # events may have been missed while unsubscribed
        client.subscribed = True

    async def lost(exc: Exception) -> None:
        client.subscribed = False
        client.clear_cache()

    async def revoked(channel: str, sid: bytes) -> None:
        client.forget_session(sid.decode(errors="replace"))

    try:
        await subscribe_forever(
            "revocation (token checks uncached meanwhile)",
            redis_url,
            [REVOCATION_CHANNEL],
            on_message=revoked,
            on_subscribed=subscribed,
            on_lost=lost,
            idle_s=5.0,
        )
    finally:
        client.subscribed = False


@contextlib.asynccontextmanager
async def auth_client_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """A gateway's lifespan: the app's ``AuthServiceClient`` resource (over the
    ``auth-service`` downstream, settings ``auth: AuthClientSettings``) and its revocation
    listener, which is stopped on shutdown."""
    state = chassis_state(app)
    settings = state.live.current
    auth: AuthClientSettings = settings.auth
    client = AuthServiceClient(
        downstream=state.downstreams["auth-service"],
        client_id=auth.client_id,
        client_secret=auth.client_secret.get_secret_value(),
        cache_s=auth.introspection_cache_s,
        login_concurrency=auth.login_concurrency,
        login_queue_s=auth.login_queue_s,
    )
    provide(app, client)
    listener = asyncio.create_task(listen_for_revocations(settings.redis_url, client), name="revocations")
    try:
        yield
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
