"""Waiting in a system test: poll a check until it answers something truthy, bounded in time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx

__all__ = ["wait_until", "wait_until_async"]


def wait_until(what: str, check: Callable[[], Any], timeout_s: float = 30.0, every_s: float = 0.2) -> Any:
    """The first truthy answer of ``check``; an HTTP error counts as not yet. AssertionError on timeout."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except httpx.HTTPError as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(every_s)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


async def wait_until_async(
    what: str, check: Callable[[], Any], timeout_s: float = 10.0, every_s: float = 0.02
) -> Any:
    """``wait_until`` for a test's own event loop: sleeps without blocking the loop."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        await asyncio.sleep(every_s)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")
