"""gateway-mobile's auth settings (``AUTH__...``): its OAuth client and the token-check cache."""

from __future__ import annotations

from pydantic import Field, SecretStr

from chassis.auth import AuthSettings

__all__ = ["MobileAuthSettings"]


class MobileAuthSettings(AuthSettings):
    client_id: str = "mobile"
    client_secret: SecretStr = SecretStr("dev-only-mobile-secret")
    introspection_cache_s: float = Field(
        5.0, ge=0, le=60, description="see AuthServiceClient: revocation delay"
    )
    max_body_bytes: int = Field(4096, ge=256)
