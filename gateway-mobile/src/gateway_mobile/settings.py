"""Settings of gateway-mobile: the chassis wiring plus what this service alone needs."""

from __future__ import annotations

from chassis.bff import BffServiceSettings
from chassis.ratelimit import RateLimitSettings
from gateway_mobile.auth.settings import MobileAuthSettings

__all__ = ["Settings"]


class Settings(BffServiceSettings):
    service_name: str = "gateway-mobile"
    catalog_url: str = "http://localhost:8011"
    inventory_url: str = "http://localhost:8012"
    reviews_url: str = "http://localhost:8013"
    orders_url: str = "http://localhost:8014"
    auth: MobileAuthSettings = MobileAuthSettings()
    rate_limit: RateLimitSettings = RateLimitSettings()  # off unless configured (deploy/config-repo)

    def _secret_values(self) -> dict[str, str]:
        return {"AUTH__CLIENT_SECRET": self.auth.client_secret.get_secret_value()}
