"""Annotated dependencies of config-service."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from chassis import ServiceError
from chassis.context import user_var
from chassis.dependencies import settings_of
from chassis.state import resource
from config_service.crypto.service import Cipher
from config_service.environment.service import EnvironmentService
from config_service.errors import ClientUnauthenticated
from config_service.monitor.service import Monitor
from config_service.settings import ALL_APPS, Settings
from config_service.store import ConfigStore

__all__ = [
    "CipherDep",
    "ClientDep",
    "ConfigClient",
    "EnvironmentDep",
    "MonitorDep",
    "ReaderDep",
    "SettingsDep",
]

SettingsDep = Annotated[Settings, Depends(settings_of(Settings))]

_basic = HTTPBasic(auto_error=False, realm="config-service")
_NOT_A_PASSWORD = secrets.token_bytes(16)  # compared against for unknown users (same timing)


class ClientForbidden(ServiceError):
    status = 403
    title = "Forbidden"


@dataclass(frozen=True)
class ConfigClient:
    """An authenticated client and the applications it may read (``*``: all)."""

    name: str
    apps: frozenset[str]

    @property
    def reads_everything(self) -> bool:
        return ALL_APPS in self.apps

    def require_app(self, app: str) -> None:
        """403 unless this client may read ``app``'s configuration."""
        if not self.reads_everything and app not in self.apps:
            raise ClientForbidden(f"Client {self.name!r} may not read the configuration of {app!r}.")


async def authenticate(
    settings: SettingsDep, credentials: Annotated[HTTPBasicCredentials | None, Depends(_basic)]
) -> ConfigClient:
    """Configuration can hold secrets: every read needs one of the accepted client credentials."""
    if credentials is not None:
        accepted = settings.config_clients.get(credentials.username)
        expected = accepted.get_secret_value().encode() if accepted is not None else _NOT_A_PASSWORD
        if secrets.compare_digest(credentials.password.encode(), expected) and accepted is not None:
            user_var.set(credentials.username)
            return ConfigClient(credentials.username, settings.apps_of(credentials.username))
    raise ClientUnauthenticated()


async def require_client(client: Annotated[ConfigClient, Depends(authenticate)]) -> str:
    """A client granted every application (``*``): /decrypt turns any ``{cipher}`` value of the
    repository into its secret, and /monitor refreshes any application, so a client limited to
    its own applications may use neither (nor /encrypt, kept with them)."""
    if not client.reads_everything:
        raise ClientForbidden(
            f"Client {client.name!r} reads only its own applications; this needs a client granted '*'."
        )
    return client.name


def _store(request: Request) -> ConfigStore:
    return resource(request.app, ConfigStore)


def get_environment(request: Request) -> EnvironmentService:
    return _store(request).require()[0]


def get_cipher(request: Request) -> Cipher:
    cipher = _store(request).cipher
    assert cipher is not None  # set before the app serves
    return cipher


def get_monitor(request: Request) -> Monitor:
    return _store(request).require()[1]


ClientDep = Annotated[str, Depends(require_client)]  # granted every application
ReaderDep = Annotated[ConfigClient, Depends(authenticate)]  # then ``reader.require_app(app)``
EnvironmentDep = Annotated[EnvironmentService, Depends(get_environment)]
CipherDep = Annotated[Cipher, Depends(get_cipher)]
MonitorDep = Annotated[Monitor, Depends(get_monitor)]
