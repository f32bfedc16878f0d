"""The store on each engine, side by side: operations per second and how much the event loop
stalls while a store is busy.

The chassis ``Database`` on SQLite (one worker thread) and on a real PostgreSQL (a pool of five
connections and threads; started from the machine's binaries by msa_testing), and, for
comparison, the same search run directly on the event loop (what the chassis avoids).
Run: ``uv run python scripts/bench_store.py``.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import create_engine

from catalog.main import MIGRATIONS as CATALOG_MIGRATIONS
from catalog.products import repository as catalog_repo
from chassis.store import Database
from inventory.main import MIGRATIONS as INVENTORY_MIGRATIONS
from inventory.stock import repository as inventory_repo
from msa_testing.infra import start_postgres

OPS = 2000
CONCURRENCY = 20


async def probe(lags: list[float], stop: asyncio.Event) -> None:
    """Sleeps 1 ms over and over; how late it wakes is how long the loop was blocked."""
    while not stop.is_set():
        start = time.perf_counter()
        await asyncio.sleep(0.001)
        lags.append((time.perf_counter() - start - 0.001) * 1000)


async def run(name: str, op: Callable[[int], Awaitable[object]]) -> None:
    lags: list[float] = []
    stop = asyncio.Event()
    prober = asyncio.create_task(probe(lags, stop))
    queue = iter(range(OPS))

    async def worker() -> None:
        for n in queue:
            await op(n)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - start
    stop.set()
    await prober
    lags.sort()
    print(
        f"{name:<38} {OPS / elapsed:8.0f} ops/s   loop lag ms: p50 {statistics.median(lags):6.2f}"
        f"  p99 {lags[int(len(lags) * 0.99)]:6.2f}  max {lags[-1]:6.2f}  ({len(lags)} probes)"
    )


async def engine_run(label: str, catalog_url: str, inventory_url: str) -> None:
    catalog = Database(catalog_url, migrations=CATALOG_MIGRATIONS, seed=catalog_repo.seed)
    inventory = Database(inventory_url, migrations=INVENTORY_MIGRATIONS, seed=inventory_repo.seed)
    await catalog.open()
    await inventory.open()
    try:

        async def search(n: int) -> object:
            return await catalog.read(
                lambda conn: catalog_repo.search(conn, q="e", category=None, offset=n % 3 * 10, limit=20)
            )

        async def reserve_release(n: int) -> object:
            await inventory.write(lambda conn: inventory_repo.reserve(conn, f"b-{n}", [("p-1001", 1)]))
            return await inventory.write(lambda conn: inventory_repo.release(conn, f"b-{n}"))

        await run(f"{label}: catalog search", search)
        await run(f"{label}: reserve+release one SKU", reserve_release)
    finally:
        await catalog.close()
        await inventory.close()


async def main() -> None:
    print(f"{OPS} operations, {CONCURRENCY} at a time")
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_catalog = f"sqlite:///{Path(tmp) / 'catalog.sqlite3'}"
        await engine_run("SQLite", sqlite_catalog, f"sqlite:///{Path(tmp) / 'inventory.sqlite3'}")

        # The same search run on the loop itself, for comparison (what the chassis avoids).
        with create_engine(sqlite_catalog).connect() as direct:

            async def search_on_loop(n: int) -> object:
                await asyncio.sleep(0)
                return catalog_repo.search(direct, q="e", category=None, offset=n % 3 * 10, limit=20)

            await run("SQLite: catalog search ON the loop", search_on_loop)

    postgres = start_postgres()
    try:
        await engine_run(
            "PostgreSQL", postgres.create_database("catalog"), postgres.create_database("inventory")
        )
    finally:
        postgres.stop()


if __name__ == "__main__":
    asyncio.run(main())
