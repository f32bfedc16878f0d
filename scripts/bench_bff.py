"""What aggregation costs and saves: the web product page through gateway-web, side by side with
the same three downstream calls made directly (one after another, and their slowest alone).

Starts the product-page part of the topology the way `msa dev up` does (free ports, private
redis-server, no Zipkin), then for N rounds measures, in turn:
  gateway   GET gateway-web /api/products/{id} (catalog, inventory, reviews fetched concurrently)
  direct    the three calls straight to catalog, inventory and reviews, sequentially (their sum)
and prints p50/p90/p99 of the gateway page, of the sequential sum, and of the slowest single call of
each round (what perfect concurrency with zero gateway cost would give). Twice: as the services are,
and with 20 ms added to every domain request (``CHAOS__LATENCY_MS=20``, as a network or a database
would), where fetching concurrently pays off.

    uv run python scripts/bench_bff.py [N]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from msa_cli.devstack import DevStack

REPO = Path(__file__).resolve().parents[1]
N = int(sys.argv[1]) if len(sys.argv) > 1 else 200
SERVICES = {"config-service", "auth-service", "catalog", "inventory", "reviews", "gateway-web"}
PRODUCTS = [f"p-{1001 + i}" for i in range(32)]


def _ms(client: httpx.Client, url: str) -> float:
    start = time.perf_counter()
    client.get(url).raise_for_status()
    return (time.perf_counter() - start) * 1000


def _row(name: str, samples: list[float]) -> str:
    q = statistics.quantiles(samples, n=100)
    return f"  {name:<44} p50 {q[49]:7.2f} ms  p90 {q[89]:7.2f} ms  p99 {q[98]:7.2f} ms"


def main() -> None:
    for latency_ms in (0, 20):
        run(latency_ms)


def run(latency_ms: int) -> None:
    slow = {name: {"CHAOS__LATENCY_MS": str(latency_ms)} for name in ("catalog", "inventory", "reviews")}
    with tempfile.TemporaryDirectory() as state:
        stack = DevStack(
            compose_file=REPO / "docker-compose.yml",
            state_dir=Path(state),
            free_ports=True,
            zipkin_url="http://127.0.0.1:9",  # nothing listens: spans are dropped, as in a quiet run
            only=SERVICES,
            env_overrides=slow if latency_ms else {},
        )
        try:
            stack.plan()
            stack.start()
            stack.wait_ready(timeout_s=180)
            web, catalog = stack.url("gateway-web"), stack.url("catalog")
            inventory, reviews = stack.url("inventory"), stack.url("reviews")
            gateway: list[float] = []
            summed: list[float] = []
            slowest: list[float] = []
            with httpx.Client(timeout=10) as client:
                for round_ in range(N + 20):
                    pid = PRODUCTS[round_ % len(PRODUCTS)]
                    page = _ms(client, f"{web}/api/products/{pid}")
                    direct = [
                        _ms(client, f"{catalog}/products/{pid}"),
                        _ms(client, f"{inventory}/stock?skus={pid}"),
                        _ms(client, f"{reviews}/products/{pid}/reviews?size=5"),
                    ]
                    if round_ >= 20:  # the first rounds warm connections and caches
                        gateway.append(page)
                        summed.append(sum(direct))
                        slowest.append(max(direct))
            print(
                f"web product page, {N} rounds (after 20 warm-up), one client, loopback, "
                f"{latency_ms} ms added per domain request:"
            )
            print(_row("gateway-web /api/products/{id} (concurrent)", gateway))
            print(_row("direct: 3 calls one after another (sum)", summed))
            print(_row("direct: slowest of the 3 calls (ideal)", slowest))
            print(
                f"  gateway p50 is x{statistics.median(gateway) / statistics.median(summed):.2f} of the sequential "
                f"sum and x{statistics.median(gateway) / statistics.median(slowest):.2f} of the slowest call"
            )
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
