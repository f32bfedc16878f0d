"""How much does SQLite access stall the event loop? Prints loop lag while a store is busy.

Compares the chassis ``Database`` (one worker thread per store) with the same queries run
directly on the event loop. Run: ``uv run python scripts/bench_sqlite_loop.py``.
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from catalog.products import repository as catalog_repo
from chassis.sqlite import Database
from inventory.stock import repository as inventory_repo

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


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        catalog = Database(Path(tmp) / "catalog.sqlite3", schema=catalog_repo.SCHEMA, seed=catalog_repo.seed)
        inventory = Database(
            Path(tmp) / "inventory.sqlite3", schema=inventory_repo.SCHEMA, seed=inventory_repo.seed
        )
        await catalog.open()
        await inventory.open()

        async def search(n: int) -> object:
            return await catalog.read(
                lambda conn: catalog_repo.search(conn, q="e", category=None, offset=n % 3 * 10, limit=20)
            )

        async def reserve_release(n: int) -> object:
            await inventory.write(lambda conn: inventory_repo.reserve(conn, f"b-{n}", [("p-1001", 1)]))
            return await inventory.write(lambda conn: inventory_repo.release(conn, f"b-{n}"))

        await run("catalog search via worker thread", search)
        await run("inventory reserve+release via thread", reserve_release)

        # The same search run on the loop itself, for comparison (what the chassis avoids).
        direct = sqlite3.connect(Path(tmp) / "catalog.sqlite3")
        direct.row_factory = sqlite3.Row

        async def search_on_loop(n: int) -> object:
            await asyncio.sleep(0)
            return catalog_repo.search(direct, q="e", category=None, offset=n % 3 * 10, limit=20)

        await run("catalog search ON the loop (blocking)", search_on_loop)
        direct.close()
        await catalog.close()
        await inventory.close()


if __name__ == "__main__":
    asyncio.run(main())
