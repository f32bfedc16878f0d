"""A bulkhead: at most ``max_concurrent`` calls in flight to one downstream (or its own value in
``callees``), a few more may queue.

Hystrix's semaphore isolation, for asyncio. A call over the bound waits for one of ``queue``
places at most ``queue_wait_s`` (and never past its own budget), else ``BulkheadFull`` is raised at
once; ``Downstream`` turns that into the call's fallback, counted ``rejected``. Limits follow the
live settings: lowering ``max_concurrent`` lets the calls in flight finish and admits new ones as
they drain.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from chassis.settings import BulkheadSettings

__all__ = ["Bulkhead", "BulkheadFull"]


class BulkheadFull(Exception):
    """Every place of the bulkhead (and of its queue) is taken."""


class Bulkhead:
    def __init__(self, callee: str, settings: BulkheadSettings) -> None:
        self.callee = callee
        self.settings = settings
        self.in_flight = 0
        self.waiting = 0
        self._turns: deque[asyncio.Future[None]] = deque()

    @property
    def limit(self) -> int:
        return self.settings.callees.get(self.callee, self.settings.max_concurrent)

    def apply(self, settings: BulkheadSettings) -> None:
        """New limits (a config refresh): a raised one lets the queue in at once."""
        self.settings = settings
        for _ in range(self.limit - self.in_flight):
            self._wake_one()

    @asynccontextmanager
    async def slot(self, budget_s: float) -> AsyncIterator[None]:
        """Hold one place for the ``async with`` block, or raise ``BulkheadFull``."""
        if self.in_flight >= self.limit:
            await self._queue(min(self.settings.queue_wait_s, budget_s))
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
            self._wake_one()

    async def _queue(self, wait_s: float) -> None:
        if self.waiting >= self.settings.queue or wait_s <= 0:
            raise BulkheadFull
        self.waiting += 1
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(wait_s):
                while self.in_flight >= self.limit:
                    turn = loop.create_future()
                    self._turns.append(turn)
                    await turn
        except BaseException as exc:
            # Leaving (timed out, or cancelled: the caller went away), maybe with a turn it was
            # just given: a free place goes to the next waiter, never unused.
            if self.in_flight < self.limit:
                self._wake_one()
            if isinstance(exc, TimeoutError):
                raise BulkheadFull from None
            raise
        finally:
            self.waiting -= 1

    def _wake_one(self) -> None:
        while self._turns:
            turn = self._turns.popleft()
            if not turn.done():  # a waiter that timed out left its future cancelled
                turn.set_result(None)
                return
