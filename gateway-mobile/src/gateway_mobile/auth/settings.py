"""gateway-mobile's auth settings (``AUTH__...``): its OAuth client and the token-check cache."""

from __future__ import annotations

from pydantic import SecretStr

from chassis.auth import AuthClientSettings

__all__ = ["MobileAuthSettings"]


class MobileAuthSettings(AuthClientSettings):
    client_id: str = "mobile"
    client_secret: SecretStr = SecretStr("dev-only-mobile-secret")
