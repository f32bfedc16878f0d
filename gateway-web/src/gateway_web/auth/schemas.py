from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["LoginRequest", "LoginResponse", "Me"]


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256, repr=False)


class Me(BaseModel):
    sub: str
    scope: str
    client_id: str | None = None
    expires_at: int | None = Field(
        None, description="when the current access token expires (it is refreshed)"
    )


class LoginResponse(BaseModel):
    """The CSRF token is also in the readable ``msa_csrf`` cookie; send it as ``X-CSRF-Token``."""

    user: Me
    csrf_token: str
