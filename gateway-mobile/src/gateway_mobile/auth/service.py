"""Mobile apps hold their tokens; the gateway relays login/refresh/logout to auth-service as client
``mobile`` and checks every bearer token by introspection (cached, see ``AuthServiceClient``)."""

from __future__ import annotations

from fastapi import Request

from chassis import ServiceError
from chassis.auth import AuthServiceClient, BearerScheme, Principal, TokenSet, bearer_token
from chassis.context import user_var
from chassis.state import resource
from gateway_mobile.auth.schemas import LogoutRequest, Me, RefreshRequest, TokenRequest, TokenResponse

__all__ = ["bearer_user", "issue", "logout", "me", "refresh"]


def _client(request: Request) -> AuthServiceClient:
    return resource(request.app, AuthServiceClient)


async def issue(*, request: Request, body: TokenRequest) -> TokenResponse:
    tokens = await _client(request).password_grant(
        username=body.username,
        password=body.password,
        client_ip=request.client.host if request.client else None,
    )
    user_var.set(body.username)
    return _response(tokens)


async def refresh(*, request: Request, body: RefreshRequest) -> TokenResponse:
    return _response(await _client(request).refresh(body.refresh_token))


class NothingToRevoke(ServiceError):
    status = 400
    title = "Bad Request"


async def logout(*, request: Request, body: LogoutRequest | None) -> None:
    """Ends the session of the refresh token in the body, or else of the bearer token."""
    if body is not None and body.refresh_token:
        await _client(request).revoke(body.refresh_token, hint="refresh_token")
        return
    if request.headers.get("authorization"):
        await _client(request).revoke(bearer_token(request), hint="access_token")
        return
    raise NothingToRevoke("Send the refresh token in the body or the access token as a bearer token.")


async def bearer_user(request: Request, _documented: BearerScheme) -> Principal:
    """The dependency behind ``BearerUser``: 401 unless the bearer token is active at auth-service."""
    principal = await _client(request).introspect(bearer_token(request))
    user_var.set(principal.sub)
    return principal


def me(principal: Principal) -> Me:
    return Me(sub=principal.sub, scope=principal.scope, exp=principal.exp)


def _response(tokens: TokenSet) -> TokenResponse:
    return TokenResponse(
        access_token=tokens.access_token,
        expires_in=tokens.expires_in,
        refresh_token=tokens.refresh_token,
        scope=tokens.scope,
    )
