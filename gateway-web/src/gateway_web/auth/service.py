"""Browser login over a server-side session: tokens stay in Redis, the browser holds a cookie.

Every protected request: session cookie -> tokens in Redis -> refreshed near expiry (one process
at a time) -> checked by auth-service introspection (cached, see ``AuthServiceClient``) -> the
caller as a ``Principal`` whose ``access_token`` routes relay downstream as a bearer token.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from typing import Annotated

from fastapi import Request, Response, Security
from fastapi.security import APIKeyCookie, APIKeyHeader

from chassis import DownstreamUnavailable, ServiceError
from chassis.auth import AuthServiceClient, InvalidCredentials, LoginsBusy, Principal, Unauthorized
from chassis.context import user_var
from chassis.openapi import DocumentedScheme
from chassis.state import chassis_state, resource
from gateway_web.auth.repository import SessionRecord, SessionRepository, SessionStoreUnavailable, new_secret
from gateway_web.auth.schemas import LoginRequest, LoginResponse, Me
from gateway_web.auth.settings import WebAuthSettings

__all__ = ["CSRF_PROBLEM", "login", "logout", "session_user", "session_writer"]

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# The problem type of a write refused for its CSRF token (a 403 of another kind has another type).
CSRF_PROBLEM = "urn:msa-platform:problem:csrf-token"


# How the OpenAPI document shows the session (with the default names). Documentation only: the
# dependencies below read the cookie and the header themselves, to answer our own problem+json.
_DEFAULTS = WebAuthSettings.model_fields
SessionCookie = Annotated[
    None,
    Security(
        DocumentedScheme(
            APIKeyCookie(
                name=_DEFAULTS["cookie_name"].default,
                scheme_name="session",
                description="the HttpOnly session cookie set by POST /auth/login",
            )
        )
    ),
]
CsrfHeader = Annotated[
    None,
    Security(
        DocumentedScheme(
            APIKeyHeader(
                name=_DEFAULTS["csrf_header"].default,
                scheme_name="csrf",
                description="the session's CSRF token (login answer, msa_csrf cookie), on every write",
            )
        )
    ),
]


class CsrfRejected(ServiceError):
    status = 403
    title = "Forbidden"
    type = CSRF_PROBLEM  # the storefront tells this 403 from others: it re-reads its session

    def __init__(self, header: str) -> None:
        super().__init__(f"Send the CSRF token of this session in the {header} header.")


class RefreshInProgress(ServiceError):
    """Another replica is refreshing this session and did not finish in time."""

    status = 503
    title = "Service Unavailable"
    retry_after_s = 1


def _settings(request: Request) -> WebAuthSettings:
    settings: WebAuthSettings = chassis_state(request.app).live.current.auth
    return settings


def _client(request: Request) -> AuthServiceClient:
    return resource(request.app, AuthServiceClient)


def _repository(request: Request) -> SessionRepository:
    return SessionRepository(chassis_state(request.app).redis)


async def login(*, request: Request, response: Response, credentials: LoginRequest) -> LoginResponse:
    settings = _settings(request)
    client, repository = _client(request), _repository(request)
    tokens = await client.password_grant(
        username=credentials.username,
        password=credentials.password,
        client_ip=request.client.host if request.client else None,
    )
    principal = await client.introspect(tokens.access_token)
    record = SessionRecord(
        sub=principal.sub,
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        access_expires_at=int(time.time()) + tokens.expires_in,
        csrf_token=new_secret(),
        scope=tokens.scope,
    )
    session_id = new_secret()  # always a new id: a cookie planted before login is worthless
    try:
        await repository.put(session_id, record, ttl_s=settings.session_ttl_s)
        if (previous := request.cookies.get(settings.cookie_name)) and (
            old := await repository.get(previous)
        ):
            await repository.delete(previous)  # a new login replaces the browser's old session
            await _revoke_quietly(client, old.refresh_token)
    except SessionStoreUnavailable:
        await _revoke_quietly(client, tokens.refresh_token)
        raise
    _set_cookies(response, settings, session_id, record.csrf_token)
    user_var.set(principal.sub)
    log.info("web session started for %s", principal.sub)
    return LoginResponse(user=_me(principal), csrf_token=record.csrf_token)


async def logout(*, request: Request, response: Response) -> None:
    settings = _settings(request)
    session_id = request.cookies.get(settings.cookie_name)
    _clear_cookies(response, settings)
    if not session_id:
        return
    repository = _repository(request)
    record = await repository.get(session_id)
    if record is None:
        return
    _check_csrf(request, settings, record)
    # auth-service first: if it cannot end the session now, the browser keeps it and may retry.
    await _client(request).revoke(record.refresh_token)
    await repository.delete(session_id)
    user_var.set(record.sub)
    log.info("web session ended for %s", record.sub)


async def session_user(request: Request, _documented: SessionCookie) -> Principal:
    """The dependency behind ``SessionUser``: 401 without a live session, 403 on a CSRF mismatch
    (unsafe methods: checked here whichever of the two dependencies a route uses)."""
    settings = _settings(request)
    session_id = request.cookies.get(settings.cookie_name)
    if not session_id or len(session_id) > 128:
        raise Unauthorized("Log in first (POST /auth/login).", error="")
    repository = _repository(request)
    record = await repository.get(session_id)
    if record is None:
        raise Unauthorized("The session has ended; log in again.")
    _check_csrf(request, settings, record)
    if record.access_expires_at - time.time() <= settings.refresh_margin_s:
        record = await _refresh(repository, _client(request), session_id, record, settings)
    try:
        principal = await _client(request).introspect(record.access_token)
    except Unauthorized:
        await repository.delete(session_id)
        raise Unauthorized("The session has ended; log in again.") from None
    await repository.touch(session_id, ttl_s=settings.session_ttl_s)
    user_var.set(principal.sub)
    return principal


async def session_writer(request: Request, _documented: CsrfHeader) -> Principal:
    """The dependency behind ``SessionWriter`` (routes that change something): ``session_user``,
    documented with the CSRF header it then requires."""
    return await session_user(request, None)


def me(principal: Principal) -> Me:
    return _me(principal)


async def _refresh(
    repository: SessionRepository,
    client: AuthServiceClient,
    session_id: str,
    record: SessionRecord,
    settings: WebAuthSettings,
) -> SessionRecord:
    async with repository.refresh_lock(session_id) as mine:
        if mine:
            latest = await repository.get(session_id)
            if latest is None:
                raise Unauthorized("The session has ended; log in again.")
            if latest.access_expires_at - time.time() > settings.refresh_margin_s:
                return latest  # another process refreshed it a moment ago
            try:
                tokens = await client.refresh(latest.refresh_token)
            except InvalidCredentials:
                await repository.delete(session_id)
                raise Unauthorized("The session has ended; log in again.") from None
            except (LoginsBusy, DownstreamUnavailable):
                # logins are flooded or auth-service is out: the access token still valid serves
                # this request, and a later one refreshes it
                if latest.access_expires_at > time.time():
                    return latest
                raise
            latest.access_token, latest.refresh_token = tokens.access_token, tokens.refresh_token
            latest.access_expires_at = int(time.time()) + tokens.expires_in
            latest.scope = tokens.scope
            await repository.put(session_id, latest, ttl_s=settings.session_ttl_s)
            return latest
    for _ in range(30):  # another process holds the lock: wait for its result (bounded)
        await asyncio.sleep(0.1)
        latest = await repository.get(session_id)
        if latest is None:
            raise Unauthorized("The session has ended; log in again.")
        if latest.access_token != record.access_token:
            return latest
    if record.access_expires_at > time.time():
        return record
    raise RefreshInProgress("The session is being refreshed; retry.")


def _check_csrf(request: Request, settings: WebAuthSettings, record: SessionRecord) -> None:
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get(settings.csrf_header, "")
    if not sent or not hmac.compare_digest(sent.encode(), record.csrf_token.encode()):
        raise CsrfRejected(settings.csrf_header)


def _set_cookies(response: Response, settings: WebAuthSettings, session_id: str, csrf: str) -> None:
    # the CSRF cookie is readable by the page's script, which echoes it in the X-CSRF-Token header
    for name, value, httponly in (
        (settings.cookie_name, session_id, True),
        (settings.csrf_cookie_name, csrf, False),
    ):
        response.set_cookie(
            name,
            value,
            max_age=settings.session_ttl_s,
            path="/",
            secure=settings.cookie_secure,
            httponly=httponly,
            samesite="lax",
        )


def _clear_cookies(response: Response, settings: WebAuthSettings) -> None:
    for name, httponly in ((settings.cookie_name, True), (settings.csrf_cookie_name, False)):
        response.delete_cookie(
            name, path="/", secure=settings.cookie_secure, httponly=httponly, samesite="lax"
        )


async def _revoke_quietly(client: AuthServiceClient, refresh_token: str) -> None:
    try:
        await client.revoke(refresh_token)
    except ServiceError:
        log.warning("could not revoke the tokens of a login whose session was not stored")


def _me(principal: Principal) -> Me:
    return Me(
        sub=principal.sub, scope=principal.scope, client_id=principal.client_id, expires_at=principal.exp
    )
