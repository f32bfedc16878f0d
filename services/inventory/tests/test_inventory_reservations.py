"""inventory: stock levels, reservations idempotent by order id, release, bad input."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from inventory.main import create
from inventory.settings import Settings
from msa_testing.apps import TokenIssuer, asgi_client
from msa_testing.store import store_connection

PROBLEM = "application/problem+json"


async def available(client: httpx.AsyncClient, sku: str) -> int:
    level: int = (await client.get(f"/stock/{sku}")).json()["available"]
    return level


async def test_stock_for_a_batch_of_skus(inventory: httpx.AsyncClient) -> None:
    body = (await inventory.get("/stock", params=[("skus", "p-1012,p-1001"), ("skus", "nope")])).json()
    assert [item["sku"] for item in body["items"]] == ["p-1012", "p-1001"]
    sold_out, shoe = body["items"]
    assert sold_out["in_stock"] is False
    assert shoe["available"] == shoe["on_hand"] > 0
    assert body["missing"] == ["nope"]
    unknown = await inventory.get("/stock/nope")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith(PROBLEM)


async def test_reserve_is_idempotent_by_order_id(inventory: httpx.AsyncClient) -> None:
    before = await available(inventory, "p-1001")
    body = {"order_id": "o-1", "lines": [{"sku": "p-1001", "quantity": 2}, {"sku": "p-1005", "quantity": 1}]}
    first = await inventory.post("/reservations", json=body)
    second = await inventory.post("/reservations", json=body)
    assert first.status_code == 201
    assert second.status_code == 200
    assert first.json() == second.json()
    assert first.json()["status"] == "reserved"
    assert await available(inventory, "p-1001") == before - 2
    other = await inventory.post("/reservations", json={**body, "lines": [{"sku": "p-1001", "quantity": 3}]})
    assert other.status_code == 409
    assert await available(inventory, "p-1001") == before - 2


async def test_release_is_idempotent_and_gives_units_back(inventory: httpx.AsyncClient) -> None:
    before = await available(inventory, "p-1002")
    await inventory.post(
        "/reservations", json={"order_id": "o-2", "lines": [{"sku": "p-1002", "quantity": 4}]}
    )
    for _ in range(2):
        released = await inventory.post("/reservations/o-2/release")
        assert released.status_code == 200
        assert released.json()["status"] == "released"
        assert await available(inventory, "p-1002") == before
    again = await inventory.post(
        "/reservations", json={"order_id": "o-2", "lines": [{"sku": "p-1002", "quantity": 4}]}
    )
    assert again.status_code == 409


async def test_release_before_reserve_blocks_the_late_reserve(inventory: httpx.AsyncClient) -> None:
    assert (await inventory.post("/reservations/o-late/release")).json()["status"] == "released"
    before = await available(inventory, "p-1003")
    late = await inventory.post(
        "/reservations", json={"order_id": "o-late", "lines": [{"sku": "p-1003", "quantity": 1}]}
    )
    assert late.status_code == 409
    assert await available(inventory, "p-1003") == before


async def test_short_stock_reserves_nothing(inventory: httpx.AsyncClient) -> None:
    before = await available(inventory, "p-1001")
    lines = [{"sku": "p-1001", "quantity": 1}, {"sku": "p-1011", "quantity": 4}]  # p-1011 has 3
    short = await inventory.post("/reservations", json={"order_id": "o-3", "lines": lines})
    assert short.status_code == 409
    assert short.json()["insufficient"] == [{"sku": "p-1011", "requested": 4, "available": 3}]
    assert await available(inventory, "p-1001") == before
    assert (await inventory.get("/reservations/o-3")).status_code == 404


async def test_concurrent_reserves_never_oversell(
    inventory: httpx.AsyncClient, inventory_app: FastAPI
) -> None:
    async def buy(n: int) -> int:
        body = {"order_id": f"rush-{n}", "lines": [{"sku": "p-1006", "quantity": 1}]}  # 2 on hand
        return (await inventory.post("/reservations", json=body)).status_code

    codes = await asyncio.gather(*(buy(n) for n in range(10)))
    assert sorted(codes) == [201, 201] + [409] * 8
    with store_connection(inventory_app) as conn:
        assert conn.execute(text("SELECT on_hand, reserved FROM stock WHERE sku = 'p-1006'")).one() == (2, 2)


async def test_invalid_reservations_are_422(inventory: httpx.AsyncClient) -> None:
    bad_lines = [
        [{"sku": "p-1001", "quantity": 0}],
        [{"sku": "p-1001", "quantity": -1}],
        [{"sku": "p-1001", "quantity": 1001}],
        [{"sku": "p-1001", "quantity": "two"}],
        [{"sku": "p-1001", "quantity": 1}, {"sku": "p-1001", "quantity": 1}],
        [],
        [{"sku": "unknown-sku", "quantity": 1}],
    ]
    for lines in bad_lines:
        answer = await inventory.post("/reservations", json={"order_id": "o-bad", "lines": lines})
        assert answer.status_code == 422, lines
        assert answer.headers["content-type"].startswith(PROBLEM)
    assert (await inventory.get("/reservations/o-bad")).status_code == 404


async def test_oversize_body_is_413(inventory: httpx.AsyncClient) -> None:
    answer = await inventory.post("/reservations", content=b"{" + b" " * 70_000 + b"}")
    assert answer.status_code == 413
    assert answer.headers["content-type"].startswith(PROBLEM)


async def test_admin_sets_stock_and_adds_skus(
    inventory: httpx.AsyncClient, anonymous: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    admin = issuer.headers("admin", "inventory:read inventory:write")
    added = await inventory.put("/stock/p-9001", json={"on_hand": 5}, headers=admin)
    assert added.status_code == 201
    assert added.json() == {"sku": "p-9001", "on_hand": 5, "reserved": 0, "available": 5, "in_stock": True}
    await inventory.post(
        "/reservations", json={"order_id": "o-s", "lines": [{"sku": "p-9001", "quantity": 3}]}
    )
    assert (await inventory.put("/stock/p-9001", json={"on_hand": 2}, headers=admin)).status_code == 409
    changed = await inventory.put("/stock/p-9001", json={"on_hand": 4}, headers=admin)
    assert changed.status_code == 200
    assert changed.json()["available"] == 1
    assert (await inventory.put("/stock/p-9001", json={"on_hand": -1}, headers=admin)).status_code == 422
    for loose in ("4", True, 4.0):  # strict integers: no "4" or true taken for 4
        answer = await inventory.put("/stock/p-9001", json={"on_hand": loose}, headers=admin)
        assert answer.status_code == 422, loose
        reserve = {"order_id": "o-loose", "lines": [{"sku": "p-9001", "quantity": loose}]}
        assert (await inventory.post("/reservations", json=reserve)).status_code == 422, loose
    for bad_sku in (".", "..", "-x"):
        assert (await inventory.get(f"/stock/{bad_sku}")).status_code in (404, 422), bad_sku
    customer = issuer.headers("alice", "orders:write")
    assert (await inventory.put("/stock/p-9001", json={"on_hand": 99}, headers=customer)).status_code == 403
    assert (await anonymous.put("/stock/p-9001", json={"on_hand": 99})).status_code == 401
    service = issuer.headers("service:orders", "inventory:reserve")  # orders may reserve, not set stock
    assert (await inventory.put("/stock/p-9001", json={"on_hand": 99}, headers=service)).status_code == 403
    assert await available(inventory, "p-9001") == 1


async def test_openapi_documents_the_api(inventory: httpx.AsyncClient) -> None:
    assert (await inventory.get("/docs")).status_code == 200
    paths = (await inventory.get("/openapi.json")).json()["paths"]
    assert {"/stock", "/stock/{sku}", "/reservations", "/reservations/{order_id}/release"} <= set(paths)


async def test_an_empty_batch_is_an_empty_answer(inventory: httpx.AsyncClient) -> None:
    # e.g. a gateway asking for the stock of an empty search result page
    assert (await inventory.get("/stock", params={"skus": ""})).json() == {"items": [], "missing": []}
    assert (await inventory.get("/stock")).status_code == 422


async def test_two_replicas_on_one_store_never_oversell_nor_reserve_an_order_twice(
    store_url: Callable[[str], str], redis_url: str, issuer: TokenIssuer
) -> None:
    """Two inventory processes' worth of apps on one store, started together (both migrate) and
    hit at once: only the database keeps them honest."""
    url = store_url("inventory")
    apps = [
        create(Settings(database_url=url, redis_url=redis_url, zipkin_endpoint=None, env="test"))
        for _ in range(2)
    ]
    async with contextlib.AsyncExitStack() as stack:
        clients = []
        for app in apps:
            issuer.install(app)
            client = await stack.enter_async_context(asgi_client(app))
            client.headers.update(issuer.headers("service:orders", "inventory:reserve"))
            clients.append(client)

        async def reserve(n: int, order_id: str, sku: str) -> int:
            body = {"order_id": order_id, "lines": [{"sku": sku, "quantity": 1}]}
            return (await clients[n % 2].post("/reservations", json=body)).status_code

        rush = await asyncio.gather(*(reserve(n, f"rush-{n}", "p-1006") for n in range(20)))  # 2 on hand
        assert sorted(rush) == [201, 201] + [409] * 18
        # the same order id at both replicas at once: one reservation, the other answer replays it
        same = await asyncio.gather(*(reserve(n, "o-twice", "p-1001") for n in range(8)))
        assert sorted(same) == [200] * 7 + [201]
        with store_connection(apps[0]) as conn:
            stock = dict(
                conn.execute(text("SELECT sku, reserved FROM stock WHERE sku IN ('p-1001', 'p-1006')")).all()
            )
            assert stock == {"p-1001": 1, "p-1006": 2}
