"""Authenticating users against the configured records."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from auth_service.settings import Settings, UserRecord
from auth_service.users.passwords import DUMMY_HASH, verify_password

__all__ = ["HashingBusy", "PasswordChecker", "authenticate", "scopes_of"]


class HashingBusy(Exception):
    """No hashing slot within the allowed wait: the login is refused unchecked."""


class PasswordChecker:
    """scrypt checks off the event loop, on ``slots`` threads of their own (each check holds
    16 MiB and a core for ~50 ms, so the slots bound both memory and CPU; token checks keep the
    event loop and the rest of the CPU). A login waits for a slot behind at most ``max_waiting``
    others and for at most ``max_wait_s``, else ``HashingBusy`` at once: a burst is refused fast
    instead of queueing until every caller has timed out."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._executor = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="scrypt")
        self._free = asyncio.Semaphore(slots)
        self.waiting = 0

    async def check(self, password: str, encoded: str, *, max_waiting: int, max_wait_s: float) -> bool:
        if self._free.locked() and self.waiting >= max_waiting:
            raise HashingBusy()
        self.waiting += 1
        try:
            async with asyncio.timeout(max_wait_s):
                await self._free.acquire()
        except TimeoutError:
            raise HashingBusy() from None
        finally:
            self.waiting -= 1
        work = asyncio.get_running_loop().run_in_executor(self._executor, verify_password, password, encoded)
        # the slot is free when the thread is, even if the caller went away meanwhile
        work.add_done_callback(lambda _: self._free.release())
        return await asyncio.shield(work)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


async def authenticate(
    *, settings: Settings, checker: PasswordChecker, username: str, password: str
) -> UserRecord | None:
    """The user when the password matches (``HashingBusy`` when no slot is free in time)."""
    user = next((u for u in settings.users if u.username == username), None)
    encoded = user.password_hash if user else DUMMY_HASH
    ok = await checker.check(
        password, encoded, max_waiting=settings.login_hash_queue, max_wait_s=settings.login_hash_wait_s
    )
    return user if ok and user is not None else None


def scopes_of(*, settings: Settings, user: UserRecord) -> list[str]:
    return list(settings.role_scopes.get(user.role, []))
