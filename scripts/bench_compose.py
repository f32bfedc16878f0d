"""The platform under Docker, measured in one run: build times, start-up, memory per container.

From a throwaway copy of the working tree (compose project ``msa-platform-bench``), it prints:
- cold build: every Python image with no layer cache (``--prune`` also drops BuildKit's cache
  mounts, so uv downloads every wheel again: the first build on a new machine);
- warm build: the same after a one-line change to one service's source (dependency layers cached);
- ``up --wait`` until every container is healthy;
- memory (``docker stats``) of each container idle, then after N requests through both gateways.

    uv run python scripts/bench_compose.py [--requests 1000] [--prune]

Needs a running Docker engine with Compose v2 and the base images (scripts/test.sh provides
them). Where the ELK images cannot be had, the stack runs without them, as the containers tier.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from msa_testing.containers import ComposeStack, copy_working_tree, docker_problem

CHANGED = "services/catalog/src/catalog/main.py"


def _timed(step: str, action: Callable[[], object]) -> float:
    started = time.monotonic()
    action()
    took = time.monotonic() - started
    print(f"  {step}: {took:.1f} s", flush=True)
    return took


def _traffic(stack: ComposeStack, requests: int) -> float:
    paths = [
        (stack.url("gateway-web"), "/api/products/p-1001"),
        (stack.url("gateway-web"), "/api/products?size=10"),
        (stack.url("gateway-mobile"), "/m/products?limit=10"),
        (stack.url("gateway-mobile"), "/m/products/p-1002"),
    ]

    def one(i: int) -> int:
        base, path = paths[i % len(paths)]
        return httpx.get(base + path, timeout=10).status_code

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(one, range(requests)))
    took = time.monotonic() - started
    failed = sum(status != 200 for status in statuses)
    print(f"  {requests} requests through both gateways (8 at a time): {took:.1f} s, {failed} not 200")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--prune", action="store_true", help="drop BuildKit's cache (cache mounts too) first")
    args = parser.parse_args()
    problem = docker_problem()
    if problem:
        raise SystemExit(f"bench_compose: {problem}")
    with tempfile.TemporaryDirectory(prefix="msa-bench-") as tmp:
        stack = ComposeStack(copy_working_tree(Path(tmp)), project="msa-platform-bench")
        stack.down("-v")
        print(f"stack: {len(stack.services)} services", end="")
        print(f"; left out: {', '.join(stack.left_out)} (no image)" if stack.left_out else "")
        try:
            if args.prune:
                subprocess.run(["docker", "builder", "prune", "-af"], check=True, capture_output=True)
            cold = _timed(
                "cold build (no layer cache)", lambda: stack.compose("build", "--no-cache", timeout=1800)
            )
            changed = stack.directory / CHANGED
            changed.write_text(changed.read_text() + "# a one-line change\n")
            warm = _timed(f"warm build after a one-line change to {CHANGED}", stack.build)
            up = _timed("up --wait, every container healthy", stack.up)
            time.sleep(10)
            idle = stack.memory()
            _traffic(stack, args.requests)
            time.sleep(2)
            busy = stack.memory()
        finally:
            stack.down("-v")
    print(f"\n{'container':16} {'idle MiB':>9} {f'after {args.requests}':>11} {'limit MiB':>10}")
    for service in sorted(idle):
        print(f"{service:16} {idle[service][0]:9.1f} {busy[service][0]:11.1f} {idle[service][1]:10.0f}")
    total_idle, total_busy = sum(v[0] for v in idle.values()), sum(v[0] for v in busy.values())
    print(f"{'total':16} {total_idle:9.1f} {total_busy:11.1f} {sum(v[1] for v in idle.values()):10.0f}")
    print(
        f"\ncold build {cold:.0f} s, warm build {warm:.0f} s ({warm / cold:.0%} of cold), up --wait {up:.0f} s"
    )


if __name__ == "__main__":
    main()
