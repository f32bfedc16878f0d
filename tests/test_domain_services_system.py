"""The domain services as real processes (wired from docker-compose.yml by the dev runner) with a
real auth-service: tokens verified against its JWKS, data in each service's own DATA_DIR volume,
orders reserving stock in inventory, and nothing held when inventory is gone."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from msa_testing.fixtures import Topology

pytestmark = pytest.mark.system

SERVICES = {"auth-service", "catalog", "inventory", "reviews", "orders"}
TENT = {"lines": [{"product_id": "p-1011", "quantity": 1}, {"product_id": "p-1010", "quantity": 2}]}


@pytest.fixture
def domain(make_topology: Callable[..., Topology]) -> Topology:
    """A fresh set of processes per test, so each test starts from the seeded stores."""
    return make_topology(only=SERVICES)


def token(topo: Topology, user: str) -> str:
    answer = httpx.post(
        f"{topo.url('auth-service')}/oauth/token",
        data={"grant_type": "password", "username": user, "password": f"{user}-password"},
        auth=("web", "dev-only-web-secret"),
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    value: str = answer.json()["access_token"]
    return value


def store(topo: Topology, service: str) -> sqlite3.Connection:
    return sqlite3.connect(Path(topo.env(service)["DATA_DIR"]) / f"{service}.sqlite3")


@pytest.fixture
def bearer(domain: Topology) -> Callable[[str], dict[str, str]]:
    tokens = {user: token(domain, user) for user in ("alice", "bob", "admin")}
    return lambda user: {"Authorization": f"Bearer {tokens[user]}"}


def test_order_twice_with_one_key_is_one_order_and_one_reservation(
    domain: Topology, bearer: Callable[[str], dict[str, str]]
) -> None:
    headers = {**bearer("alice"), "Idempotency-Key": "system-once"}
    first = httpx.post(f"{domain.url('orders')}/orders", json=TENT, headers=headers, timeout=10)
    second = httpx.post(f"{domain.url('orders')}/orders", json=TENT, headers=headers, timeout=10)
    assert (first.status_code, second.status_code) == (201, 200), first.text
    order = first.json()
    assert second.json()["id"] == order["id"]
    assert order["total_cents"] == 34900 + 2 * 2900  # catalog's prices
    with store(domain, "orders") as conn:
        assert conn.execute("SELECT COUNT(*) FROM orders WHERE id = ?", (order["id"],)).fetchone()[0] == 1
    with store(domain, "inventory") as conn:
        held = conn.execute(
            "SELECT sku, quantity FROM reservation_lines JOIN reservations USING (order_id) "
            "WHERE order_id = ? AND status = 'reserved' ORDER BY sku",
            (order["id"],),
        ).fetchall()
    assert held == [("p-1010", 2), ("p-1011", 1)]
    mine = httpx.get(f"{domain.url('orders')}/orders/{order['id']}", headers=bearer("alice"), timeout=10)
    assert mine.status_code == 200
    theirs = httpx.get(f"{domain.url('orders')}/orders/{order['id']}", headers=bearer("bob"), timeout=10)
    assert theirs.status_code == 404


def test_catalog_writes_are_admin_only_and_survive_a_restart(
    domain: Topology, bearer: Callable[[str], dict[str, str]]
) -> None:
    new = {"id": "p-sys-1", "name": "Gaiters", "category": "accessories", "price_cents": 3900}
    refused = httpx.post(f"{domain.url('catalog')}/products", json=new, headers=bearer("alice"), timeout=10)
    assert refused.status_code == 403
    created = httpx.post(f"{domain.url('catalog')}/products", json=new, headers=bearer("admin"), timeout=10)
    assert created.status_code == 201, created.text
    domain.restart("catalog")
    listed = httpx.get(f"{domain.url('catalog')}/products", params={"size": 100}, timeout=10).json()
    assert "p-sys-1" in {p["id"] for p in listed["items"]}
    assert listed["total"] == 33  # the 32 demo products were not seeded twice


def test_review_by_a_signed_in_user_changes_the_summary(
    domain: Topology, bearer: Callable[[str], dict[str, str]]
) -> None:
    url = domain.url("reviews")
    before = httpx.get(f"{url}/summaries", params={"product_ids": "p-1009"}, timeout=10).json()["items"][0]
    assert before["count"] == 0
    review = {"rating": 4, "title": "Warm enough", "body": "Good on cold mornings."}
    posted = httpx.post(f"{url}/products/p-1009/reviews", json=review, headers=bearer("bob"), timeout=10)
    assert posted.status_code == 201, posted.text
    assert posted.json()["author"] == "bob"
    after = httpx.get(f"{url}/summaries", params={"product_ids": "p-1009"}, timeout=10).json()["items"][0]
    assert after == {"product_id": "p-1009", "average": 4.0, "count": 1}


def test_inventory_stopped_means_503_and_nothing_held(
    domain: Topology, bearer: Callable[[str], dict[str, str]]
) -> None:
    with store(domain, "inventory") as conn:
        reserved_before = conn.execute("SELECT SUM(reserved) FROM stock").fetchone()[0]
    domain.stop("inventory")
    try:
        headers = {**bearer("alice"), "Idempotency-Key": "system-down"}
        answer = httpx.post(f"{domain.url('orders')}/orders", json=TENT, headers=headers, timeout=10)
        assert answer.status_code == 503
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert "retry-after" in answer.headers
    finally:
        domain.start("inventory")
    with store(domain, "orders") as conn:
        assert conn.execute("SELECT COUNT(*) FROM orders WHERE status = 'confirmed'").fetchone()[0] == 0
    with store(domain, "inventory") as conn:
        assert conn.execute("SELECT SUM(reserved) FROM stock").fetchone()[0] == reserved_before == 0
