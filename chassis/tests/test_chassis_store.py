"""chassis.store.Database on both engines (a SQLite file and a real PostgreSQL): migrations and
seeding at start-up, whole transactions, injected write faults, off-loop work, replicas that
write concurrently without losing an update, and a PostgreSQL outage that is a 503 and heals."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from chassis.store import Database, StoreSettings, StoreUnavailable, for_update
from msa_cli.devstack import free_port
from msa_testing.infra import PostgresServer

MIGRATIONS = Path(__file__).parent / "store_migrations"


def seed(conn: Connection) -> None:
    conn.execute(text("INSERT INTO items (name, n) VALUES ('seeded', 1) ON CONFLICT (name) DO NOTHING"))


def names(conn: Connection) -> list[str]:
    return list(conn.execute(text("SELECT name FROM items ORDER BY name")).scalars())


def store(url: str, **kwargs: object) -> Database:
    return Database(url, migrations=MIGRATIONS, **kwargs)  # type: ignore[arg-type]


async def test_a_failing_write_rolls_back_whole(database_url: str) -> None:
    db = store(database_url, seed=seed)
    async with db.lifespan():

        def half_then_fail(conn: Connection) -> None:
            conn.execute(text("INSERT INTO items (name, n) VALUES ('a', 1)"))
            raise ValueError("boom")

        with pytest.raises(ValueError, match="boom"):
            await db.write(half_then_fail)
        assert await db.read(names) == ["seeded"]


async def test_start_up_migrates_to_head_and_seeds_once(database_url: str) -> None:
    for n in range(2):
        db = store(database_url, seed=seed)
        await db.open()
        await db.write(
            lambda conn, n=n: conn.execute(
                text("INSERT INTO items (name, n, note) VALUES (:name, :n, 'second revision')"),
                {"name": f"run-{n}", "n": n},
            )
        )
        await db.close()
    db = store(database_url)
    await db.open()
    try:
        assert await db.read(names) == ["run-0", "run-1", "seeded"]
        version = await db.read(
            lambda conn: conn.execute(text("SELECT version_num FROM alembic_version")).all()
        )
        assert version == [("0002",)]
    finally:
        await db.close()


async def test_injected_write_faults_change_nothing(database_url: str) -> None:
    rate = 1.0
    db = store(database_url, write_fault_rate=lambda: rate)
    await db.open()
    try:
        with pytest.raises(StoreUnavailable):
            await db.write(lambda conn: conn.execute(text("INSERT INTO items (name, n) VALUES ('x', 1)")))
        rate = 0.0  # read on every write: a config refresh heals it
        await db.write(lambda conn: conn.execute(text("INSERT INTO items (name, n) VALUES ('y', 1)")))
        assert await db.read(names) == ["y"]
    finally:
        await db.close()


async def test_work_runs_off_the_event_loop_thread(database_url: str) -> None:
    db = store(database_url)
    await db.open()
    try:
        worker = await db.read(lambda conn: threading.get_ident())
        assert worker != threading.get_ident()
    finally:
        await db.close()


async def test_a_broken_constraint_is_a_bug_not_an_outage(database_url: str) -> None:
    db = store(database_url)
    await db.open()
    try:
        with pytest.raises(IntegrityError):  # a 500 and a logged bug, not a 503 "retry later"
            await db.write(lambda conn: conn.execute(text("INSERT INTO items (name, n) VALUES ('neg', -1)")))
        assert await db.read(names) == []
    finally:
        await db.close()


async def test_lifespan_opens_for_the_app_and_closes_after(database_url: str) -> None:
    db = store(database_url, seed=seed)
    with pytest.raises(StoreUnavailable):
        await db.ping()
    async with db.lifespan():
        assert await db.read(lambda conn: conn.execute(text("SELECT count(*) FROM items")).scalar_one()) == 1
    with pytest.raises(StoreUnavailable):
        await db.ping()


async def test_two_replicas_increment_one_row_without_losing_an_update(database_url: str) -> None:
    """Read-modify-write from two Database objects (two replicas), many at once: the database
    serializes them (SQLite: one writer; PostgreSQL: the row lock), nothing in this process does."""
    replicas = [store(database_url, seed=seed), store(database_url, seed=seed)]
    await asyncio.gather(*(db.open() for db in replicas))  # both migrate at once: one wins, one adopts

    def increment(conn: Connection) -> None:
        n = conn.execute(text(f"SELECT n FROM items WHERE name = 'seeded'{for_update(conn)}")).scalar_one()
        conn.execute(text("UPDATE items SET n = :n WHERE name = 'seeded'"), {"n": n + 1})

    try:
        await asyncio.gather(*(replicas[i % 2].write(increment) for i in range(60)))
        final = await replicas[0].read(
            lambda conn: conn.execute(text("SELECT n FROM items WHERE name = 'seeded'")).scalar_one()
        )
        assert final == 61
    finally:
        await asyncio.gather(*(db.close() for db in replicas))


async def test_postgres_down_is_a_503_and_the_store_heals_when_it_is_back(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.create_database("outage")
    db = store(url, seed=seed)
    await db.open()
    try:
        assert await db.read(names) == ["seeded"]
        postgres_server.halt()
        try:
            with pytest.raises(StoreUnavailable):
                await db.read(names)
            with pytest.raises(StoreUnavailable):
                await db.ping()
        finally:
            postgres_server.resume()
        # The pooled connections died with the server: the next transaction gets a fresh one.
        await db.write(lambda conn: conn.execute(text("INSERT INTO items (name, n) VALUES ('after', 2)")))
        assert await db.read(names) == ["after", "seeded"]
    finally:
        await db.close()


def test_a_store_url_names_a_supported_engine() -> None:
    with pytest.raises(ValueError, match="unsupported store"):
        Database("mysql://db/x", migrations=MIGRATIONS)
    assert (
        Database("postgresql://u:secret@db/x", migrations=MIGRATIONS).where
        == "postgresql+psycopg://u:***@db/x"
    )


def test_production_refuses_a_dev_only_database_password(tmp_path: Path) -> None:
    dev_url = "postgresql://catalog:dev-only-catalog-db-password@postgres:5432/catalog"
    with pytest.raises(ValueError, match="DATABASE_URL"):
        StoreSettings(env="production", database_url=dev_url, ops_token="real-token-for-this-test")
    kept = StoreSettings(
        env="production",
        database_url=dev_url.replace("dev-only-", "s3cret-"),
        ops_token="real-token-for-this-test",
    )
    assert "s3cret" not in repr(kept)  # a secret, never printed
    assert (
        StoreSettings(data_dir=tmp_path).store_url("catalog")
        == f"sqlite:///{tmp_path.resolve() / 'catalog.sqlite3'}"
    )


async def test_a_server_that_never_answers_fails_the_start_with_a_clear_error_and_leaves_nothing() -> None:
    nobody = f"postgresql://u:p@127.0.0.1:{free_port()}/x"  # nothing listens there
    db = Database(nobody, migrations=MIGRATIONS, connect_wait_s=1.5)
    with pytest.raises(StoreUnavailable, match="cannot be reached"):
        await db.open()
    with pytest.raises(StoreUnavailable, match="not open"):
        await db.ping()


async def test_readiness_answers_while_every_pooled_connection_is_busy(
    postgres_server: PostgresServer,
) -> None:
    db = Database(postgres_server.create_database("busy"), migrations=MIGRATIONS, pool_size=2)
    await db.open()
    try:
        slow = [
            asyncio.create_task(db.write(lambda conn: conn.execute(text("SELECT pg_sleep(1.5)"))))
            for _ in range(4)
        ]
        await asyncio.sleep(0.3)  # both pooled connections taken, two writes queued behind them
        started = time.monotonic()
        assert "/busy_" in (await db.ping())["store"]
        assert time.monotonic() - started < 0.5, "the probe did not wait for the pool"
        await asyncio.gather(*slow)
    finally:
        await db.close()
