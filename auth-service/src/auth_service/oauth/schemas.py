from __future__ import annotations

from pydantic import BaseModel

__all__ = ["IntrospectionResponse", "TokenResponse"]


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    refresh_token: str | None = None  # never for client_credentials (no session to refresh)
    scope: str


class IntrospectionResponse(BaseModel):
    """RFC 7662; ``authorized`` answers the optional ``required_scope`` question."""

    active: bool
    sub: str | None = None
    scope: str | None = None
    client_id: str | None = None
    exp: int | None = None
    iat: int | None = None
    sid: str | None = None
    iss: str | None = None
    aud: str | None = None
    token_type: str | None = None
    role: str | None = None
    authorized: bool | None = None
    missing_scope: list[str] | None = None
