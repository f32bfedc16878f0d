"""Verifying the access tokens auth-service issues: RS256 JWTs checked against its JWKS.

Domain services verify the token a gateway relays (``Authorization: Bearer``) themselves, so a
request that bypassed the gateway is refused too. The JWKS is fetched from auth-service through
the ``auth-service`` downstream (timeouts, breaker), cached, and fetched again when a token names
an unknown ``kid`` (key rotation), at most once per ``jwks_refetch_min_s`` so random kids cannot
hammer auth-service. Algorithms are pinned to RS256: ``alg: none`` and HS256 signed with the
public key are refused before any key is used.

Use::

    create_app(settings, downstreams={"auth-service": settings.auth_service_url, ...})

    @router.get("/orders")
    async def orders(user: CurrentUser) -> ...

    @router.put("/products/{id}", dependencies=[Depends(require_scope("catalog:write"))])

A service calling another one as itself (no end user: orders -> inventory) uses its own
client_credentials token (settings ``auth: ServiceClientSettings``)::

    headers = await service_token_provider(app).auth_header()
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
import jwt
import redis.asyncio as aioredis
from fastapi import Depends, FastAPI, Request, Security
from fastapi.security import HTTPBearer
from pydantic import BaseModel, Field, SecretStr
from redis.exceptions import RedisError

from chassis.context import user_var
from chassis.errors import ServiceError
from chassis.http import Downstream
from chassis.openapi import DocumentedScheme

_log = logging.getLogger(__name__)

__all__ = [
    "ALGORITHMS",
    "REVOCATION_CHANNEL",
    "AuthClientSettings",
    "AuthServiceClient",
    "AuthSettings",
    "BearerScheme",
    "CurrentUser",
    "Forbidden",
    "InvalidCredentials",
    "JwtVerifier",
    "LoginsBusy",
    "Principal",
    "ServiceClientSettings",
    "ServiceTokenProvider",
    "TokenSet",
    "Unauthorized",
    "auth_client_lifespan",
    "bearer_scheme",
    "bearer_token",
    "current_user",
    "listen_for_revocations",
    "require_scope",
    "service_token_provider",
]

# The only signature algorithm accepted anywhere on the platform.
ALGORITHMS = ["RS256"]
JWKS_PATH = "/.well-known/jwks.json"
# auth-service PUBLISHes the id (``sid``) of every session it ends here; gateways drop cached
# introspection answers of that session at once instead of waiting for their cache to expire.
REVOCATION_CHANNEL = "msa:auth:revoked"


class AuthSettings(BaseModel):
    """Who issues tokens and for whom; a service's ``auth`` settings field (``AUTH__ISSUER``, ...)."""

    issuer: str = Field("http://auth-service:8000", description="`iss` of every access token")
    audience: str = Field("msa-platform", description="`aud` of every access token")
    jwks_cache_s: float = Field(300.0, gt=0, description="how long fetched signing keys are trusted")
    jwks_refetch_min_s: float = Field(2.0, ge=0, description="least time between fetches for unknown kids")
    leeway_s: int = Field(10, ge=0, le=300, description="clock skew tolerated on exp/iat")


class Unauthorized(ServiceError):
    """No usable credentials: 401 with the RFC 6750 challenge."""

    status = 401
    title = "Unauthorized"

    def __init__(self, detail: str = "A valid access token is required.", *, error: str = "invalid_token"):
        challenge = f'Bearer error="{error}"' if error else "Bearer"
        super().__init__(detail, headers={"WWW-Authenticate": challenge})


class Forbidden(ServiceError):
    """Authenticated, but the token lacks a scope the operation needs."""

    status = 403
    title = "Forbidden"

    def __init__(self, missing: list[str]) -> None:
        scope = " ".join(missing)
        super().__init__(
            f"This operation needs the scope {scope!r}.",
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
            extras={"missing_scope": missing},
        )


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: what every protected route receives.

    ``access_token`` is kept so a service can relay it further (token relay); never log it.
    """

    sub: str
    scopes: frozenset[str]
    client_id: str | None = None
    sid: str | None = None
    exp: int | None = None
    access_token: str = field(default="", repr=False)

    @property
    def scope(self) -> str:
        return " ".join(sorted(self.scopes))

    def has_scope(self, *needed: str) -> bool:
        return all(item in self.scopes for item in needed)

    def auth_header(self) -> dict[str, str]:
        """``{"authorization": "Bearer ..."}`` for relaying the caller's token downstream."""
        return {"authorization": f"Bearer {self.access_token}"}

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any], token: str) -> Principal:
        return cls(
            sub=str(claims["sub"]),
            scopes=frozenset(str(claims.get("scope", "")).split()),
            client_id=claims.get("client_id"),
            sid=claims.get("sid"),
            exp=claims.get("exp"),
            access_token=token,
        )


JwksFetch = Callable[[], Awaitable[Mapping[str, Any]]]


class JwtVerifier:
    """Checks signature (RS256 only), ``kid``, ``iss``, ``aud``, ``exp``, ``iat`` and required claims."""

    def __init__(self, *, fetch_jwks: JwksFetch, settings: AuthSettings) -> None:
        self._fetch = fetch_jwks
        self.settings = settings
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("The access token is malformed.") from None
        if header.get("alg") not in ALGORITHMS:
            raise Unauthorized("The access token is not signed with RS256.")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("The access token names no signing key.")
        key = await self._key(kid)
        if key is None:
            raise Unauthorized("The access token is signed with an unknown key.")
        settings = self.settings
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.key,
                algorithms=ALGORITHMS,
                audience=settings.audience,
                issuer=settings.issuer,
                leeway=settings.leeway_s,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("The access token has expired.") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized("The access token is not meant for this platform.") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized("The access token comes from an unknown issuer.") from None
        except jwt.PyJWTError:
            raise Unauthorized("The access token is invalid.") from None
        return Principal.from_claims(claims, token)

    async def _key(self, kid: str) -> jwt.PyJWK | None:
        now = time.monotonic()
        if kid in self._keys and now - self._fetched_at < self.settings.jwks_cache_s:
            return self._keys[kid]
        async with self._lock:  # one fetch at a time; waiters reuse its result
            now = time.monotonic()
            fresh = now - self._fetched_at < self.settings.jwks_cache_s
            recently = now - self._fetched_at < self.settings.jwks_refetch_min_s
            if kid in self._keys and fresh:
                return self._keys[kid]
            if not recently:
                try:
                    self._keys = _parse_jwks(await self._fetch())
                except ServiceError:
                    # auth-service unreachable: keys we already trust stay usable; others cannot be checked
                    if kid in self._keys:
                        return self._keys[kid]
                    raise
                self._fetched_at = time.monotonic()
            return self._keys.get(kid)


def _parse_jwks(body: Mapping[str, Any]) -> dict[str, jwt.PyJWK]:
    keys: dict[str, jwt.PyJWK] = {}
    for entry in body.get("keys", []):
        if not isinstance(entry, Mapping) or entry.get("kty") != "RSA" or not entry.get("kid"):
            continue
        if entry.get("use", "sig") != "sig":
            continue
        try:
            keys[str(entry["kid"])] = jwt.PyJWK.from_dict(dict(entry), algorithm="RS256")
        except jwt.PyJWTError:
            continue  # one broken entry must not hide the others
    return keys


# The bearer scheme in every OpenAPI document (documentation only: ``bearer_token`` reads the
# header itself, so a missing or malformed one gets our own 401 problem+json).
bearer_scheme = DocumentedScheme(
    HTTPBearer(
        scheme_name="bearer",
        bearerFormat="JWT",
        description="an access token from auth-service: 'Authorization: Bearer <token>'",
    )
)
BearerScheme = Annotated[None, Security(bearer_scheme)]


def bearer_token(request: Request) -> str:
    """The token of ``Authorization: Bearer <token>``, or 401."""
    value = request.headers.get("authorization")
    if not value:
        raise Unauthorized("Send an access token as 'Authorization: Bearer <token>'.", error="")
    scheme, _, token = value.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 8192:
        raise Unauthorized("The Authorization header is not a bearer token.", error="invalid_request")
    return token


def _verifier(request: Request) -> JwtVerifier:
    state = request.app.state
    verifier: JwtVerifier | None = getattr(state, "jwt_verifier", None)
    if verifier is None:
        downstreams = getattr(state, "downstreams", {})
        if "auth-service" not in downstreams:
            raise RuntimeError(
                "chassis.auth needs the auth-service downstream: "
                "create_app(..., downstreams={'auth-service': settings.auth_service_url})"
            )
        client = downstreams["auth-service"]
        settings = getattr(state.live.current, "auth", None)
        verifier = JwtVerifier(
            fetch_jwks=lambda: client.get_json(JWKS_PATH),
            settings=settings if isinstance(settings, AuthSettings) else AuthSettings(),
        )
        state.jwt_verifier = verifier
    return verifier


async def current_user(request: Request, _documented: BearerScheme) -> Principal:
    """The verified caller; its ``sub`` goes into every log line of the request."""
    principal = await _verifier(request).verify(bearer_token(request))
    user_var.set(principal.sub)
    return principal


CurrentUser = Annotated[Principal, Depends(current_user)]


def require_scope(*needed: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that admits only callers holding every scope in ``needed`` (else 403)."""

    async def check(user: CurrentUser) -> Principal:
        missing = [item for item in needed if item not in user.scopes]
        if missing:
            raise Forbidden(missing)
        return user

    check.__name__ = "require_scope_" + "_".join(needed).replace(":", "_")
    return check


# --- A service's own identity: OAuth2 client credentials (service-to-service calls) ---


class ServiceClientSettings(AuthSettings):
    """A service's ``auth`` settings when it calls other services as itself (client_credentials):
    its confidential client at auth-service and the scope its tokens ask for."""

    client_id: str
    client_secret: SecretStr
    token_scope: str = Field("", description="scopes asked for (space-separated); empty: all allowed")
    token_refresh_margin_s: float = Field(
        60.0, ge=0, description="fetch a new token this long before the cached one expires"
    )


TokenFetch = Callable[[], Awaitable[tuple[str, float]]]


class ServiceTokenProvider:
    """The service's own access token, fetched by ``fetch`` (normally the client_credentials
    grant at auth-service), cached until ``margin_s`` before it expires; one fetch at a time,
    concurrent callers wait for it and share its token. Never log the token."""

    def __init__(self, *, fetch: TokenFetch, margin_s: float = 60.0) -> None:
        self._fetch = fetch
        self.margin_s = margin_s
        self._token: str | None = None
        self._renew_at = float("-inf")
        self._lock = asyncio.Lock()
        self.fetches = 0

    @classmethod
    def client_credentials(
        cls,
        *,
        downstream: Downstream,
        client_id: str,
        client_secret: str,
        scope: str = "",
        margin_s: float = 60.0,
    ) -> ServiceTokenProvider:
        async def fetch() -> tuple[str, float]:
            form = {"grant_type": "client_credentials"}
            if scope:
                form["scope"] = scope
            response = await downstream.request(
                "POST", "/oauth/token", data=form, auth=(client_id, client_secret)
            )
            if response.status_code != 200:
                # invalid_client / unauthorized_client: this service's credentials are wrong (operator)
                _log.error(
                    "auth-service answered %s (%s) to the client_credentials grant of %s",
                    response.status_code,
                    _oauth_error(response) or "no error code",
                    client_id,
                )
                raise ServiceError(
                    "The authentication service refused this service's credentials.",
                    status=503,
                    headers={"Retry-After": "5"},
                )
            body = response.json()
            return str(body["access_token"]), float(body["expires_in"])

        return cls(fetch=fetch, margin_s=margin_s)

    async def token(self) -> str:
        if self._token is not None and time.monotonic() < self._renew_at:
            return self._token
        async with self._lock:
            if self._token is not None and time.monotonic() < self._renew_at:
                return self._token  # fetched by the caller we waited for
            token, expires_in = await self._fetch()
            self.fetches += 1
            # a token shorter-lived than twice the margin is still reused for half its life
            self._renew_at = time.monotonic() + max(expires_in - self.margin_s, expires_in / 2)
            self._token = token
            return token

    async def auth_header(self) -> dict[str, str]:
        return {"authorization": f"Bearer {await self.token()}"}

    def invalidate(self) -> None:
        """Drop the cached token (the callee refused it: key rotated, clock skew, ...)."""
        self._token = None
        self._renew_at = float("-inf")


def service_token_provider(app: FastAPI) -> ServiceTokenProvider:
    """``app.state.service_tokens``, created on first use from the ``auth-service`` downstream
    and the ``auth: ServiceClientSettings`` settings (tests may install their own first)."""
    provider: ServiceTokenProvider | None = getattr(app.state, "service_tokens", None)
    if provider is None:
        auth = app.state.live.current.auth
        if not isinstance(auth, ServiceClientSettings):
            raise RuntimeError("service_token_provider needs settings field auth: ServiceClientSettings")
        provider = ServiceTokenProvider.client_credentials(
            downstream=app.state.downstreams["auth-service"],
            client_id=auth.client_id,
            client_secret=auth.client_secret.get_secret_value(),
            scope=auth.token_scope,
            margin_s=auth.token_refresh_margin_s,
        )
        app.state.service_tokens = provider
    return provider


# --- The gateways' side: delegating login, refresh, logout and token checks to auth-service ---


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
    max_body_bytes: int = Field(4096, ge=256)
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

    def __init__(self) -> None:
        super().__init__("Too many logins in progress: try again shortly.", headers={"Retry-After": "1"})


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
            principal = _principal(body, token) if usable else None
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
        error = _oauth_error(response)
        if response.status_code == 429:  # one of auth-service's login limits (its text says which)
            raise ServiceError(
                _problem_detail(response) or "Too many logins: try again later.",
                status=429,
                headers={"Retry-After": response.headers.get("retry-after", "60")},
            )
        if error == "invalid_grant":
            raise InvalidCredentials(invalid)
        if error == "invalid_request":
            raise ServiceError("The request is missing a required field.", status=400)
        raise self._unexpected(response)

    def _unexpected(self, response: httpx.Response) -> ServiceError:
        # invalid_client means this gateway's own credentials are wrong: an operator problem.
        _log.error(
            "auth-service answered %s (%s) to client %s",
            response.status_code,
            _oauth_error(response) or "no error code",
            self.client_id,
        )
        return ServiceError("The authentication service refused the gateway.", status=502)


def _problem_detail(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    detail = body.get("detail") if isinstance(body, Mapping) else None
    return str(detail)[:200] if detail else None


def _oauth_error(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, Mapping) else None
    return str(error) if error else None


def _principal(body: Mapping[str, Any], token: str) -> Principal:
    return Principal(
        sub=str(body.get("sub", "")),
        scopes=frozenset(str(body.get("scope", "")).split()),
        client_id=body.get("client_id"),
        sid=body.get("sid"),
        exp=body.get("exp"),
        access_token=token,
    )


async def listen_for_revocations(redis_url: str, client: AuthServiceClient) -> None:
    """Runs for the life of a gateway: drops cached checks of every session auth-service ends.

    While not subscribed (Redis down), ``client.subscribed`` is False and nothing is cached.
    """
    backoff = 0.5
    while True:
        connection = aioredis.Redis.from_url(redis_url, socket_connect_timeout=1.0, socket_timeout=None)
        try:
            async with connection.pubsub() as pubsub:
                await pubsub.subscribe(REVOCATION_CHANNEL)
                client.clear_cache()  # events may have been missed while unsubscribed
                client.subscribed = True
                backoff = 0.5
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
                    if message and message.get("type") == "message":
                        data = message["data"]
                        client.forget_session(data.decode() if isinstance(data, bytes) else str(data))
        except (RedisError, OSError) as exc:
            if client.subscribed:
                _log.warning("revocation channel lost (%s): token checks go uncached", type(exc).__name__)
            client.subscribed = False
            client.clear_cache()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
        finally:
            client.subscribed = False
            await connection.aclose()


@contextlib.asynccontextmanager
async def auth_client_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """A gateway's lifespan: ``app.state.auth_client`` (an ``AuthServiceClient`` over the
    ``auth-service`` downstream, settings ``auth: AuthClientSettings``) and its revocation
    listener, which is stopped on shutdown."""
    settings = app.state.live.current
    auth: AuthClientSettings = settings.auth
    app.state.auth_client = client = AuthServiceClient(
        downstream=app.state.downstreams["auth-service"],
        client_id=auth.client_id,
        client_secret=auth.client_secret.get_secret_value(),
        cache_s=auth.introspection_cache_s,
        login_concurrency=auth.login_concurrency,
        login_queue_s=auth.login_queue_s,
    )
    listener = asyncio.create_task(listen_for_revocations(settings.redis_url, client), name="revocations")
    try:
        yield
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
