"""Authenticating users against the configured records."""

from __future__ import annotations

import asyncio

from auth_service.settings import Settings, UserRecord
from auth_service.users.passwords import DUMMY_HASH, verify_password

__all__ = ["authenticate", "scopes_of"]


async def authenticate(*, settings: Settings, username: str, password: str) -> UserRecord | None:
    """The user when the password matches; scrypt runs off the event loop."""
    user = next((u for u in settings.users if u.username == username), None)
    encoded = user.password_hash if user else DUMMY_HASH
    ok = await asyncio.to_thread(verify_password, password, encoded)
    return user if ok and user is not None else None


def scopes_of(*, settings: Settings, user: UserRecord) -> list[str]:
    return list(settings.role_scopes.get(user.role, []))
