"""Settings of gateway-web: the chassis wiring plus what this service alone needs."""

from __future__ import annotations

from chassis import ServiceSettings
from gateway_web.auth.settings import WebAuthSettings

__all__ = ["Settings"]


class Settings(ServiceSettings):
    service_name: str = "gateway-web"
    catalog_url: str = "http://localhost:8011"
    auth: WebAuthSettings = WebAuthSettings()

    def _secret_values(self) -> dict[str, str]:
        return {"AUTH__CLIENT_SECRET": self.auth.client_secret.get_secret_value()}
