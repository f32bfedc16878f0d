"""An embedded SQLite store that never blocks the event loop.

Each domain service owns one SQLite file under its ``DATA_DIR``. The one connection lives on a
single worker thread: every operation is a plain function ``fn(conn)`` run there in a transaction
(``await db.write(fn)`` / ``await db.read(fn)``), so the event loop only awaits a future, and
SQLite sees one writer at a time. ``scripts/bench_sqlite_loop.py`` measures the loop stall.
``create_app(..., lifespan=db.lifespan)`` opens it on startup and closes it on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sqlite3
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, TypeVar

from fastapi import Depends

from chassis.errors import ServiceError
from chassis.state import resource_of

__all__ = ["Database", "DatabaseDep", "StoreUnavailable"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class StoreUnavailable(ServiceError):
    """The service's own store failed (disk, lock, or injected): 503, the client may retry."""

    status = 503
    title = "Store unavailable"


class Database:
    """One SQLite file, one connection, one thread."""

    def __init__(
        self,
        path: Path,
        *,
        schema: str,
        seed: Callable[[sqlite3.Connection], None] | None = None,
        write_fault_rate: Callable[[], float] = lambda: 0.0,
    ) -> None:
        self.path = path
        self._schema = schema
        self._seed = seed
        self._write_fault_rate = write_fault_rate
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        """Create the file, the schema and the demo data (once: seeding is idempotent)."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sqlite-{self.path.stem}")
        await self._submit(self._open_sync)
        log.info("store %s open", self.path)

    def _open_sync(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=2000")
        conn.executescript(self._schema)
        self._conn = conn
        if self._seed is not None:
            self._in_transaction(self._seed)

    async def close(self) -> None:
        if self._executor is None:
            return
        if self._conn is not None:
            await self._submit(self._conn.close)
            self._conn = None
        self._executor.shutdown(wait=True)
        self._executor = None

    @contextlib.asynccontextmanager
    async def lifespan(self, app: object = None) -> AsyncIterator[None]:
        """Open for the life of the app: ``create_app(..., lifespan=db.lifespan)``, or
        ``async with db.lifespan(app):`` inside a service's own lifespan."""
        await self.open()
        try:
            yield
        finally:
            await self.close()

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._run(fn, write=False)

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in one ``BEGIN IMMEDIATE`` transaction: all of it commits, or none of it."""
        return await self._run(fn, write=True)

    async def ping(self) -> dict[str, str]:
        await self.read(lambda conn: conn.execute("SELECT 1").fetchone())
        return {"path": str(self.path)}

    async def _run(self, fn: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
        if write and random.random() < self._write_fault_rate():
            raise StoreUnavailable("The store failed to write (injected by chaos.store_error_rate).")
        try:
            return await self._submit(lambda: self._in_transaction(fn, immediate=write))
        except sqlite3.OperationalError as exc:
            log.warning("store %s failed: %s", self.path.name, exc)
            raise StoreUnavailable("The store is unavailable, retry later.") from exc

    def _in_transaction(self, fn: Callable[[sqlite3.Connection], T], *, immediate: bool = True) -> T:
        conn = self._conn
        if conn is None:
            raise sqlite3.OperationalError("store is closed")
        conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            result = fn(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def _submit(self, fn: Callable[[], T]) -> T:
        if self._executor is None:
            raise StoreUnavailable("The store is not open.")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)


# The service's store, provided by its ``create`` (``provide(app, db)``).
DatabaseDep = Annotated[Database, Depends(resource_of(Database))]
