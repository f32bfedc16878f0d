"""OAuth 2.0 errors (RFC 6749 section 5.2) rendered as problem+json that also carries ``error``."""

from __future__ import annotations

from chassis import ServiceError

__all__ = [
    "InvalidClient",
    "InvalidGrant",
    "InvalidRequest",
    "OAuthError",
    "TooManyAttempts",
    "UnauthorizedClient",
    "UnsupportedGrant",
]


class OAuthError(ServiceError):
    status = 400
    error = "invalid_request"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(
            detail,
            title=self.error,
            headers={"Cache-Control": "no-store", **(headers or {})},
            extras={"error": self.error, "error_description": detail},
        )


class InvalidRequest(OAuthError):
    error = "invalid_request"


class InvalidClient(OAuthError):
    status = 401
    error = "invalid_client"

    def __init__(self, detail: str = "Client authentication failed.") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Basic realm="auth-service"'})


class InvalidGrant(OAuthError):
    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    """An authenticated client asking for a grant or endpoint it may not use (RFC 6749 5.2)."""

    error = "unauthorized_client"


class UnsupportedGrant(OAuthError):
    error = "unsupported_grant_type"


class TooManyAttempts(OAuthError):
    status = 429
    error = "too_many_attempts"

    def __init__(self, retry_after_s: int, detail: str = "Too many failed logins: try again later.") -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after_s))})
