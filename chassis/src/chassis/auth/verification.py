"""Verifying the access tokens auth-service issues, for every resource service: RS256 JWTs
checked against auth-service's JWKS, the caller as a ``Principal``, scope checks.

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
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request, Security
from fastapi.security import HTTPBearer
from pydantic import BaseModel, Field

from chassis.context import user_var
from chassis.errors import ServiceError
from chassis.openapi import DocumentedScheme
from chassis.state import chassis_state, resource

__all__ = [
    "ALGORITHMS",
    "JWKS_PATH",
    "AuthSettings",
    "BearerScheme",
    "CurrentUser",
    "Forbidden",
    "JwtVerifier",
    "Principal",
    "Unauthorized",
    "bearer_scheme",
    "bearer_token",
    "current_user",
    "require_scope",
]

# The only signature algorithm accepted anywhere on the platform.
ALGORITHMS = ["RS256"]
JWKS_PATH = "/.well-known/jwks.json"


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
        """From a verified JWT's claims or an active introspection answer (same names)."""
        return cls(
            sub=str(claims.get("sub", "")),
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
    state = chassis_state(request.app)

    def from_auth_service() -> JwtVerifier:
        if "auth-service" not in state.downstreams:
            raise RuntimeError(
                "chassis.auth needs the auth-service downstream: "
                "create_app(..., downstreams={'auth-service': settings.auth_service_url})"
            )
        client = state.downstreams["auth-service"]
        settings = getattr(state.live.current, "auth", None)
        return JwtVerifier(
            fetch_jwks=lambda: client.get_json(JWKS_PATH),
            settings=settings if isinstance(settings, AuthSettings) else AuthSettings(),
        )

    return resource(request.app, JwtVerifier, from_auth_service)


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
