"""The OAuth flows: password, refresh-token and client-credentials grants, introspection, revocation.

User clients (the gateways: ``web``, ``mobile``) may use the password and refresh-token grants;
service clients (``settings.service_client_scopes``, e.g. ``orders``) only client_credentials.
A service token has ``sub`` = ``service:<client id>``, ``client_id``, ``scope`` and no ``sid``:
it belongs to no login session, so there is no refresh token and nothing to revoke; it is
active while it verifies (15 min at most) and its client is still configured."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Mapping
from typing import Any

from auth_service.oauth.errors import (
    InvalidGrant,
    InvalidRequest,
    OAuthError,
    TooManyAttempts,
    UnauthorizedClient,
    UnsupportedGrant,
)
from auth_service.oauth.repository import LoginLimits, Session, SessionStore
from auth_service.oauth.schemas import IntrospectionResponse, TokenResponse
from auth_service.oauth.tokens import (
    decode_access_token,
    issue_access_token,
    new_refresh_token,
    new_session_id,
)
from auth_service.settings import Settings
from auth_service.signing.keyring import KeyRing
from auth_service.users.service import HashingBusy, PasswordChecker, authenticate, scopes_of
from chassis.context import user_var
from chassis.ratelimit import address_bucket

__all__ = ["SERVICE_SUB_PREFIX", "grant", "introspect", "is_service_token", "revoke"]

SERVICE_SUB_PREFIX = "service:"

log = logging.getLogger(__name__)


class InvalidScope(OAuthError):
    error = "invalid_scope"


async def grant(
    *,
    settings: Settings,
    store: SessionStore,
    keyring: KeyRing,
    checker: PasswordChecker,
    client_id: str,
    form: dict[str, str],
    ip: str,
) -> TokenResponse:
    grant_type = form.get("grant_type", "")
    service_client = client_id in settings.service_client_scopes
    if grant_type == "client_credentials":
        if not service_client:
            raise UnauthorizedClient("This client may not use grant_type=client_credentials.")
        return _client_credentials(settings=settings, keyring=keyring, client_id=client_id, form=form)
    if service_client and grant_type in ("password", "refresh_token"):
        raise UnauthorizedClient("A service client may only use grant_type=client_credentials.")
    if grant_type == "password":
        return await _password(
            settings=settings,
            store=store,
            keyring=keyring,
            checker=checker,
            client_id=client_id,
            form=form,
            ip=ip,
        )
    if grant_type == "refresh_token":
        return await _refresh(settings=settings, store=store, keyring=keyring, client_id=client_id, form=form)
    raise UnsupportedGrant("Use grant_type=password, refresh_token or client_credentials.")


def _client_credentials(
    *, settings: Settings, keyring: KeyRing, client_id: str, form: dict[str, str]
) -> TokenResponse:
    allowed = settings.service_client_scopes[client_id]
    requested = form.get("scope", "").split()
    scopes = [s for s in allowed if s in requested] if requested else list(allowed)
    if requested and not scopes:
        raise InvalidScope("None of the requested scopes is granted to this client.")
    scope = " ".join(scopes)
    access = issue_access_token(
        keyring=keyring,
        auth=settings.auth,
        ttl_s=settings.access_token_ttl_s,
        sub=SERVICE_SUB_PREFIX + client_id,
        sid=None,
        scope=scope,
        client_id=client_id,
        role=None,
    )
    user_var.set(SERVICE_SUB_PREFIX + client_id)
    log.info("service token issued to %s (scope %s)", client_id, scope)
    return TokenResponse(access_token=access, expires_in=settings.access_token_ttl_s, scope=scope)


def is_service_token(claims: Mapping[str, Any], settings: Settings) -> bool:
    """A client_credentials token of a service client that is still configured."""
    client_id = claims.get("client_id")
    return (
        "sid" not in claims
        and isinstance(client_id, str)
        and client_id in settings.service_client_scopes
        and claims.get("sub") == SERVICE_SUB_PREFIX + client_id
    )


# What a refused login is told, per limit (the Retry-After header says when to come back).
_REFUSALS = {
    "user": "Too many failed logins for this user from this address: try again later.",
    "ip": "Too many failed logins from this address: try again later.",
    "global": "Too many logins right now: try again shortly.",
}

# Keys the username hashes in the logs: a password typed into the username field cannot be found
# again by hashing guesses. Per process, so hashes match within one replica's lifetime only.
_LOG_KEY = secrets.token_bytes(16)


def loggable_username(username: str, settings: Settings) -> str:
    """A configured user's name as is; anything else typed is attacker text (or a password typed
    in the wrong field): a short keyed hash, so repeated attempts still show as one name."""
    if any(u.username == username for u in settings.users):
        return username
    return "unknown#" + hmac.new(_LOG_KEY, username.encode(), hashlib.sha256).hexdigest()[:10]


def _limits(settings: Settings) -> LoginLimits:
    return LoginLimits(
        user_max=settings.login_max_failures,
        user_window_s=settings.login_lockout_s,
        ip_max=settings.login_ip_max_failures,
        ip_window_s=settings.login_ip_window_s,
        global_max=settings.login_global_max_attempts,
        global_window_s=settings.login_global_window_s,
    )


async def _password(
    *,
    settings: Settings,
    store: SessionStore,
    keyring: KeyRing,
    checker: PasswordChecker,
    client_id: str,
    form: dict[str, str],
    ip: str,
) -> TokenResponse:
    username, password = form.get("username", ""), form.get("password", "")
    if not username or not password or len(username) > 64 or len(password) > 256:
        raise InvalidRequest("username and password are required.")
    who, address = loggable_username(username, settings), address_bucket(ip)
    user_key = hashlib.sha256(f"{username.lower()}\n{address}".encode()).hexdigest()[:40]
    limits = _limits(settings)
    admission = await store.admit_login(user_key=user_key, address=address, limits=limits)
    if admission.limit is not None:
        # a global window overflowing is news once; each refusal after a limit was reached is not
        first = admission.global_attempts == limits.global_max + 1
        log.log(
            logging.WARNING if first else logging.DEBUG,
            "login of %s from %s refused: %s limit, %ss left",
            who,
            ip,
            admission.limit,
            admission.retry_after_s,
        )
        raise TooManyAttempts(admission.retry_after_s, _REFUSALS[admission.limit])
    try:
        user = await authenticate(settings=settings, checker=checker, username=username, password=password)
    except HashingBusy:
        await store.settle_login(user_key=user_key, address=address, checked=False)
        log.info("login of %s from %s refused: no password-check slot free in time", who, ip)
        raise TooManyAttempts(1, "Too many logins at once: try again shortly.") from None
    if user is None:
        log.info("login failed for %s from %s", who, ip)
        if admission.user_failures == limits.user_max:
            log.warning("logins of %s from %s locked for %ss", who, ip, limits.user_window_s)
        if admission.address_failures == limits.ip_max:
            log.warning("logins from %s locked for %ss (any user)", ip, limits.ip_window_s)
        raise InvalidGrant("Invalid username or password.")
    await store.settle_login(user_key=user_key, address=address, checked=True)
    allowed = scopes_of(settings=settings, user=user)
    requested = form.get("scope", "").split()
    scopes = [s for s in allowed if s in requested] if requested else allowed
    if requested and not scopes:
        raise InvalidScope("None of the requested scopes is granted to this user.")
    session = Session(new_session_id(), user.username, client_id, " ".join(scopes), user.role)
    refresh_token = new_refresh_token()
    await store.create(
        session=session,
        refresh_token=refresh_token,
        refresh_ttl_s=min(settings.refresh_token_ttl_s, settings.session_max_s),
        session_ttl_s=settings.session_max_s,
    )
    user_var.set(user.username)
    log.info("login of %s via %s: session %s", user.username, client_id, session.sid)
    return _tokens(settings, keyring, session, refresh_token)


async def _refresh(
    *, settings: Settings, store: SessionStore, keyring: KeyRing, client_id: str, form: dict[str, str]
) -> TokenResponse:
    presented = form.get("refresh_token", "")
    if not presented or len(presented) > 512:
        raise InvalidRequest("refresh_token is required.")
    found = await store.refresh_sid(presented)
    if found is None:
        raise InvalidGrant("The refresh token is invalid or expired.")
    sid, _ = found
    session = await store.get(sid)
    if session is None:
        raise InvalidGrant("The session of this refresh token has ended.")
    if session.client_id != client_id:
        raise InvalidGrant("The refresh token was issued to another client.")
    new_token = new_refresh_token()
    outcome = await store.rotate(
        sid=sid, old=presented, new=new_token, refresh_ttl_s=settings.refresh_token_ttl_s
    )
    if outcome == "reuse":
        log.warning("refresh token of session %s (%s) used twice: session revoked", sid, session.sub)
        raise InvalidGrant("The refresh token was already used; the session is revoked.")
    if outcome != "ok":
        raise InvalidGrant("The session of this refresh token has ended.")
    user_var.set(session.sub)
    return _tokens(settings, keyring, session, new_token)


def _tokens(settings: Settings, keyring: KeyRing, session: Session, refresh_token: str) -> TokenResponse:
    access = issue_access_token(
        keyring=keyring,
        auth=settings.auth,
        ttl_s=settings.access_token_ttl_s,
        sub=session.sub,
        sid=session.sid,
        scope=session.scope,
        client_id=session.client_id,
        role=session.role,
    )
    return TokenResponse(
        access_token=access,
        expires_in=settings.access_token_ttl_s,
        refresh_token=refresh_token,
        scope=session.scope,
    )


async def introspect(
    *, settings: Settings, store: SessionStore, keyring: KeyRing, client_id: str, form: dict[str, str]
) -> IntrospectionResponse:
    token = form.get("token", "")
    if not token:
        raise InvalidRequest("token is required.")
    if len(token) > 8192:
        return IntrospectionResponse(active=False)
    hint = form.get("token_type_hint", "access_token")
    if hint == "refresh_token" or token.count(".") != 2:
        return await _introspect_refresh(store=store, token=token, client_id=client_id)
    claims = decode_access_token(token, keyring=keyring, auth=settings.auth)
    if claims is None:
        return IntrospectionResponse(active=False)
    if "sid" in claims:
        if not await store.exists(str(claims["sid"])):
            return IntrospectionResponse(active=False)
    elif not is_service_token(claims, settings):  # no session and no service client: never active
        return IntrospectionResponse(active=False)
    answer = IntrospectionResponse(
        active=True,
        sub=claims["sub"],
        scope=claims.get("scope", ""),
        client_id=claims.get("client_id"),
        exp=claims["exp"],
        iat=claims["iat"],
        sid=claims.get("sid"),
        iss=claims["iss"],
        aud=settings.auth.audience,
        token_type="Bearer",
        role=claims.get("role"),
    )
    if required := form.get("required_scope", "").split():
        granted = set(str(answer.scope).split())
        missing = [s for s in required if s not in granted]
        answer.authorized, answer.missing_scope = not missing, missing
    return answer


async def _introspect_refresh(*, store: SessionStore, token: str, client_id: str) -> IntrospectionResponse:
    found = await store.refresh_sid(token)
    if found is None or found[1]:
        return IntrospectionResponse(active=False)
    session = await store.get(found[0])
    if session is None or session.client_id != client_id:  # only its own client may ask
        return IntrospectionResponse(active=False)
    return IntrospectionResponse(
        active=True,
        sub=session.sub,
        scope=session.scope,
        client_id=session.client_id,
        sid=session.sid,
        token_type="refresh_token",
        role=session.role,
    )


async def revoke(
    *, settings: Settings, store: SessionStore, keyring: KeyRing, client_id: str, form: dict[str, str]
) -> None:
    """RFC 7009: ends the session of an access or refresh token; unknown tokens are no error."""
    token = form.get("token", "")
    if not token:
        raise InvalidRequest("token is required.")
    if len(token) > 8192:
        return
    sid: str | None = None
    if token.count(".") == 2:
        claims = decode_access_token(token, keyring=keyring, auth=settings.auth, verify_exp=False)
        # a service token has no sid: no session to end (RFC 7009 lets us ignore it)
        sid = str(claims["sid"]) if claims and "sid" in claims else None
    if sid is None and (found := await store.refresh_sid(token)) is not None:
        sid = found[0]
    if sid is None:
        return
    session = await store.get(sid)
    if session is None:
        return
    if session.client_id != client_id:
        log.warning("client %s tried to revoke a session of client %s: ignored", client_id, session.client_id)
        return
    await store.revoke(sid)
    log.info("session %s of %s revoked by %s", sid, session.sub, client_id)
