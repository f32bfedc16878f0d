"""Annotated dependencies of config-service."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from chassis import ServiceError
from chassis.context import user_var
from config_service.crypto.service import Cipher
from config_service.environment.service import EnvironmentService
from config_service.monitor.service import Monitor
from config_service.settings import Settings
from config_service.store import ConfigStore

__all__ = ["CipherDep", "ClientDep", "EnvironmentDep", "MonitorDep", "SettingsDep"]

_basic = HTTPBasic(auto_error=False, realm="config-service")
_NOT_A_PASSWORD = secrets.token_bytes(16)  # compared against for unknown users (same timing)


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.live.current
    return settings


async def require_client(
    request: Request, credentials: Annotated[HTTPBasicCredentials | None, Depends(_basic)]
) -> str:
    """Configuration can hold secrets: every read needs one of the accepted client credentials."""
    if credentials is not None:
        accepted = get_settings(request).config_clients.get(credentials.username)
        expected = accepted.get_secret_value().encode() if accepted is not None else _NOT_A_PASSWORD
        if secrets.compare_digest(credentials.password.encode(), expected) and accepted is not None:
            user_var.set(credentials.username)
            return credentials.username
    raise ServiceError(
        "config-service needs HTTP basic credentials of a configured client",
        status=401,
        headers={"WWW-Authenticate": 'Basic realm="config-service"'},
    )


def _store(request: Request) -> ConfigStore:
    store: ConfigStore = request.app.state.store
    return store


def get_environment(request: Request) -> EnvironmentService:
    return _store(request).require()[0]


def get_cipher(request: Request) -> Cipher:
    cipher = _store(request).cipher
    assert cipher is not None  # set before the app serves
    return cipher


def get_monitor(request: Request) -> Monitor:
    return _store(request).require()[1]


SettingsDep = Annotated[Settings, Depends(get_settings)]
ClientDep = Annotated[str, Depends(require_client)]
EnvironmentDep = Annotated[EnvironmentService, Depends(get_environment)]
CipherDep = Annotated[Cipher, Depends(get_cipher)]
MonitorDep = Annotated[Monitor, Depends(get_monitor)]
