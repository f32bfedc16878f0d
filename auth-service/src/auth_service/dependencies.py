"""Annotated dependency aliases of auth-service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from auth_service.oauth.repository import SessionStore
from auth_service.settings import Settings
from auth_service.signing.keyring import KeyRing
from auth_service.users.service import PasswordChecker
from chassis.dependencies import settings_of
from chassis.state import resource_of

__all__ = ["KeyRingDep", "PasswordCheckerDep", "SessionStoreDep", "SettingsDep"]


SettingsDep = Annotated[Settings, Depends(settings_of(Settings))]
KeyRingDep = Annotated[KeyRing, Depends(resource_of(KeyRing))]
SessionStoreDep = Annotated[SessionStore, Depends(resource_of(SessionStore))]
PasswordCheckerDep = Annotated[PasswordChecker, Depends(resource_of(PasswordChecker))]
