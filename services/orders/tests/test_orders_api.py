"""orders: idempotent creation priced by catalog and reserved in inventory, own orders only, bad input."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import text

from chassis.settings import ChaosSettings
from msa_testing.apps import asgi_client

from .conftest import Platform, set_chaos

PROBLEM = "application/problem+json"
TENT_AND_SOCKS = {"lines": [{"product_id": "p-1011", "quantity": 1}, {"product_id": "p-1010", "quantity": 2}]}


async def test_order_is_priced_by_catalog_and_reserved_in_inventory(platform: Platform) -> None:
    answer = await platform.orders.post(
        "/orders", json=TENT_AND_SOCKS, headers=platform.headers("alice", "k-1")
    )
    assert answer.status_code == 201
    order = answer.json()
    assert answer.headers["location"] == f"/orders/{order['id']}"
    assert order["user"] == "alice"
    assert order["status"] == "confirmed"
    assert [(line["name"], line["unit_price_cents"], line["quantity"]) for line in order["lines"]] == [
        ("Two-Person Tent", 34900, 1),
        ("Hiking Socks (3 pack)", 2900, 2),
    ]
    assert order["total_cents"] == 34900 + 2 * 2900
    with platform.inventory_db() as conn:
        lines = conn.execute(
            text("SELECT sku, quantity FROM reservation_lines WHERE order_id = :id ORDER BY sku"),
            {"id": order["id"]},
        ).all()
    assert lines == [("p-1010", 2), ("p-1011", 1)]


async def test_same_key_same_body_is_one_order(platform: Platform) -> None:
    headers = platform.headers("alice", "k-twice")
    first = await platform.orders.post("/orders", json=TENT_AND_SOCKS, headers=headers)
    second = await platform.orders.post("/orders", json=TENT_AND_SOCKS, headers=headers)
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.headers["idempotent-replayed"] == "true"
    assert first.json() == second.json()
    with platform.orders_db() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM orders WHERE status = 'confirmed'")).scalar_one() == 1
    assert platform.reserved_units("p-1011") == 1


async def test_same_key_other_body_is_409(platform: Platform) -> None:
    headers = platform.headers("alice", "k-other")
    assert (await platform.orders.post("/orders", json=TENT_AND_SOCKS, headers=headers)).status_code == 201
    other = {"lines": [{"product_id": "p-1011", "quantity": 2}]}
    conflict = await platform.orders.post("/orders", json=other, headers=headers)
    assert conflict.status_code == 409
    assert conflict.headers["content-type"].startswith(PROBLEM)
    assert platform.reserved_units("p-1011") == 1
    # Keys belong to their user: bob may use the same key for his own order.
    assert (
        await platform.orders.post("/orders", json=other, headers=platform.headers("bob", "k-other"))
    ).status_code == 201


async def test_short_stock_is_409_and_holds_nothing(platform: Platform) -> None:
    too_many = {"lines": [{"product_id": "p-1001", "quantity": 1}, {"product_id": "p-1018", "quantity": 2}]}
    answer = await platform.orders.post(
        "/orders", json=too_many, headers=platform.headers("alice", "k-short")
    )
    assert answer.status_code == 409
    assert answer.json()["insufficient"] == [{"sku": "p-1018", "requested": 2, "available": 1}]
    assert platform.reserved_units("p-1001") == 0
    with platform.orders_db() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM orders WHERE status = 'confirmed'")).scalar_one() == 0
        assert conn.execute(text("SELECT COUNT(*) FROM idempotency_keys")).scalar_one() == 0
    # The key is free again: the corrected order goes through with it.
    fixed = {"lines": [{"product_id": "p-1001", "quantity": 1}, {"product_id": "p-1018", "quantity": 1}]}
    assert (
        await platform.orders.post("/orders", json=fixed, headers=platform.headers("alice", "k-short"))
    ).status_code == 201


async def test_each_user_sees_only_their_orders(platform: Platform) -> None:
    mine = (
        await platform.orders.post("/orders", json=TENT_AND_SOCKS, headers=platform.headers("alice", "k-a"))
    ).json()
    alice = (await platform.orders.get("/orders", headers=platform.headers("alice"))).json()
    bob = (await platform.orders.get("/orders", headers=platform.headers("bob"))).json()
    assert alice["items"][0]["id"] == mine["id"]  # newest first, then the demo history
    assert alice["total"] == 3
    assert {order["user"] for order in alice["items"]} == {"alice"}
    assert mine["id"] not in {order["id"] for order in bob["items"]}
    assert (
        await platform.orders.get(f"/orders/{mine['id']}", headers=platform.headers("alice"))
    ).status_code == 200
    hidden = await platform.orders.get(f"/orders/{mine['id']}", headers=platform.headers("bob"))
    assert hidden.status_code == 404
    assert hidden.headers["content-type"].startswith(PROBLEM)
    assert (await platform.orders.get("/orders/o-none", headers=platform.headers("alice"))).status_code == 404
    paged = (
        await platform.orders.get("/orders", params={"size": 1, "page": 2}, headers=platform.headers("alice"))
    ).json()
    assert len(paged["items"]) == 1


async def test_bad_input_is_problem_json(platform: Platform) -> None:
    async def post(body: Any, key: str | None = "k-bad", **extra: Any) -> int:
        answer = await platform.orders.post(
            "/orders", json=body, headers=platform.headers("alice", key), **extra
        )
        assert answer.headers["content-type"].startswith(PROBLEM)
        return answer.status_code

    for quantity in (0, -1, 101, "two"):
        assert await post({"lines": [{"product_id": "p-1001", "quantity": quantity}]}) == 422, quantity
    assert await post({"lines": []}) == 422
    assert await post({"lines": [{"product_id": "p-1001", "quantity": 1}] * 2}) == 422
    assert await post({"lines": [{"product_id": "p-nope", "quantity": 1}]}) == 422  # unknown product
    assert await post(TENT_AND_SOCKS, key=None) == 422  # no Idempotency-Key: a missing required header
    big = {"lines": [{"product_id": "p-1001", "quantity": 1}], "note": "x" * 70_000}
    assert await post(big) == 413
    for params in ({"page": 0}, {"size": 0}, {"size": 101}):
        listed = await platform.orders.get("/orders", params=params, headers=platform.headers("alice"))
        assert listed.status_code == 422
    with platform.orders_db() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM orders WHERE status = 'confirmed'")).scalar_one() == 0
    assert platform.reserved_units("p-1001") == 0


async def test_quantities_are_json_integers_and_ids_are_never_dot_segments(platform: Platform) -> None:
    for quantity in (True, "1", 1.0):  # lax JSON parsing would read each as 1
        body = {"lines": [{"product_id": "p-1001", "quantity": quantity}]}
        answer = await platform.orders.post(
            "/orders", json=body, headers=platform.headers("alice", "k-strict")
        )
        assert answer.status_code == 422, (quantity, answer.text)
        assert answer.headers["content-type"].startswith(PROBLEM)
    for path in ("/orders/%2E", "/orders/%2E%2E", "/orders/-o-demo-0001"):
        answer = await platform.orders.get(path, headers=platform.headers("alice"))
        assert answer.status_code == 422, (path, answer.text)
        assert answer.headers["content-type"].startswith(PROBLEM)
    headers = {**platform.headers("alice"), "Idempotency-Key": "café".encode()}
    answer = await platform.orders.post("/orders", json=TENT_AND_SOCKS, headers=headers)
    assert answer.status_code == 400, answer.text
    assert platform.reserved_units("p-1001") == 0


async def test_tokens_and_scopes(platform: Platform) -> None:
    no_token = await platform.orders.post("/orders", json=TENT_AND_SOCKS, headers={"Idempotency-Key": "k"})
    assert no_token.status_code == 401
    read_only = platform.headers("alice", "k", scope="orders:read")
    assert (await platform.orders.post("/orders", json=TENT_AND_SOCKS, headers=read_only)).status_code == 403
    assert (await platform.orders.get("/orders")).status_code == 401


async def test_inventory_down_is_503_with_retry_after_and_no_order(platform: Platform) -> None:
    set_chaos(platform.inventory_app, ChaosSettings(error_rate=1.0))
    answer = await platform.orders.post(
        "/orders", json=TENT_AND_SOCKS, headers=platform.headers("alice", "k-down")
    )
    assert answer.status_code == 503
    assert answer.headers["content-type"].startswith(PROBLEM)
    assert int(answer.headers["retry-after"]) >= 1
    with platform.orders_db() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM orders WHERE status = 'confirmed'")).scalar_one() == 0
    assert platform.reserved_units("p-1011") == 0


async def test_catalog_down_is_503_and_reserves_nothing(platform: Platform) -> None:
    set_chaos(platform.catalog_app, ChaosSettings(error_rate=1.0))
    answer = await platform.orders.post(
        "/orders", json=TENT_AND_SOCKS, headers=platform.headers("alice", "k-cat")
    )
    assert answer.status_code == 503
    assert "retry-after" in answer.headers
    assert platform.reserved_units("p-1011") == 0
    set_chaos(platform.catalog_app, ChaosSettings())
    await platform.orders.get("/health/live")
    # The failed attempt freed its key: the same request now succeeds (after the breaker's reset timeout).
    await asyncio.sleep(0.3)
    retry = await platform.orders.post(
        "/orders", json=TENT_AND_SOCKS, headers=platform.headers("alice", "k-cat")
    )
    assert retry.status_code == 201


async def test_chaos_breaks_orders_and_zero_heals_it(platform: Platform) -> None:
    set_chaos(platform.orders_app, ChaosSettings(error_rate=1.0))
    broken = await platform.orders.get("/orders", headers=platform.headers("alice"))
    assert broken.status_code == 500
    assert (await platform.orders.get("/health/ready")).status_code == 200
    set_chaos(platform.orders_app, ChaosSettings(error_rate=0.0))
    assert (await platform.orders.get("/orders", headers=platform.headers("alice"))).status_code == 200


async def test_openapi_documents_the_api(platform: Platform) -> None:
    assert (await platform.orders.get("/docs")).status_code == 200
    spec = (await platform.orders.get("/openapi.json")).json()
    assert {"/orders", "/orders/{order_id}"} <= set(spec["paths"])
    create = spec["paths"]["/orders"]["post"]
    assert "Idempotency-Key" in {p["name"] for p in create["parameters"]}


async def test_concurrent_posts_with_one_key_make_one_order(platform: Platform) -> None:
    headers = platform.headers("alice", "k-race")
    answers = await asyncio.gather(
        *(platform.orders.post("/orders", json=TENT_AND_SOCKS, headers=headers) for _ in range(4))
    )
    codes = sorted(answer.status_code for answer in answers)
    assert codes.count(201) == 1
    assert set(codes) <= {200, 201, 409}  # 409 = the first is still running (with Retry-After)
    for answer in answers:
        if answer.status_code == 409:
            assert answer.headers["retry-after"] == "1"
    replay = await platform.orders.post("/orders", json=TENT_AND_SOCKS, headers=headers)
    assert replay.status_code == 200
    with platform.orders_db() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM orders WHERE status = 'confirmed'")).scalar_one() == 1
    assert platform.reserved_units("p-1011") == 1


async def test_one_key_at_two_replicas_at_once_is_one_order_and_one_reservation(platform: Platform) -> None:
    """Two orders replicas on one store get the same Idempotency-Key at the same moment: the key's
    primary key and its row lock decide, not a lock in either process."""
    replica = platform.make_replica()
    async with asgi_client(replica) as second:
        clients = (platform.orders, second)
        headers = platform.headers("alice", "k-race")
        answers = await asyncio.gather(
            *(clients[n % 2].post("/orders", json=TENT_AND_SOCKS, headers=headers) for n in range(6))
        )
    created = [a for a in answers if a.status_code == 201]
    assert len(created) == 1, [a.status_code for a in answers]
    # the others replay the order, or say it is still being placed; none is another order
    assert {a.status_code for a in answers} <= {200, 201, 409}
    assert {a.json()["id"] for a in answers if a.status_code in (200, 201)} == {created[0].json()["id"]}
    with platform.orders_db() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM orders WHERE status = 'confirmed'")).scalar_one() == 1
    assert platform.reserved_units("p-1011") == 1
    assert platform.reserved_units("p-1010") == 2


async def test_an_order_past_two_billion_cents_is_stored_whole(platform: Platform) -> None:
    """The schema allows 20 lines x 100 units x 100,000.00: more than a 32-bit integer of cents
    (PostgreSQL's INTEGER). Three lines at the top price are enough to pass it."""
    admin = platform.issuer.headers("admin", "catalog:write inventory:write")
    lines = []
    for n in range(3):
        async with (  # the running apps, without a second lifespan
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=platform.catalog_app), base_url="http://c"
            ) as catalog,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=platform.inventory_app), base_url="http://i"
            ) as inventory,
        ):
            product = {
                "id": f"p-lux-{n}",
                "name": f"Expedition yacht {n}",
                "category": "boats",
                "price_cents": 10_000_000,
            }
            assert (await catalog.post("/products", json=product, headers=admin)).status_code == 201
            stocked = await inventory.put(f"/stock/p-lux-{n}", json={"on_hand": 100}, headers=admin)
            assert stocked.status_code == 201
        lines.append({"product_id": f"p-lux-{n}", "quantity": 100})
    answer = await platform.orders.post(
        "/orders", json={"lines": lines}, headers=platform.headers("alice", "k-lux")
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["total_cents"] == 3 * 100 * 10_000_000 > 2**31
    listed = await platform.orders.get(f"/orders/{answer.json()['id']}", headers=platform.headers("alice"))
    assert listed.json()["total_cents"] == 3_000_000_000
