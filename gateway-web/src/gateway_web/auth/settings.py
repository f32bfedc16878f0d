"""gateway-web's auth settings (``AUTH__...``): its OAuth client, cookies, session and check cache."""

from __future__ import annotations

from pydantic import Field, SecretStr

from chassis.auth import AuthClientSettings

__all__ = ["WebAuthSettings"]


class WebAuthSettings(AuthClientSettings):
    client_id: str = "web"
    client_secret: SecretStr = SecretStr("dev-only-web-secret")
    cookie_name: str = "msa_session"
    csrf_cookie_name: str = "msa_csrf"
    csrf_header: str = "X-CSRF-Token"
    cookie_secure: bool = Field(
        False, description="set the Secure flag (behind HTTPS); always set with ENV=production"
    )
    session_ttl_s: int = Field(86_400, ge=60, description="a session unused this long ends")
    refresh_margin_s: int = Field(
        60, ge=0, description="refresh the access token this long before it expires"
    )
