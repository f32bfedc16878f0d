"""Fault injection by configuration, end to end, with real processes and a config repository made by
the test: a commit of ``chaos.error_rate: 1.0`` breaks every domain service's API (health stays up)
and a revert heals them in the same processes; orders placed while inventory and the orders store
fail leave the two stores consistent once recovery has run."""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from msa_testing.configrepo import ConfigRepo
from msa_testing.fixtures import Topology

pytestmark = pytest.mark.system

SP = "deploy/config-repo"
# An API route of each service that needs no token (orders answers 401 there when healthy:
# the chaos dependency runs before authentication).
PROBES = {
    "catalog": ("/products?size=1", 200),
    "inventory": ("/stock/p-1001", 200),
    "reviews": ("/summaries?product_ids=p-1001", 200),
    "orders": ("/orders", 401),
}


def commit_chaos(repo: ConfigRepo, error_rate: float) -> None:
    """Replace the ``chaos:`` block of each domain service's file and commit."""
    for service in PROBES:
        path = repo.root / SP / f"{service}.yml"
        lines, in_chaos = [], False
        for line in path.read_text().splitlines():
            if line.startswith("chaos:"):
                in_chaos = True
            elif not (in_chaos and line.startswith((" ", "\t"))):
                in_chaos = False
                lines.append(line)
        path.write_text("\n".join([*lines, "chaos:", f"  error_rate: {error_rate}", ""]))
    repo.commit(f"chaos.error_rate {error_rate}")


def wait_until(what: str, check: Callable[[], bool], timeout_s: float = 30.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if check():
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def status(topo: Topology, service: str) -> int:
    path, _ = PROBES[service]
    return httpx.get(f"{topo.url(service)}{path}", timeout=5).status_code


def test_a_chaos_commit_breaks_and_a_revert_heals_without_restart(
    make_topology: Callable[..., Topology], tmp_path: Path
) -> None:
    repo = ConfigRepo.copy_of_platform(tmp_path / "config-repo")
    repo.commit("init")
    topo = make_topology(
        only={"config-service", *PROBES},
        env={"config-service": {"CONFIG_REPO_URI": str(repo.root), "CONFIG_SEARCH_PATHS": SP}},
    )
    pids = {service: topo.service(service).process.pid for service in PROBES}  # type: ignore[union-attr]
    for service, (_, healthy) in PROBES.items():
        assert status(topo, service) == healthy, service

    commit_chaos(repo, 1.0)
    for service in PROBES:
        delay = wait_until(f"{service} to fail", lambda s=service: status(topo, s) == 500)  # type: ignore[misc]
        print(f"\n{service}: answering 500 (waited {delay:.1f} s more)")
        assert httpx.get(f"{topo.url(service)}/health/ready", timeout=5).status_code == 200

    commit_chaos(repo, 0.0)
    for service, (_, healthy) in PROBES.items():
        wait_until(f"{service} to heal", lambda s=service, h=healthy: status(topo, s) == h)  # type: ignore[misc]
    assert {s: topo.service(s).process.pid for s in PROBES} == pids  # type: ignore[union-attr]


ORDERS_YML = """http:
  timeout_s: 1.0
breaker:
  fail_max: 50
  reset_timeout_s: 0.5
abandoned_after_s: 2.0
recovery_interval_s: 0.5
chaos:
  store_error_rate: {store}
"""
INVENTORY_YML = "chaos:\n  error_rate: {rate}\n"


def test_orders_under_inventory_and_store_faults_leave_consistent_stores(
    make_topology: Callable[..., Topology], tmp_path: Path
) -> None:
    repo = ConfigRepo.copy_of_platform(tmp_path / "config-repo")
    repo.commit(
        "faults on",
        **{"orders.yml": ORDERS_YML.format(store=0.2), "inventory.yml": INVENTORY_YML.format(rate=0.3)},
    )
    topo = make_topology(
        only={"config-service", "auth-service", "catalog", "inventory", "orders"},
        env={"config-service": {"CONFIG_REPO_URI": str(repo.root), "CONFIG_SEARCH_PATHS": SP}},
    )
    answer = httpx.post(
        f"{topo.url('auth-service')}/oauth/token",
        data={"grant_type": "password", "username": "alice", "password": "alice-password"},
        auth=("web", "dev-only-web-secret"),
        timeout=10,
    )
    token = answer.json()["access_token"]
    rng = random.Random(11)
    products = ["p-1001", "p-1002", "p-1005", "p-1014", "p-1016", "p-1023", "p-1026", "p-1030"]
    codes: dict[int, int] = {}
    with httpx.Client(base_url=topo.url("orders"), timeout=10) as client:
        for n in range(40):
            lines = [
                {"product_id": p, "quantity": rng.randint(1, 2)}
                for p in rng.sample(products, rng.randint(1, 3))
            ]
            headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": f"faults-{n}"}
            code = client.post("/orders", json={"lines": lines}, headers=headers).status_code
            codes[code] = codes.get(code, 0) + 1
    print(f"\nanswers under faults: {codes}")
    assert codes.get(201, 0) >= 5
    assert sum(v for k, v in codes.items() if k >= 500) >= 5

    repo.commit(
        "faults off",
        **{"orders.yml": ORDERS_YML.format(store=0.0), "inventory.yml": INVENTORY_YML.format(rate=0.0)},
    )
    orders_db = Path(topo.env("orders")["DATA_DIR"]) / "orders.sqlite3"
    inventory_db = Path(topo.env("inventory")["DATA_DIR"]) / "inventory.sqlite3"

    def settled() -> bool:
        with sqlite3.connect(orders_db) as conn:
            return (
                conn.execute("SELECT COUNT(*) FROM idempotency_keys WHERE state != 'done'").fetchone()[0] == 0
            )

    waited = wait_until("recovery to release abandoned attempts", settled, timeout_s=60)
    print(f"recovery settled {waited:.1f} s after the faults were turned off")
    with sqlite3.connect(orders_db) as conn:
        confirmed = {r[0] for r in conn.execute("SELECT id FROM orders WHERE status = 'confirmed'")}
    with sqlite3.connect(inventory_db) as conn:
        held = {r[0] for r in conn.execute("SELECT order_id FROM reservations WHERE status = 'reserved'")}
        counters = dict(conn.execute("SELECT sku, reserved FROM stock WHERE reserved > 0").fetchall())
        from_lines = dict(
            conn.execute(
                "SELECT l.sku, SUM(l.quantity) FROM reservation_lines l JOIN reservations r USING (order_id) "
                "WHERE r.status = 'reserved' GROUP BY l.sku"
            ).fetchall()
        )
    assert confirmed == held  # no order without a reservation, no reservation without an order
    assert counters == from_lines
    assert len(confirmed) == codes.get(201, 0)
