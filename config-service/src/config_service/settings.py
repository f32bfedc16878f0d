"""Settings of config-service: the chassis wiring plus what this service alone needs.

config-service is the config store, so its own settings come from the environment only (no
bootstrap loop). Its dev defaults (encryption key, client password) carry the ``dev-only`` mark
and ``ENV=production`` refuses them.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from chassis import ServiceSettings
from chassis.config_client import ConfigClientSettings

__all__ = ["DEV_ENCRYPT_KEY", "Settings"]

DEV_ENCRYPT_KEY = "dev-only-encrypt-key-do-not-use-in-production"


def _dev_clients() -> dict[str, SecretStr]:
    # The same pair the chassis config client uses by default, so a laptop works out of the box.
    defaults = ConfigClientSettings.model_fields
    user = defaults["config_client_user"].default
    password = defaults["config_client_password"].default
    return {str(user): SecretStr(str(password))}


class Settings(ServiceSettings):
    service_name: str = "config-service"

    config_repo_uri: str = Field(".", description="Git repository: a local path or a URL (cloned bare)")
    config_search_paths: str = Field(
        "deploy/config-repo", description="comma-separated folders of the repository holding config files"
    )
    config_default_label: str = Field(
        "main", description="label when none is asked; 'main' falls back to 'master'"
    )
    config_poll_interval_s: float = Field(
        2.0, ge=0, description="seconds between checks for new commits; 0 = off"
    )
    config_clone_dir: Path = Field(
        default_factory=lambda: Path(tempfile.gettempdir()) / "msa-config-service",
        description="where a repository given by URL is cloned",
    )
    encrypt_key: SecretStr = Field(SecretStr(DEV_ENCRYPT_KEY), description="key for {cipher} values")
    config_clients: Annotated[dict[str, SecretStr], NoDecode] = Field(
        default_factory=_dev_clients,
        description='accepted HTTP basic credentials: "user:password,user2:password2" or JSON {"user": "password"}',
    )

    @field_validator("config_clients", mode="before")
    @classmethod
    def _parse_clients(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if value.lstrip().startswith("{"):
            return json.loads(value)
        pairs = [item.split(":", 1) for item in value.split(",") if item.strip()]
        if any(len(pair) != 2 or not pair[0].strip() for pair in pairs):
            raise ValueError("CONFIG_CLIENTS: expected user:password pairs separated by commas")
        return {user.strip(): password for user, password in pairs}

    @model_validator(mode="after")
    def _never_its_own_client(self) -> Self:
        # The store does not fetch configuration from itself (compose sets CONFIG_SERVICE_URL for all).
        self.config_service_url = None
        return self

    @property
    def search_paths(self) -> list[str]:
        paths = [part.strip().strip("/") for part in self.config_search_paths.split(",")]
        return [path for path in paths if path] or [""]

    def _secret_values(self) -> dict[str, str]:
        secrets = {"ENCRYPT_KEY": self.encrypt_key.get_secret_value()}
        for user, password in self.config_clients.items():
            secrets[f"CONFIG_CLIENTS[{user}]"] = password.get_secret_value()
        return secrets
