"""Settings of gateway-web: the chassis wiring plus what this service alone needs."""

from __future__ import annotations

from typing import Self

from pydantic import Field, field_validator, model_validator

from chassis.bff import BffServiceSettings
from chassis.ratelimit import RateLimitSettings
from gateway_web.auth.settings import WebAuthSettings

__all__ = ["Settings"]


class Settings(BffServiceSettings):
    service_name: str = "gateway-web"
    catalog_url: str = "http://localhost:8011"
    inventory_url: str = "http://localhost:8012"
    reviews_url: str = "http://localhost:8013"
    orders_url: str = "http://localhost:8014"
    auth: WebAuthSettings = WebAuthSettings()
    rate_limit: RateLimitSettings = RateLimitSettings()  # off unless configured (deploy/config-repo)
    zipkin_ui_url: str = Field(
        "http://localhost:9411", description="Zipkin as the shopper's browser reaches it (storefront footer)"
    )

    @field_validator("zipkin_ui_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _secure_cookies_in_production(self) -> Self:
        # Production is reached over HTTPS: the session and CSRF cookies carry Secure whatever
        # AUTH__COOKIE_SECURE says, so a browser never sends them over plain HTTP.
        if self.env == "production" and not self.auth.cookie_secure:
            self.auth = self.auth.model_copy(update={"cookie_secure": True})
        return self

    def _secret_values(self) -> dict[str, str]:
        return {"AUTH__CLIENT_SECRET": self.auth.client_secret.get_secret_value()}
