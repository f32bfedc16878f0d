"""Settings of auth-service: the chassis wiring plus what this service alone needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from chassis import ServiceSettings
from chassis.auth import AuthSettings

__all__ = ["DEMO_USERS", "DEFAULT_ROLE_SCOPES", "Settings", "UserRecord"]


class UserRecord(BaseModel):
    """A user as configured: the password only as an scrypt hash (see ``auth_service.users.passwords``)."""

    username: str = Field(min_length=1, max_length=64)
    password_hash: str
    role: str
    note: str = ""


# Demo seed (passwords `<name>-password`, see README). Marked dev-only: production refuses them.
DEMO_USERS = [
    UserRecord(
        username="alice",
        password_hash="scrypt$16384$8$1$ICj6smqsoi-1yH1lcJ_2ug$O2Qm-3DT2JfLZpxgBuuFSrcq3UDkIeqmYOxJsQu_xTM",
        role="customer",
        note="dev-only demo user",
    ),
    UserRecord(
        username="bob",
        password_hash="scrypt$16384$8$1$7pqbXsfp1elvjCh1r865Kg$-iSaIUzqm8kva8Zvf1PkdmLxRDK_SHS4RYnMtFdix8o",
        role="customer",
        note="dev-only demo user",
    ),
    UserRecord(
        username="admin",
        password_hash="scrypt$16384$8$1$hbKvOJei1VRMIxSLTjJ-iw$L-X1qJQ8fnjosuEge0iBqIlkjnWB6NRmGh84m4hc8_E",
        role="admin",
        note="dev-only demo user",
    ),
]

_CUSTOMER = ["profile", "catalog:read", "orders:read", "orders:write", "reviews:read", "reviews:write"]
DEFAULT_ROLE_SCOPES: dict[str, list[str]] = {
    "customer": _CUSTOMER,
    "admin": [*_CUSTOMER, "catalog:write", "inventory:read", "inventory:write", "orders:admin"],
}


class Settings(ServiceSettings):
    service_name: str = "auth-service"
    port: int = 8000

    auth: AuthSettings = AuthSettings()
    data_dir: Path = Field(Path("./var/auth-service"), description="where the dev signing key is kept")
    jwt_private_key_pem: SecretStr | None = Field(None, description="PEM of the RS256 signing key")
    jwt_private_key_file: Path | None = Field(None, description="or a file holding that PEM")

    access_token_ttl_s: int = Field(900, ge=30, le=3600)
    refresh_token_ttl_s: int = Field(86_400, ge=60, description="a refresh token unused this long expires")
    session_max_s: int = Field(7 * 86_400, ge=60, description="absolute lifetime of a login session")

    web_client_secret: SecretStr = SecretStr("dev-only-web-secret")
    mobile_client_secret: SecretStr = SecretStr("dev-only-mobile-secret")
    orders_client_secret: SecretStr = SecretStr("dev-only-orders-secret")
    # Confidential service clients (client_credentials grant only) and the scopes each may get.
    service_client_scopes: dict[str, list[str]] = Field(
        default_factory=lambda: {"orders": ["inventory:reserve"]},
        description="client id -> scopes its client_credentials tokens may carry",
    )

    # Login limits, checked in Redis before any hashing (see README "Brute force and login floods").
    login_max_failures: int = Field(5, ge=1, description="failed logins per user+address before 429")
    login_lockout_s: int = Field(300, ge=1, description="window of those failures and the lockout")
    login_ip_max_failures: int = Field(
        30, ge=1, description="failed logins per client address, any usernames, before 429"
    )
    login_ip_window_s: int = Field(300, ge=1, description="window of those failures and the lockout")
    login_global_max_attempts: int = Field(
        50, ge=1, description="password checks platform-wide (all replicas) per global window; more: 429"
    )
    login_global_window_s: int = Field(5, ge=1, description="the global window")
    login_hash_slots: int = Field(
        2, ge=1, le=64, description="password checks at once per process, 16 MiB each (read at start)"
    )
    login_hash_queue: int = Field(8, ge=0, description="logins waiting for a slot; one more: 429 at once")
    login_hash_wait_s: float = Field(0.5, gt=0, le=10, description="longest wait for a slot, then 429")
    forwarding_clients: list[str] = Field(
        default_factory=lambda: ["web", "mobile"],
        description="clients (the gateways) whose X-Forwarded-For names the end user's address",
    )
    max_body_bytes: int = Field(8192, ge=512)

    users: list[UserRecord] = Field(default_factory=lambda: list(DEMO_USERS))
    role_scopes: dict[str, list[str]] = Field(default_factory=lambda: dict(DEFAULT_ROLE_SCOPES))

    @field_validator("jwt_private_key_pem", "jwt_private_key_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # compose passes ``${JWT_PRIVATE_KEY_PEM:-}``: an empty value means "not provided"
        return None if value == "" else value

    @model_validator(mode="after")
    def _only_user_clients_forward(self) -> Self:
        # a service client has no end user: an address it names would only be a way to dodge limits
        if wrong := sorted(set(self.forwarding_clients) & set(self.service_client_scopes)):
            raise ValueError(f"forwarding_clients: {', '.join(wrong)} are service clients")
        return self

    @model_validator(mode="after")
    def _production_needs_a_key(self) -> Self:
        if (
            self.env == "production"
            and self.jwt_private_key_pem is None
            and self.jwt_private_key_file is None
        ):
            raise ValueError(
                "ENV=production refuses to generate a signing key: "
                "set JWT_PRIVATE_KEY_PEM or JWT_PRIVATE_KEY_FILE"
            )
        return self

    def _secret_values(self) -> dict[str, str]:
        return {
            "WEB_CLIENT_SECRET": self.web_client_secret.get_secret_value(),
            "MOBILE_CLIENT_SECRET": self.mobile_client_secret.get_secret_value(),
            "ORDERS_CLIENT_SECRET": self.orders_client_secret.get_secret_value(),
            "USERS": " ".join(user.note for user in self.users),
        }

    def client_secrets(self) -> dict[str, str]:
        return {
            "web": self.web_client_secret.get_secret_value(),
            "mobile": self.mobile_client_secret.get_secret_value(),
            "orders": self.orders_client_secret.get_secret_value(),
        }
