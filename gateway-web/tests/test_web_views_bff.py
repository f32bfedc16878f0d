"""gateway-web views: aggregation, degraded answers, budget, breakers, orders through the gateway.

The gateway runs in-process; auth-service, catalog, inventory, reviews and orders are the real apps
on real sockets (uvicorn in this loop) with their own SQLite stores and a real Redis. Outages are
real too: a service that is not served (connection refused) or a server that hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from chassis.state import chassis_state
from msa_testing.apps import dead_url, served
from msa_testing.servers import flaky_server
from orders.main import create as create_orders
from orders.settings import Settings as OrdersSettings

PROBLEM = "application/problem+json"
ALICE = {"username": "alice", "password": "alice-password"}
Runner = Callable[[FastAPI], contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]


async def _login(client: httpx.AsyncClient) -> dict[str, str]:
    response = await client.post("/auth/login", json=ALICE)
    assert response.status_code == 200, response.text
    return {"X-CSRF-Token": response.json()["csrf_token"]}


# ---- product views ---------------------------------------------------------------------------------


async def test_listing_joins_price_stock_and_rating(gateway: Callable[..., FastAPI], run: Runner) -> None:
    async with run(gateway()) as web:
        response = await web.get("/api/products", params={"size": 40})
    assert response.status_code == 200, response.text
    assert "x-degraded" not in response.headers
    body = response.json()
    assert body["degraded"] == []
    assert body["total"] == 32
    cards = {card["id"]: card for card in body["items"]}
    assert len(cards) == 32
    assert cards["p-1012"]["stock"] == {"available": 0, "in_stock": False}  # sold out in the demo data
    assert cards["p-1001"]["stock"]["in_stock"] is True
    assert cards["p-1001"]["rating"]["count"] > 0
    assert cards["p-1009"]["rating"] == {"average": None, "count": 0}  # nobody reviewed it yet
    assert cards["p-1001"]["price"] == f"{cards['p-1001']['price_cents'] / 100:.2f} EUR"


async def test_listing_search_and_paging_are_catalogs(gateway: Callable[..., FastAPI], run: Runner) -> None:
    async with run(gateway()) as web:
        page2 = (await web.get("/api/products", params={"page": 2, "size": 5})).json()
        found = (await web.get("/api/products", params={"q": "tent"})).json()
    assert (page2["page"], page2["size"], len(page2["items"])) == (2, 5, 5)
    assert found["items"], "the demo catalog has tents"
    assert all("tent" in (c["name"] + c["description"] + c["brand"]).lower() for c in found["items"])


async def test_product_page_has_product_stock_rating_and_latest_reviews(
    gateway: Callable[..., FastAPI], run: Runner
) -> None:
    async with run(gateway()) as web:
        response = await web.get("/api/products/p-1001")
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["id"] == "p-1001"
    assert page["degraded"] == []
    assert page["stock"]["in_stock"] is True
    assert page["rating"]["count"] >= len(page["latest_reviews"]) > 0
    dates = [review["created_at"] for review in page["latest_reviews"]]
    assert dates == sorted(dates, reverse=True), "newest first"


async def test_reviews_down_answers_200_without_reviews_marked_degraded(
    gateway: Callable[..., FastAPI], run: Runner
) -> None:
    async with run(gateway(reviews_url=dead_url())) as web:
        page = await web.get("/api/products/p-1001")
        listing = await web.get("/api/products")
    assert page.status_code == 200, page.text
    assert page.headers["x-degraded"] == "reviews"
    assert page.json()["degraded"] == ["reviews"]
    assert page.json()["latest_reviews"] is None
    assert page.json()["rating"] is None
    assert page.json()["stock"]["in_stock"] is True, "the other parts are still there"
    assert listing.status_code == 200
    assert listing.headers["x-degraded"] == "reviews"
    assert all(card["rating"] is None and card["stock"] is not None for card in listing.json()["items"])


async def test_inventory_down_shows_stock_unknown(gateway: Callable[..., FastAPI], run: Runner) -> None:
    async with run(gateway(inventory_url=dead_url())) as web:
        page = await web.get("/api/products/p-1001")
        listing = await web.get("/api/products")
    assert page.status_code == 200
    assert page.headers["x-degraded"] == "inventory"
    assert page.json()["stock"] is None
    assert page.json()["latest_reviews"], "reviews still shown"
    assert listing.json()["degraded"] == ["inventory"]
    assert all(card["stock"] is None for card in listing.json()["items"])


async def test_both_optional_parts_down_are_both_named(gateway: Callable[..., FastAPI], run: Runner) -> None:
    async with run(gateway(inventory_url=dead_url(), reviews_url=dead_url())) as web:
        response = await web.get("/api/products/p-1002")
    assert response.status_code == 200
    assert sorted(response.json()["degraded"]) == ["inventory", "reviews"]
    assert sorted(response.headers["x-degraded"].split(", ")) == ["inventory", "reviews"]


async def test_catalog_down_is_503_problem_with_retry_after(
    gateway: Callable[..., FastAPI], run: Runner
) -> None:
    async with run(gateway(catalog_url=dead_url())) as web:
        for path in ("/api/products", "/api/products/p-1001"):
            response = await web.get(path)
            assert response.status_code == 503, response.text
            assert response.headers["content-type"] == PROBLEM
            assert int(response.headers["retry-after"]) >= 1
            assert response.json()["downstream"] == "catalog"
            assert response.json()["trace_id"]


async def test_bad_input_is_problem_json(gateway: Callable[..., FastAPI], run: Runner) -> None:
    async with run(gateway()) as web:
        unknown = await web.get("/api/products/p-0000")
        cases = [
            await web.get("/api/products", params={"size": 0}),
            await web.get("/api/products", params={"size": 101}),
            await web.get("/api/products", params={"page": 0}),
            await web.get("/api/products/not%20an%20id"),
        ]
    assert unknown.status_code == 404, unknown.text
    assert unknown.headers["content-type"] == PROBLEM
    for response in cases:
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == PROBLEM


async def test_a_hanging_part_is_dropped_when_the_budget_runs_out(
    gateway: Callable[..., FastAPI], run: Runner
) -> None:
    # reviews hangs for 30 s; the downstream timeout is 4 s; the page's budget is 0.8 s (room for
    # catalog and inventory to answer on a loaded machine).
    with flaky_server() as hanging:
        hanging.mode = "hang"
        app = gateway(reviews_url=hanging.url, http={"timeout_s": 4.0}, bff={"budget_s": 0.8})
        async with run(app) as web:
            start = time.perf_counter()
            response = await web.get("/api/products/p-1001")
            elapsed = time.perf_counter() - start
            assert response.status_code == 200, response.text
            assert response.json()["degraded"] == ["reviews"]
            assert response.json()["stock"] is not None
            # Not a speed benchmark: without the budget this answer would take the 4 s timeout.
            assert elapsed < 3.0, f"the page waited {elapsed:.1f}s for a part past its budget"
            # The late call was not cancelled: it ran into its timeout, and the breaker counted it.
            metrics = chassis_state(app).downstreams["reviews"].breaker.metrics
            for _ in range(200):
                if metrics.snapshot()["counts"]["timeout"] == 1:
                    break
                await asyncio.sleep(0.05)
            assert metrics.snapshot()["counts"]["timeout"] == 1


async def test_a_reviews_without_the_summary_on_its_pages_leaves_the_rating_unknown(
    gateway: Callable[..., FastAPI], run: Runner
) -> None:
    # a rolling upgrade: a reviews from before the summary on its pages answers without "average"
    with flaky_server() as older:
        older.body = {"items": [], "page": 1, "size": 5, "total": 3}
        async with run(gateway(reviews_url=older.url)) as web:
            response = await web.get("/api/products/p-1001")
    assert response.status_code == 200, response.text
    assert (response.json()["rating"], response.json()["latest_reviews"]) == (None, [])


@pytest.mark.parametrize("mode", ["fail", "hang"])
async def test_open_breaker_answers_without_calling_reviews(
    gateway: Callable[..., FastAPI], run: Runner, mode: str
) -> None:
    # "fail": 500 on every call; "hang": no answer within the 0.3 s timeout (counted as timeouts).
    with flaky_server() as broken:
        broken.mode = mode  # type: ignore[assignment]  # a Literal in FlakyServer
        app = gateway(
            reviews_url=broken.url,
            breaker={"fail_max": 2, "reset_timeout_s": 60},
            http={"timeout_s": 0.3},
            bff={"budget_s": 2.0},
        )
        async with run(app) as web:
            for _ in range(2):  # one reviews call per page: fail_max reached
                await web.get("/api/products/p-1001")
            assert chassis_state(app).downstreams["reviews"].breaker.state == "open"
            hits = broken.hits
            for _ in range(3):
                response = await web.get("/api/products/p-1001")
                assert response.status_code == 200
                assert response.json()["degraded"] == ["reviews"]
            # Open: the answer does not wait for a timeout, because no call is even made.
            assert broken.hits == hits, "an open circuit does not call the downstream at all"
            counts = chassis_state(app).downstreams["reviews"].breaker.metrics.snapshot()["counts"]
    assert counts["failure" if mode == "fail" else "timeout"] == 2
    assert counts["short_circuited"] == 3
    assert counts["fallback_success"] == 5


# ---- reviews and orders (session) ----------------------------------------------------------------


async def test_review_needs_a_session_and_an_existing_product(
    gateway: Callable[..., FastAPI], run: Runner
) -> None:
    review = {"rating": 4, "title": "Solid", "body": "Kept me dry."}
    async with run(gateway()) as web:
        anonymous = await web.post("/api/products/p-1009/reviews", json=review)
        csrf = await _login(web)
        no_csrf = await web.post("/api/products/p-1009/reviews", json=review)
        unknown = await web.post("/api/products/p-0000/reviews", json=review, headers=csrf)
        bad = await web.post("/api/products/p-1009/reviews", json={**review, "rating": 6}, headers=csrf)
        created = await web.post("/api/products/p-1009/reviews", json=review, headers=csrf)
        again = await web.post("/api/products/p-1009/reviews", json=review, headers=csrf)
        page = (await web.get("/api/products/p-1009")).json()
    assert anonymous.status_code == 401
    assert no_csrf.status_code == 403
    assert unknown.status_code == 404
    assert bad.status_code == 422
    assert created.status_code == 201, created.text
    assert created.json()["author"] == "alice"
    assert again.status_code == 409, "one review per user and product (relayed)"
    assert page["rating"] == {"average": 4.0, "count": 1}
    assert page["latest_reviews"][0]["title"] == "Solid"


async def test_same_idempotency_key_twice_is_one_order(gateway: Callable[..., FastAPI], run: Runner) -> None:
    key = uuid.uuid4().hex
    order = {"lines": [{"product_id": "p-1001", "quantity": 2}, {"product_id": "p-1002", "quantity": 1}]}
    async with run(gateway()) as web:
        csrf = await _login(web)
        before = (await web.get("/api/orders")).json()["total"]
        first = await web.post("/api/orders", json=order, headers={**csrf, "Idempotency-Key": key})
        second = await web.post("/api/orders", json=order, headers={**csrf, "Idempotency-Key": key})
        other_body = await web.post(
            "/api/orders", json={"lines": [{"product_id": "p-1001", "quantity": 1}]},
            headers={**csrf, "Idempotency-Key": key},
        )  # fmt: skip
        listing = (await web.get("/api/orders")).json()
        one = await web.get(f"/api/orders/{first.json()['id']}")
    assert first.status_code == 201, first.text
    assert first.headers["location"] == f"/api/orders/{first.json()['id']}"
    assert second.status_code == 200
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json()["id"] == first.json()["id"]
    assert other_body.status_code == 409
    assert other_body.headers["content-type"] == PROBLEM
    # relayed with orders' own title: a client tells "reused" (do not retry) from "in progress" (do)
    assert other_body.json()["title"] == "Idempotency key reused"
    assert listing["total"] == before + 1
    assert [o["id"] for o in listing["items"]].count(first.json()["id"]) == 1
    assert one.status_code == 200
    lines = {line["product_id"]: line for line in one.json()["lines"]}
    assert lines["p-1001"]["quantity"] == 2
    assert lines["p-1001"]["name"], "product names shown"
    assert lines["p-1001"]["thumb_url"], "pictures from the catalog batch"
    assert one.json()["total"].endswith(" EUR")


async def test_orders_without_session_or_key_or_with_bad_lines(
    gateway: Callable[..., FastAPI], run: Runner
) -> None:
    order = {"lines": [{"product_id": "p-1001", "quantity": 1}]}
    async with run(gateway()) as web:
        anonymous = await web.get("/api/orders")
        csrf = await _login(web)
        no_key = await web.post("/api/orders", json=order, headers=csrf)
        zero = await web.post(
            "/api/orders", json={"lines": [{"product_id": "p-1001", "quantity": 0}]},
            headers={**csrf, "Idempotency-Key": "k1"},
        )  # fmt: skip
        short = await web.post(
            "/api/orders", json={"lines": [{"product_id": "p-1012", "quantity": 1}]},
            headers={**csrf, "Idempotency-Key": "k2"},
        )  # fmt: skip
        someone_elses = await web.get("/api/orders/o-does-not-exist")
    assert anonymous.status_code == 401
    assert no_key.status_code == 422, no_key.text  # a required header, like any required parameter
    assert no_key.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    assert zero.status_code == 422
    assert short.status_code == 409, "p-1012 is sold out"
    assert short.json()["title"]
    assert someone_elses.status_code == 404
    for response in (anonymous, no_key, zero, short, someone_elses):
        assert response.headers["content-type"] == PROBLEM


async def test_orders_with_catalog_down_keep_names_and_lose_pictures(
    make_gateway: Callable[..., FastAPI], domain: dict[str, str], run: Runner
) -> None:
    urls = {f"{name}_url": url for name, url in domain.items()}
    async with run(make_gateway(**{**urls, "catalog_url": dead_url()})) as web:
        await _login(web)
        response = await web.get("/api/orders")
    assert response.status_code == 200, response.text
    assert response.headers["x-degraded"] == "catalog"
    items = response.json()["items"]
    assert items, "alice has demo orders"
    assert all(line["name"] and line["thumb_url"] is None for order in items for line in order["lines"])


async def test_order_with_inventory_down_is_503_with_retry_after(
    tmp_path: Path,
    redis_url: str,
    auth_url: str,
    domain: dict[str, str],
    gateway: Callable[..., FastAPI],
    run: Runner,
) -> None:
    # An orders service whose inventory is gone: a reservation is critical, so no order.
    settings = OrdersSettings(
        data_dir=tmp_path / "orders-no-inventory", catalog_url=domain["catalog"], inventory_url=dead_url(),
        redis_url=redis_url, zipkin_endpoint=None, env="test", auth_service_url=auth_url,
    )  # fmt: skip
    async with served(create_orders(settings)) as orders_url, run(gateway(orders_url=orders_url)) as web:
        csrf = await _login(web)
        response = await web.post(
            "/api/orders", json={"lines": [{"product_id": "p-1001", "quantity": 1}]},
            headers={**csrf, "Idempotency-Key": uuid.uuid4().hex},
        )  # fmt: skip
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == PROBLEM
    assert int(response.headers["retry-after"]) >= 1


async def test_oversize_bodies_are_413_before_anything_else(
    gateway: Callable[..., FastAPI], run: Runner
) -> None:
    big = {"lines": [{"product_id": "p-1001", "quantity": 1}], "padding": "x" * 70_000}
    async with run(gateway()) as web:
        csrf = await _login(web)
        before = (await web.get("/api/orders")).json()["total"]
        order = await web.post("/api/orders", json=big, headers={**csrf, "Idempotency-Key": "k-big"})
        review = await web.post(
            "/api/products/p-1001/reviews", json={"rating": 5, "title": "x", "body": "y" * 70_000}
        )
        after = (await web.get("/api/orders")).json()["total"]
    for response in (order, review):
        assert response.status_code == 413, response.text
        assert response.headers["content-type"] == PROBLEM
    assert after == before, "nothing was placed"
