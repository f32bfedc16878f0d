"""RS256 access tokens (RFC 9068 profile) and opaque refresh tokens."""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any

import jwt

from auth_service.signing.keyring import KeyRing
from chassis.auth import ALGORITHMS, AuthSettings

__all__ = ["decode_access_token", "issue_access_token", "new_refresh_token", "new_session_id"]


def new_session_id() -> str:
    return secrets.token_urlsafe(18)


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def issue_access_token(
    *,
    keyring: KeyRing,
    auth: AuthSettings,
    ttl_s: int,
    sub: str,
    sid: str | None,
    scope: str,
    client_id: str,
    role: str | None,
) -> str:
    """A user's token names its login session (``sid``) and ``role``; a service token
    (client_credentials) has neither: no session can end it, only its short ``exp``."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": auth.issuer,
        "sub": sub,
        "aud": auth.audience,
        "exp": now + ttl_s,
        "iat": now,
        "nbf": now,
        "jti": uuid.uuid4().hex,
        "scope": scope,
        "client_id": client_id,
    }
    if sid is not None:
        claims["sid"] = sid
    if role is not None:
        claims["role"] = role
    key = keyring.active
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid, "typ": "at+jwt"})


def decode_access_token(
    token: str, *, keyring: KeyRing, auth: AuthSettings, verify_exp: bool = True
) -> dict[str, Any] | None:
    """The claims of a token this service signed with a key it still publishes, or None.
    ``sid`` is not required here: service tokens have none (see ``service.is_service_token``)."""
    try:
        header = jwt.get_unverified_header(token)
        if header.get("alg") not in ALGORITHMS:
            return None
        key = keyring.public_key(str(header.get("kid", "")))
        if key is None:
            return None
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=ALGORITHMS,
            audience=auth.audience,
            issuer=auth.issuer,
            leeway=auth.leeway_s,
            options={"require": ["exp", "iat", "sub", "jti"], "verify_exp": verify_exp},
        )
    except jwt.PyJWTError:
        return None
    return claims
