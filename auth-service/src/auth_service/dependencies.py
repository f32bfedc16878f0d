"""Annotated dependency aliases of auth-service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from auth_service.oauth.repository import SessionStore
from auth_service.settings import Settings
from auth_service.signing.keyring import KeyRing
from auth_service.users.service import PasswordChecker
from chassis.dependencies import settings_of

__all__ = ["KeyRingDep", "PasswordCheckerDep", "SessionStoreDep", "SettingsDep"]


def get_keyring(request: Request) -> KeyRing:
    keyring: KeyRing = request.app.state.keyring
    return keyring


def get_store(request: Request) -> SessionStore:
    store: SessionStore = request.app.state.session_store
    return store


def get_password_checker(request: Request) -> PasswordChecker:
    checker: PasswordChecker = request.app.state.password_checker
    return checker


SettingsDep = Annotated[Settings, Depends(settings_of(Settings))]
KeyRingDep = Annotated[KeyRing, Depends(get_keyring)]
SessionStoreDep = Annotated[SessionStore, Depends(get_store)]
PasswordCheckerDep = Annotated[PasswordChecker, Depends(get_password_checker)]
