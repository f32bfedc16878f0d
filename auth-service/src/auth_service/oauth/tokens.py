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
    sid: str,
    scope: str,
    client_id: str,
    role: str,
) -> str:
    now = int(time.time())
    claims = {
        "iss": auth.issuer,
        "sub": sub,
        "aud": auth.audience,
        "exp": now + ttl_s,
        "iat": now,
        "nbf": now,
        "jti": uuid.uuid4().hex,
        "sid": sid,
        "scope": scope,
        "client_id": client_id,
        "role": role,
    }
    key = keyring.active
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid, "typ": "at+jwt"})


def decode_access_token(
    token: str, *, keyring: KeyRing, auth: AuthSettings, verify_exp: bool = True
) -> dict[str, Any] | None:
    """The claims of a token this service signed with a key it still publishes, or None."""
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
            options={"require": ["exp", "iat", "sub", "sid", "jti"], "verify_exp": verify_exp},
        )
    except jwt.PyJWTError:
        return None
    return claims
