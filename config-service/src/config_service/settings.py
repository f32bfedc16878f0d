"""Settings of config-service: the chassis wiring plus what this service alone needs.

config-service is the config store, so its own settings come from the environment only (no
bootstrap loop). Its dev defaults (encryption key, client password) carry the ``dev-only`` mark
and ``ENV=production`` refuses them.

Which client reads what: a client reads the application named like it (each service uses a
client of its own name), plus the applications ``CONFIG_CLIENT_APPS`` grants it; ``*`` grants
every application and the operations that span them (``/encrypt``, ``/decrypt``, ``/monitor``).
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from chassis import ServiceSettings
from chassis.config_client import ConfigClientSettings

__all__ = ["ALL_APPS", "DEV_ENCRYPT_KEY", "Settings"]

DEV_ENCRYPT_KEY = "dev-only-encrypt-key-do-not-use-in-production"
ALL_APPS = "*"
_APP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")  # as environment/names.py accepts in URLs


def _dev_clients() -> dict[str, SecretStr]:
    # The same pair the chassis config client uses by default, so a laptop works out of the box.
    defaults = ConfigClientSettings.model_fields
    user = defaults["config_client_user"].default
    password = defaults["config_client_password"].default
    return {str(user): SecretStr(str(password))}


def _dev_grants() -> dict[str, list[str]]:
    # The default client is the operator's: it reads every application.
    return {str(ConfigClientSettings.model_fields["config_client_user"].default): [ALL_APPS]}


class Settings(ServiceSettings):
    service_name: str = "config-service"

    config_repo_uri: str = Field(
        ".",
        description="Git repository: a local path or a URL (cloned bare); "
        "or dir:/path, a directory served as it is (a Kubernetes ConfigMap volume)",
    )
    config_search_paths: str = Field(
        "deploy/config-repo",
        description="comma-separated folders of the repository holding config files; / (or .) = its top",
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
    config_client_apps: Annotated[dict[str, list[str]], NoDecode] = Field(
        default_factory=_dev_grants,
        description="applications a client reads besides the one of its own name: "
        '"client=app1|app2,ops=*" or JSON {"client": ["app1"]}; * = all, and /encrypt, /decrypt, /monitor',
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

    @field_validator("config_client_apps", mode="before")
    @classmethod
    def _parse_grants(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if value.lstrip().startswith("{"):
            return json.loads(value)
        pairs = [item.split("=", 1) for item in value.split(",") if item.strip()]
        if any(len(pair) != 2 or not pair[0].strip() for pair in pairs):
            raise ValueError("CONFIG_CLIENT_APPS: expected client=app1|app2 items separated by commas")
        return {
            client.strip(): [app.strip() for app in apps.split("|") if app.strip()] for client, apps in pairs
        }

    @model_validator(mode="after")
    def _grants_name_known_clients_and_apps(self) -> Self:
        bad = [app for apps in self.config_client_apps.values() for app in apps if not _is_app(app)]
        if bad:
            raise ValueError(f"CONFIG_CLIENT_APPS: not application names: {', '.join(sorted(bad))}")
        # The default grant is for the default client; a grant set on purpose must name a client
        # that exists (a typo would otherwise silently grant nothing).
        unknown = sorted(set(self.config_client_apps) - set(self.config_clients))
        if unknown and "config_client_apps" in self.model_fields_set:
            raise ValueError(f"CONFIG_CLIENT_APPS names clients CONFIG_CLIENTS lacks: {', '.join(unknown)}")
        return self

    def apps_of(self, client: str) -> frozenset[str]:
        """What ``client`` may read: the application of its own name and its grants."""
        return frozenset({client, *self.config_client_apps.get(client, ())})

    @model_validator(mode="after")
    def _never_its_own_client(self) -> Self:
        # The store does not fetch configuration from itself (compose sets CONFIG_SERVICE_URL for all).
        self.config_service_url = None
        return self

    @property
    def search_paths(self) -> list[str]:
        parts = [part.strip() for part in self.config_search_paths.split(",")]
        # "/" and "." name the top (a flat ConfigMap); empty items (a trailing comma) are ignored.
        paths = ["" if part in ("/", ".", "./") else part.strip("/") for part in parts if part]
        return paths or [""]

    def _secret_values(self) -> dict[str, str]:
        secrets = {"ENCRYPT_KEY": self.encrypt_key.get_secret_value()}
        for user, password in self.config_clients.items():
            secrets[f"CONFIG_CLIENTS[{user}]"] = password.get_secret_value()
        return secrets


def _is_app(name: str) -> bool:
    return name == ALL_APPS or (bool(_APP.match(name)) and ".." not in name)
