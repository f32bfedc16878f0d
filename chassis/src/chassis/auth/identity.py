"""A service's own identity: OAuth2 client credentials, for calls a service makes as itself
(no end user: orders -> inventory)::

    InventoryDep = Annotated[Downstream, Depends(as_service("inventory"))]
    await inventory.request("POST", "/reservations", json=body)  # carries orders' own token
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Generator

import httpx
from fastapi import FastAPI, Request
from pydantic import Field, SecretStr

from chassis.auth.answers import answer_field
from chassis.auth.verification import AuthSettings
from chassis.errors import ServiceError
from chassis.http import Downstream, RenewableAuth
from chassis.state import chassis_state, resource

__all__ = [
    "ServiceClientSettings",
    "ServiceTokenAuth",
    "ServiceTokenProvider",
    "as_service",
    "service_downstream",
    "service_token_provider",
]

_log = logging.getLogger(__name__)


class ServiceCredentialsRefused(ServiceError):
    """auth-service refused this service's own client credentials: an operator must fix them;
    the call that needed the token cannot be made meanwhile."""

    status = 503
    title = "Service Unavailable"
    retry_after_s = 5

    def __init__(self) -> None:
        super().__init__("The authentication service refused this service's credentials.")


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
                    answer_field(response, "error") or "no error code",
                    client_id,
                )
                raise ServiceCredentialsRefused()
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

    @property
    def current(self) -> str:
        """The token last fetched (``token()`` fetches it first)."""
        if self._token is None:
            raise RuntimeError("no service token fetched yet: await token() first")
        return self._token

    def invalidate(self) -> None:
        """Fetch a new token on the next ``token()`` (the callee refused this one: key rotated,
        clock skew, ...). Calls already on their way keep sending the old one."""
        self._renew_at = float("-inf")


class ServiceTokenAuth(RenewableAuth):
    """``httpx.Auth`` that sends the service's own bearer token. Given to ``Downstream.with_auth``,
    which fetches it (``prepare``) before the callee's breaker and renews it once after a 401."""

    def __init__(self, tokens: ServiceTokenProvider) -> None:
        self.tokens = tokens

    async def prepare(self) -> None:
        await self.tokens.token()

    async def renew(self, refused: httpx.Request) -> None:
        # calls refused together renew once: only one that carried the current token drops it
        if refused.headers.get("authorization") == f"Bearer {self.tokens.current}":
            self.tokens.invalidate()
        await self.tokens.token()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["authorization"] = f"Bearer {self.tokens.current}"
        yield request


def service_token_provider(app: FastAPI) -> ServiceTokenProvider:
    """The app's ``ServiceTokenProvider`` resource, created on first use from the ``auth-service``
    downstream and the ``auth: ServiceClientSettings`` settings (tests may provide their own)."""
    state = chassis_state(app)

    def client_credentials() -> ServiceTokenProvider:
        auth = state.live.current.auth
        if not isinstance(auth, ServiceClientSettings):
            raise RuntimeError("service_token_provider needs settings field auth: ServiceClientSettings")
        return ServiceTokenProvider.client_credentials(
            downstream=state.downstreams["auth-service"],
            client_id=auth.client_id,
            client_secret=auth.client_secret.get_secret_value(),
            scope=auth.token_scope,
            margin_s=auth.token_refresh_margin_s,
        )

    return resource(app, ServiceTokenProvider, client_credentials)


def service_downstream(app: FastAPI, callee: str) -> Downstream:
    """The ``callee`` downstream with every call made as this service (its own token)."""
    downstream = chassis_state(app).downstreams[callee]
    return downstream.with_auth(ServiceTokenAuth(service_token_provider(app)))


def as_service(callee: str) -> Callable[[Request], Awaitable[Downstream]]:
    """``InventoryDep = Annotated[Downstream, Depends(as_service("inventory"))]``: calls to
    ``callee`` carry this service's own token, never the end user's."""

    async def get(request: Request) -> Downstream:
        return service_downstream(request.app, callee)

    get.__name__ = f"as_service_{callee}"
    return get
