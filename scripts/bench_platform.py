"""Start-up time, memory per service, and the price of the gateway hop, measured in one run.

Starts the topology the way `msa dev up` does (free ports, private redis-server), then prints:
seconds until every /health/ready answered, resident memory of each process, and latency of
the same listing fetched through gateway-web, through gateway-mobile, and from catalog directly.

    uv run python scripts/bench_platform.py [N]
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
N = int(sys.argv[1]) if len(sys.argv) > 1 else 300


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _latencies(client: httpx.Client, url: str) -> list[float]:
    for _ in range(20):
        client.get(url).raise_for_status()
    samples = []
    for _ in range(N):
        start = time.perf_counter()
        client.get(url).raise_for_status()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def main() -> None:
    with tempfile.TemporaryDirectory() as state:
        stack = DevStack(
            compose_file=REPO / "docker-compose.yml",
            state_dir=Path(state),
            free_ports=True,
            zipkin_url="http://127.0.0.1:9",
        )
        start = time.perf_counter()
        try:
            stack.plan()
            stack.start()
            stack.wait_ready(timeout_s=180)
            startup = time.perf_counter() - start
            time.sleep(2)  # let lazy imports settle before reading memory
            print(
                f"start-up: every service ready {startup:.1f} s after launch ({len(stack.services)} services)"
            )
            total = 0.0
            for service in stack.services.values():
                assert service.process is not None
                rss = _rss_mib(service.process.pid)
                total += rss
                print(f"  {service.name:<16} RSS {rss:6.1f} MiB")
            print(f"  {'all services':<16} RSS {total:6.1f} MiB")
            with httpx.Client(timeout=10) as client:
                rows = [
                    ("catalog direct  /products", stack.url("catalog") + "/products?size=20"),
                    ("gateway-web     /api/products", stack.url("gateway-web") + "/api/products?size=20"),
                    ("gateway-mobile  /m/products", stack.url("gateway-mobile") + "/m/products?limit=20"),
                ]
                results = [(name, _latencies(client, url)) for name, url in rows]
            base = statistics.median(results[0][1])
            print(f"latency over {N} sequential requests (after 20 warm-up):")
            for name, samples in results:
                q = statistics.quantiles(samples, n=100)
                print(
                    f"  {name:<32} p50 {q[49]:6.2f} ms  p99 {q[98]:6.2f} ms  x{q[49] / base:4.2f} of direct"
                )
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
