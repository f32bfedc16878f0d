"""Authenticating users against the configured records."""

from __future__ import annotations

import asyncio
import threading

from auth_service.settings import Settings, UserRecord
from auth_service.users.passwords import DUMMY_HASH, verify_password

__all__ = ["authenticate", "scopes_of"]

# Each scrypt check holds 16 MiB: at most this many at once keeps a login burst inside the
# container's memory limit (the others queue in the thread pool).
_KDF_SLOTS = threading.BoundedSemaphore(2)


def _check(password: str, encoded: str) -> bool:
    with _KDF_SLOTS:
        return verify_password(password, encoded)


async def authenticate(*, settings: Settings, username: str, password: str) -> UserRecord | None:
    """The user when the password matches; scrypt runs off the event loop."""
    user = next((u for u in settings.users if u.username == username), None)
    encoded = user.password_hash if user else DUMMY_HASH
    ok = await asyncio.to_thread(_check, password, encoded)
    return user if ok and user is not None else None


def scopes_of(*, settings: Settings, user: UserRecord) -> list[str]:
    return list(settings.role_scopes.get(user.role, []))
