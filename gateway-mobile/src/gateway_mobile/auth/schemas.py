from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["LogoutRequest", "Me", "RefreshRequest", "TokenRequest", "TokenResponse"]


class TokenRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256, repr=False)


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=512, repr=False)


class LogoutRequest(BaseModel):
    refresh_token: str | None = Field(None, min_length=1, max_length=512, repr=False)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    refresh_token: str
    scope: str


class Me(BaseModel):
    sub: str
    scope: str
    exp: int | None = None
