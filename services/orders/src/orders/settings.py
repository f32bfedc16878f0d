"""Settings of orders: the chassis wiring plus what this service alone needs."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from chassis.auth import ServiceClientSettings
from chassis.store import StoreSettings

__all__ = ["OrdersAuth", "Settings"]


class OrdersAuth(ServiceClientSettings):
    """Token verification (``AUTH__ISSUER``, ...) plus orders' own client at auth-service, whose
    client_credentials token orders sends to inventory (``AUTH__CLIENT_SECRET``)."""

    client_id: str = "orders"
    client_secret: SecretStr = SecretStr("dev-only-orders-secret")  # = auth-service ORDERS_CLIENT_SECRET
    token_scope: str = "inventory:reserve"


class Settings(StoreSettings):
    service_name: str = "orders"
    catalog_url: str = "http://localhost:8011"
    inventory_url: str = "http://localhost:8012"
    data_dir: Path = Path("./var/orders")  # env DATA_DIR; holds orders.sqlite3 unless DATABASE_URL is set
    auth: OrdersAuth = OrdersAuth()

    abandoned_after_s: float = Field(
        30.0,
        gt=0,
        description="an order attempt unfinished this long is abandoned: its reservation is released",
    )
    recovery_interval_s: float = Field(5.0, gt=0, description="how often abandoned attempts are looked for")
    idempotency_ttl_s: float = Field(
        86_400.0, gt=0, description="a completed Idempotency-Key is kept this long, then is new again"
    )

    def _secret_values(self) -> dict[str, str]:
        return {**super()._secret_values(), "AUTH__CLIENT_SECRET": self.auth.client_secret.get_secret_value()}
