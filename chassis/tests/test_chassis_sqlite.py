"""chassis.sqlite.Database: transactions, idempotent seeding, injected write faults, off-loop work."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from chassis.sqlite import Database, StoreUnavailable

SCHEMA = "CREATE TABLE IF NOT EXISTS items (name TEXT PRIMARY KEY, n INTEGER NOT NULL);"


def seed(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT OR IGNORE INTO items VALUES ('seeded', 1)")


async def test_a_failing_write_rolls_back_whole(tmp_path: Path) -> None:
    db = Database(tmp_path / "s.sqlite3", schema=SCHEMA, seed=seed)
    await db.open()
    try:

        def half_then_fail(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO items VALUES ('a', 1)")
            raise ValueError("boom")

        with pytest.raises(ValueError, match="boom"):
            await db.write(half_then_fail)
        names = await db.read(lambda conn: [r[0] for r in conn.execute("SELECT name FROM items")])
        assert names == ["seeded"]
    finally:
        await db.close()


async def test_seeding_twice_keeps_one_copy_and_data_survives(tmp_path: Path) -> None:
    for n in range(2):
        db = Database(tmp_path / "s.sqlite3", schema=SCHEMA, seed=seed)
        await db.open()
        await db.write(lambda conn, n=n: conn.execute("INSERT INTO items VALUES (?, ?)", (f"run-{n}", n)))
        await db.close()
    with sqlite3.connect(tmp_path / "s.sqlite3") as conn:
        assert conn.execute("SELECT name FROM items ORDER BY name").fetchall() == [
            ("run-0",),
            ("run-1",),
            ("seeded",),
        ]


async def test_injected_write_faults_change_nothing(tmp_path: Path) -> None:
    rate = 1.0
    db = Database(tmp_path / "s.sqlite3", schema=SCHEMA, write_fault_rate=lambda: rate)
    await db.open()
    try:
        with pytest.raises(StoreUnavailable):
            await db.write(lambda conn: conn.execute("INSERT INTO items VALUES ('x', 1)"))
        rate = 0.0  # read on every write: a config refresh heals it
        await db.write(lambda conn: conn.execute("INSERT INTO items VALUES ('y', 1)"))
        names = await db.read(lambda conn: [r[0] for r in conn.execute("SELECT name FROM items")])
        assert names == ["y"]
    finally:
        await db.close()


async def test_work_runs_off_the_event_loop_thread(tmp_path: Path) -> None:
    db = Database(tmp_path / "s.sqlite3", schema=SCHEMA)
    await db.open()
    try:
        worker = await db.read(lambda conn: threading.get_ident())
        assert worker != threading.get_ident()
    finally:
        await db.close()


async def test_a_broken_file_is_503_not_500(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    db = Database(path, schema=SCHEMA)
    await db.open()
    try:
        with pytest.raises(StoreUnavailable):
            await db.read(lambda conn: conn.execute("SELECT * FROM missing_table").fetchall())
    finally:
        await db.close()


async def test_lifespan_opens_for_the_app_and_closes_after(tmp_path: Path) -> None:
    db = Database(tmp_path / "s.sqlite3", schema=SCHEMA, seed=seed)
    with pytest.raises(StoreUnavailable):
        await db.ping()
    async with db.lifespan():
        assert await db.read(lambda conn: conn.execute("SELECT count(*) FROM items").fetchone()[0]) == 1
    with pytest.raises(StoreUnavailable):
        await db.ping()
