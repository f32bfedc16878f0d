"""A service's own store: SQLite by default, PostgreSQL when ``DATABASE_URL`` names one; one code path.

Repositories are plain functions ``fn(conn)`` over a SQLAlchemy ``Connection``, with SQL in
``text()`` that both engines run. Each runs in one transaction on a worker thread
(``await db.write(fn)`` / ``await db.read(fn)``), so the event loop only awaits a future and a
transaction never spans an ``await``. What makes replicas safe is the database, not a lock in this
process:

- SQLite: one file, one connection, ``BEGIN IMMEDIATE`` for writes (one writer at a time, also
  across processes sharing the file).
- PostgreSQL: a pool of connections (``DATABASE_POOL_SIZE``), read committed, and the house rule
  that a read which decides a write locks what it read: ``SELECT ... {for_update(conn)}`` (rows in
  key order), or the write is one conditional statement (``UPDATE ... WHERE state = 'pending'``,
  ``INSERT ... ON CONFLICT DO NOTHING``). Contenders for a hot row (the stock of a popular SKU)
  then wait their turn instead of failing. When PostgreSQL still says a concurrent transaction won
  (deadlock, serialization failure, or a unique key another transaction just took), the whole
  function runs again on fresh data, a few times at most.

The schema is the service's Alembic migrations (``<package>/migrations/versions``), upgraded to
head at start-up in one transaction with the seed data; on PostgreSQL under an advisory lock, so
replicas starting together migrate once. ``create_app(..., lifespan=db.lifespan)`` opens the
store on startup and closes it on shutdown. ``scripts/bench_store.py`` measures the loop
stall.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any, TypeVar

from alembic import command
from alembic.config import Config
from fastapi import Depends
from pydantic import Field, SecretStr
from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError

from chassis import deadline
from chassis.errors import ServiceError
from chassis.settings import ServiceSettings
from chassis.state import resource_of

__all__ = ["Database", "DatabaseDep", "StoreSettings", "StoreUnavailable", "for_update", "run_migrations"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# SQLSTATEs after which a PostgreSQL transaction is run again: serialization_failure,
# deadlock_detected, and unique_violation (a key a concurrent transaction took between our read and
# our insert: run again, the read finds it).
_RETRY_SQLSTATES = frozenset({"40001", "40P01", "23505"})
_ATTEMPTS = 10
_MIGRATION_LOCK = 0x6D7361  # pg_advisory_xact_lock key: one migrator per database at a time


class StoreUnavailable(ServiceError):
    """The service's own store failed (disk, lock, connection, or injected): 503, retry later."""

    status = 503
    title = "Store unavailable"


class StoreSettings(ServiceSettings):
    """The settings of a service that owns a store."""

    data_dir: Path = Path("./var/data")  # env DATA_DIR; holds <service>.sqlite3 when no DATABASE_URL
    # env DATABASE_URL, e.g. postgresql://catalog:secret@postgres:5432/catalog; unset: SQLite.
    database_url: SecretStr | None = None
    database_pool_size: int = Field(
        5, ge=1, le=100, description="PostgreSQL connections (and worker threads) per process"
    )

    def _secret_values(self) -> dict[str, str]:
        url = {"DATABASE_URL": self.database_url.get_secret_value()} if self.database_url else {}
        return {**super()._secret_values(), **url}

    def store_url(self, name: str) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{(self.data_dir / f'{name}.sqlite3').resolve()}"


class Database:
    """One service's store: ``url`` is ``sqlite:///path`` or ``postgresql://...``."""

    def __init__(
        self,
        url: str,
        *,
        migrations: Path,
        seed: Callable[[Connection], None] | None = None,
        write_fault_rate: Callable[[], float] = lambda: 0.0,
        pool_size: int = 5,
        connect_wait_s: float = 30.0,
    ) -> None:
        self.url: URL = _driver_url(make_url(url))
        self.engine_name = self.url.get_backend_name()
        if self.engine_name not in ("sqlite", "postgresql"):
            raise ValueError(
                f"unsupported store {self.url.render_as_string()}: use sqlite:/// or postgresql://"
            )
        self._migrations = migrations
        self._seed = seed
        self._write_fault_rate = write_fault_rate
        self._workers = 1 if self.engine_name == "sqlite" else pool_size
        self._connect_wait_s = connect_wait_s
        self._engine: Engine | None = None
        self._probe: Engine | None = None  # PostgreSQL: the readiness check's own connection
        self._executor: ThreadPoolExecutor | None = None

    @classmethod
    def for_service(
        cls,
        settings: StoreSettings,
        name: str,
        *,
        migrations: Path,
        seed: Callable[[Connection], None] | None = None,
        write_fault_rate: Callable[[], float] = lambda: 0.0,
    ) -> Database:
        """The store ``settings`` name: ``DATABASE_URL``, else ``<DATA_DIR>/<name>.sqlite3``."""
        return cls(
            settings.store_url(name),
            migrations=migrations,
            seed=seed,
            write_fault_rate=write_fault_rate,
            pool_size=settings.database_pool_size,
        )

    @property
    def path(self) -> Path | None:
        """The SQLite file, or None for PostgreSQL."""
        return Path(self.url.database) if self.engine_name == "sqlite" and self.url.database else None

    @property
    def where(self) -> str:
        return self.url.render_as_string(hide_password=True)

    # ---- lifecycle -----------------------------------------------------------------------------
    async def open(self) -> None:
        """Connect (waiting up to ``connect_wait_s`` for the server), migrate to head, seed."""
        self._executor = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="store")
        self._engine = self._create_engine()
        if self.engine_name == "postgresql":
            self._probe = create_engine(
                self.url, isolation_level="AUTOCOMMIT", pool_size=1, max_overflow=0, pool_timeout=2,
                pool_pre_ping=True,
                connect_args={"connect_timeout": 2, "options": "-c statement_timeout=2000"},
            )  # fmt: skip
        deadline = time.monotonic() + self._connect_wait_s
        try:
            while True:
                try:
                    await self._submit(self._migrate_and_seed)
                    break
                except OperationalError as exc:
                    if self.engine_name == "sqlite":
                        raise
                    if time.monotonic() > deadline:
                        raise StoreUnavailable(f"The store at {self.where} cannot be reached.") from exc
                    log.warning("store %s not reachable yet (%s); retrying", self.where, _reason(exc))
                    await asyncio.sleep(1.0)
        except BaseException:
            await self.close()  # no pool or threads left behind by a start that failed
            raise
        log.info("store %s open", self.where)

    async def close(self) -> None:
        if self._executor is None:
            return
        if self._engine is not None:
            await self._submit(self._engine.dispose)
            self._engine = None
        if self._probe is not None:
            await self._submit(self._probe.dispose)
            self._probe = None
        self._executor.shutdown(wait=True)
        self._executor = None

    @contextlib.asynccontextmanager
    async def lifespan(self, app: object = None) -> AsyncIterator[None]:
        """Open for the life of the app: ``create_app(..., lifespan=db.lifespan)``."""
        await self.open()
        try:
            yield
        finally:
            await self.close()

    # ---- transactions --------------------------------------------------------------------------
    async def read(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in one read-only transaction (a consistent snapshot)."""
        return await self._run(fn, write=False)

    async def write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in one transaction: all of it commits, or none of it. What ``fn`` reads to
        decide what it writes, it reads ``FOR UPDATE`` (see ``for_update``)."""
        if random.random() < self._write_fault_rate():
            raise StoreUnavailable("The store failed to write (injected by chaos.store_error_rate).")
        return await self._run(fn, write=True)

    async def ping(self) -> dict[str, str]:
        """The readiness check. On PostgreSQL it has a connection of its own, so it never waits
        behind the pool's transactions: a burst of slow writes does not make every replica
        unready at once. (SQLite's one writer holds short transactions only.)"""
        if self._probe is None:
            await self.read(lambda conn: conn.execute(text("SELECT 1")).scalar_one())
            return {"store": self.where}
        probe = self._probe
        try:
            await asyncio.to_thread(_select_one, probe)
        except (OperationalError, InterfaceError) as exc:
            raise StoreUnavailable(f"The store does not answer ({_reason(exc)}).") from exc
        return {"store": self.where}

    async def _run(self, fn: Callable[[Connection], T], *, write: bool) -> T:
        deadline.check("a store transaction")  # never begin a transaction no one awaits
        try:
            return await self._submit(lambda: self._transaction(fn, write=write))
        except (OperationalError, InterfaceError) as exc:  # connection, lock, timeout, disk
            log.warning("store %s failed: %s", self.where, _reason(exc))
            raise StoreUnavailable("The store is unavailable, retry later.") from exc
        # Anything else (a constraint, a value out of range, a bad statement) is a bug that a retry
        # cannot fix: it propagates and answers 500.

    def _transaction(self, fn: Callable[[Connection], T], *, write: bool) -> T:
        begin = self._begin(write)
        for attempt in range(1, _ATTEMPTS + 1):
            with self._connection() as conn:
                try:
                    conn.exec_driver_sql(begin)
                except DBAPIError as exc:
                    if exc.connection_invalidated and attempt < _ATTEMPTS:
                        continue  # the server dropped this pooled connection; nothing ran yet
                    raise
                try:
                    result = fn(conn)
                    conn.exec_driver_sql("COMMIT")
                    return result
                except BaseException as exc:
                    with contextlib.suppress(SQLAlchemyError):
                        conn.exec_driver_sql("ROLLBACK")
                    if attempt < _ATTEMPTS and self._retryable(exc):
                        # exponential backoff with full jitter: contenders for one row spread out
                        time.sleep(random.uniform(0, min(0.2, 0.004 * 2**attempt)))
                        continue
                    raise
        raise AssertionError("unreachable")

    def _begin(self, write: bool) -> str:
        if self.engine_name == "sqlite":
            return "BEGIN IMMEDIATE" if write else "BEGIN"
        return "BEGIN" if write else "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"

    def _retryable(self, exc: BaseException) -> bool:
        return (
            self.engine_name == "postgresql"
            and isinstance(exc, DBAPIError)
            and getattr(exc.orig, "sqlstate", None) in _RETRY_SQLSTATES
        )

    # ---- schema --------------------------------------------------------------------------------
    def _migrate_and_seed(self) -> None:
        """Upgrade to head and seed in one transaction; replicas on PostgreSQL take turns."""
        with self._connection() as conn:
            if self.engine_name == "postgresql":
                # read committed: once the lock is ours, each statement sees what the last migrator did
                conn.exec_driver_sql("BEGIN")
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                config = Config()
                config.set_main_option("script_location", str(self._migrations))
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
                if self._seed is not None:
                    self._seed(conn)
                conn.exec_driver_sql("COMMIT")
            except BaseException:
                with contextlib.suppress(SQLAlchemyError):
                    conn.exec_driver_sql("ROLLBACK")
                raise

    # ---- plumbing ------------------------------------------------------------------------------
    def _create_engine(self) -> Engine:
        if self.engine_name == "sqlite":
            assert self.path is not None
            self.path.parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(self.url, isolation_level="AUTOCOMMIT", pool_size=1, max_overflow=0)
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        return create_engine(
            self.url,
            isolation_level="AUTOCOMMIT",  # we say BEGIN ourselves, with the isolation level we want
            pool_size=self._workers,
            max_overflow=0,
            connect_args={"connect_timeout": 5, "options": "-c statement_timeout=10000"},
        )

    @contextlib.contextmanager
    def _connection(self) -> Any:
        if self._engine is None:
            raise StoreUnavailable("The store is not open.")
        with self._engine.connect() as conn:
            yield conn

    async def _submit(self, fn: Callable[[], T]) -> T:
        if self._executor is None:
            raise StoreUnavailable("The store is not open.")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)


def for_update(conn: Connection) -> str:
    """The row-locking clause for a read that decides a write: `` FOR UPDATE`` on PostgreSQL; nothing
    on SQLite, where a write transaction (``BEGIN IMMEDIATE``) already excludes every other writer."""
    return " FOR UPDATE" if conn.dialect.name == "postgresql" else ""


def run_migrations() -> None:
    """The body of every service's ``migrations/env.py``: migrate on the connection
    ``Database`` hands over (online only; there is no offline SQL generation)."""
    from alembic import context

    connection = context.config.attributes["connection"]
    context.configure(connection=connection)
    with context.begin_transaction():  # inside the caller's transaction: a no-op
        context.run_migrations()


def _driver_url(url: URL) -> URL:
    """``postgresql://`` means psycopg 3 (SQLAlchemy would pick psycopg2, which we do not ship)."""
    if url.drivername in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+psycopg")
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # SQLite's own lower() folds ASCII only; PostgreSQL's (UTF-8) folds every letter. Python's,
    # registered under the same name, makes a case-insensitive search the same on both.
    dbapi_connection.create_function("lower", 1, _lower, deterministic=True)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=2000")
    cursor.execute("PRAGMA foreign_keys=ON")
    # WAL is a property of the file, set once by whoever comes first. Switching needs the file to
    # itself and does not wait on the busy timeout, so a second process opening a new file while
    # the first migrates it (two replicas starting together) waits here instead of failing.
    deadline = time.monotonic() + 5.0
    while cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    cursor.close()


def _select_one(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1")).scalar_one()


def _lower(value: str | None) -> str | None:
    return value.lower() if isinstance(value, str) else value


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return f"{type(orig).__name__}: {str(orig).splitlines()[0] if str(orig) else ''}"


# The service's store, provided by its ``create`` (``provide(app, db)``).
DatabaseDep = Annotated[Database, Depends(resource_of(Database))]
