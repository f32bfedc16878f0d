"""Beyond one machine, measured side by side in one run: the product page and placing an order
with the domain services on SQLite and on PostgreSQL, and the page with one and two catalogs.

Starts the topology as ``msa dev up`` does (free ports, a private redis-server, a span sink
standing in for Zipkin) twice: stores on SQLite (the default), then on a PostgreSQL started from
the machine's binaries, a database per service (``docker-compose.scale.yml``'s layout). On the
PostgreSQL stack, nginx round-robins a gateway's catalog calls over one catalog process, then over
two (a second replica on the same database). For each:

- the web product page: requests/s at 16 connections (wrk) and p50 at one connection;
- orders through the mobile gateway: p50 of 60 placed one after another, and orders/s of 120
  placed 16 at a time (each a new Idempotency-Key; all must be 201).

    uv run python scripts/bench_scale.py [--seconds 5]   # needs wrk, PostgreSQL; nginx for the replicas
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import httpx

from msa_cli.devstack import DevStack
from msa_testing.bench import BELOW_CAPACITY, nginx_proxy, span_sink, start_variant, wait_ok, wrk
from msa_testing.infra import start_postgres

REPO = Path(__file__).resolve().parents[1]
PAGE = "/api/products/p-1001"
SKUS = ["p-1002", "p-1016", "p-1021", "p-1026"]  # 170-195 units each: 180 orders never run short
STORES = ["catalog", "inventory", "reviews", "orders"]


def page(url: str, seconds: float) -> tuple[float, float]:
    """(requests/s at 16 connections, p50 ms at one)."""
    wrk(url, 16, 1)  # warm-up
    _, rps, _ = wrk(url, 16, seconds)
    _, _, p50 = wrk(url, 1, max(2.0, seconds / 2))
    return rps, p50 or float("nan")


def orders(mobile_url: str) -> tuple[float, float]:
    """(p50 ms of orders placed one at a time, orders/s placed 16 at a time)."""
    with httpx.Client(base_url=mobile_url, timeout=30) as client:
        login = client.post("/auth/token", json={"username": "bob", "password": "bob-password"})
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}

        def place(n: int) -> float:
            started = time.perf_counter()
            answer = client.post(
                "/m/orders",
                json={"lines": [{"product_id": SKUS[n % len(SKUS)], "quantity": 1}]},
                headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
            )
            if answer.status_code != 201:
                raise RuntimeError(f"order {n}: {answer.status_code} {answer.text}")
            return (time.perf_counter() - started) * 1000

        one_by_one = [place(n) for n in range(60)]
        started = time.perf_counter()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(place, range(120)))
        per_second = 120 / (time.perf_counter() - started)
    return statistics.median(one_by_one), per_second


def stack_on(exit_stack: ExitStack, state: Path, sink: str, database_urls: dict[str, str]) -> DevStack:
    state.mkdir(parents=True)
    (state / "logs").mkdir()
    dev = DevStack(
        compose_file=REPO / "docker-compose.yml",
        state_dir=state,
        free_ports=True,
        zipkin_url=sink,
        # below capacity, as bench_gateway: load shedding with the code's default limits
        env_overrides={
            "*": BELOW_CAPACITY,
            **{name: {"DATABASE_URL": url} for name, url in database_urls.items()},
        },
    )
    dev.plan()
    exit_stack.callback(dev.stop)
    dev.start()
    dev.wait_ready(timeout_s=180)
    return dev


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each 16-connection page run")
    options = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench_scale needs wrk: apt-get install -y wrk (bash scripts/test.sh installs it)")
    rows: list[tuple[str, str]] = []

    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        sink = stack.enter_context(span_sink())
        sqlite = stack_on(stack, Path(tmp) / "sqlite", sink, {})
        rps, p50 = page(sqlite.url("gateway-web") + PAGE, options.seconds)
        rows.append(("product page, SQLite", f"{rps:7.0f} pages/s   p50 {p50:6.2f} ms"))
        p50, per_s = orders(sqlite.url("gateway-mobile"))
        rows.append(("order, SQLite", f"{per_s:7.0f} orders/s  p50 {p50:6.2f} ms"))
        sqlite.stop()

        postgres = start_postgres()
        stack.callback(postgres.stop)
        urls = {name: postgres.create_database(name) for name in STORES}
        pg = stack_on(stack, Path(tmp) / "postgres", sink, urls)
        rps, p50 = page(pg.url("gateway-web") + PAGE, options.seconds)
        rows.append(("product page, PostgreSQL", f"{rps:7.0f} pages/s   p50 {p50:6.2f} ms"))
        p50, per_s = orders(pg.url("gateway-mobile"))
        rows.append(("order, PostgreSQL", f"{per_s:7.0f} orders/s  p50 {p50:6.2f} ms"))

        second = start_variant(pg, "catalog", "catalog-2", {})
        for label, ports in (("one catalog", [pg.services["catalog"].port]),
                             ("two catalogs", [pg.services["catalog"].port, second])):  # fmt: skip
            proxy = nginx_proxy(stack, Path(tmp), label.replace(" ", "-"), ports)
            if proxy is None:
                rows.append((f"product page, PostgreSQL, {label} behind nginx", "(nginx not installed)"))
                continue
            gateway = start_variant(
                pg,
                "gateway-web",
                f"gateway-web-{len(ports)}",
                {"CATALOG_URL": f"http://127.0.0.1:{proxy.port}"},
            )
            url = f"http://127.0.0.1:{gateway}{PAGE}"
            wait_ok(url)
            rps, p50 = page(url, options.seconds)
            rows.append(
                (f"product page, PostgreSQL, {label} behind nginx", f"{rps:7.0f} pages/s   p50 {p50:6.2f} ms")
            )

    print(
        f"\nbench_scale: wrk 16 connections x {options.seconds:g} s for pages; orders through gateway-mobile"
    )
    for label, figures in rows:
        print(f"{label:<52} {figures}")


if __name__ == "__main__":
    main()
