"""gateway-mobile views: compact feed with cursors, product screen, degraded answers, orders by bearer.

The gateway runs in-process; auth-service, catalog, inventory, reviews and orders are the real apps
on real sockets (uvicorn in this loop) with their own SQLite stores and a real Redis.
"""

from __future__ import annotations

import base64
import contextlib
import statistics
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI

from msa_testing.apps import dead_url
from msa_testing.servers import flaky_server

PROBLEM = "application/problem+json"
Runner = Callable[[FastAPI], contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]
ROW_KEYS = {"id", "name", "price", "thumb_url", "in_stock", "rating"}


async def _bearer(client: httpx.AsyncClient) -> dict[str, str]:
    response = await client.post("/auth/token", json={"username": "alice", "password": "alice-password"})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def test_feed_rows_are_compact_and_cursors_walk_the_whole_catalog(
    gateway: Callable[..., FastAPI], run: Runner
) -> None:
    seen: list[str] = []
    pages = 0
    async with run(gateway()) as mobile:
        cursor: str | None = None
        for _ in range(10):  # 32 products, 10 a page: 4 pages
            params: dict[str, Any] = {"limit": 10} if cursor is None else {"cursor": cursor, "limit": 3}
            response = await mobile.get("/m/products", params=params)
            assert response.status_code == 200, response.text
            body = response.json()
            assert set(body) == {"items", "next_cursor", "degraded"}
            assert body["degraded"] == []
            for row in body["items"]:
                assert set(row) == ROW_KEYS
            seen += [row["id"] for row in body["items"]]
            pages += 1
            cursor = body["next_cursor"]
            if cursor is None:
                break
    assert pages == 4, "the page size travels in the cursor (a later limit does not shift the window)"
    assert len(seen) == len(set(seen)) == 32
    by_id = dict.fromkeys(seen)
    assert "p-1012" in by_id


async def test_feed_values_come_from_catalog_inventory_and_reviews(
    gateway: Callable[..., FastAPI], run: Runner
) -> None:
    async with run(gateway()) as mobile:
        rows = {
            row["id"]: row for row in (await mobile.get("/m/products", params={"limit": 50})).json()["items"]
        }
    assert rows["p-1012"]["in_stock"] is False
    assert rows["p-1001"]["in_stock"] is True
    assert isinstance(rows["p-1001"]["price"], int)
    assert 1 <= rows["p-1001"]["rating"] <= 5
    assert rows["p-1009"]["rating"] is None  # no reviews yet


async def test_bad_cursor_and_limits_are_problem_json(gateway: Callable[..., FastAPI], run: Runner) -> None:
    forged = base64.urlsafe_b64encode(b"v1|../etc|10").decode().rstrip("=")
    too_big = base64.urlsafe_b64encode(b"v1|p-1010|500").decode().rstrip("=")
    valid = base64.urlsafe_b64encode(b"v1|p-1010|5").decode().rstrip("=")
    async with run(gateway()) as mobile:
        bad = [
            await mobile.get("/m/products", params={"cursor": "not-a-cursor"}),
            await mobile.get("/m/products", params={"cursor": forged}),
            await mobile.get("/m/products", params={"cursor": too_big}),
        ]
        limits = [
            await mobile.get("/m/products", params={"limit": 0}),
            await mobile.get("/m/products", params={"limit": 51}),
        ]
        unknown = await mobile.get("/m/products/p-0000")
        resumed = await mobile.get("/m/products", params={"cursor": valid})
    for response in bad:
        assert response.status_code == 400, response.text
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["title"] == "Bad cursor"
    for response in limits:
        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == PROBLEM
    assert [row["id"] for row in resumed.json()["items"]] == [
        "p-1011",
        "p-1012",
        "p-1013",
        "p-1014",
        "p-1015",
    ]


async def test_product_screen_has_rating_summary_and_a_top_review(
    gateway: Callable[..., FastAPI], run: Runner, domain: dict[str, str]
) -> None:
    async with run(gateway()) as mobile:
        response = await mobile.get("/m/products/p-1001")
        unreviewed = await mobile.get("/m/products/p-1009")
    async with httpx.AsyncClient(base_url=domain["reviews"]) as reviews:  # every review of the product
        every = (await reviews.get("/products/p-1001/reviews", params={"size": 50})).json()["items"]
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["degraded"] == []
    assert body["in_stock"] is True
    assert body["rating"]["count"] == len(every)
    assert body["rating"]["average"] == round(statistics.mean(review["rating"] for review in every), 2)
    assert body["top_review"]["rating"] == max(review["rating"] for review in every)
    assert body["top_review"]["title"] in {r["title"] for r in every}
    assert unreviewed.json()["top_review"] is None
    assert unreviewed.json()["rating"] == {"average": None, "count": 0}


async def test_reviews_or_inventory_down_degrade_the_screen(
    gateway: Callable[..., FastAPI], run: Runner
) -> None:
    async with run(gateway(reviews_url=dead_url())) as mobile:
        no_reviews = await mobile.get("/m/products/p-1001")
        feed = await mobile.get("/m/products")
    async with run(gateway(inventory_url=dead_url())) as mobile:
        no_stock = await mobile.get("/m/products/p-1001")
    assert no_reviews.status_code == 200
    assert no_reviews.headers["x-degraded"] == "reviews"
    assert no_reviews.json()["rating"] is None
    assert no_reviews.json()["top_review"] is None
    assert feed.headers["x-degraded"] == "reviews"
    assert all(row["rating"] is None for row in feed.json()["items"])
    assert no_stock.status_code == 200
    assert no_stock.json()["degraded"] == ["inventory"]
    assert no_stock.json()["in_stock"] is None


async def test_a_reviews_without_the_summary_on_its_pages_leaves_the_rating_unknown(
    gateway: Callable[..., FastAPI], run: Runner
) -> None:
    # a rolling upgrade: a reviews from before the summary on its pages answers without "average"
    with flaky_server() as older:
        older.body = {"items": [], "page": 1, "size": 1, "total": 3}
        async with run(gateway(reviews_url=older.url)) as mobile:
            response = await mobile.get("/m/products/p-1001")
    assert response.status_code == 200, response.text
    assert (response.json()["rating"], response.json()["top_review"]) == (None, None)


async def test_catalog_down_is_503(gateway: Callable[..., FastAPI], run: Runner) -> None:
    async with run(gateway(catalog_url=dead_url())) as mobile:
        response = await mobile.get("/m/products")
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM
    assert int(response.headers["retry-after"]) >= 1


async def test_orders_by_bearer_one_order_per_idempotency_key(
    gateway: Callable[..., FastAPI], run: Runner
) -> None:
    key = uuid.uuid4().hex
    order = {"lines": [{"product_id": "p-1003", "quantity": 1}]}
    async with run(gateway()) as mobile:
        anonymous = await mobile.get("/m/orders")
        auth = await _bearer(mobile)
        first = await mobile.post("/m/orders", json=order, headers={**auth, "Idempotency-Key": key})
        second = await mobile.post("/m/orders", json=order, headers={**auth, "Idempotency-Key": key})
        feed = (await mobile.get("/m/orders", params={"limit": 50}, headers=auth)).json()
        paged = (await mobile.get("/m/orders", params={"limit": 1}, headers=auth)).json()
        second_page = await mobile.get("/m/orders", params={"cursor": paged["next_cursor"]}, headers=auth)
        bad_cursor = await mobile.get(
            "/m/orders", params={"cursor": base64.urlsafe_b64encode(b"v1|x|1").decode()}, headers=auth
        )
        one = await mobile.get(first.headers["location"], headers=auth)
    assert anonymous.status_code == 401
    assert first.status_code == 201, first.text
    assert second.status_code == 200
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json()["id"] == first.json()["id"]
    assert [o["id"] for o in feed["items"]].count(first.json()["id"]) == 1
    assert feed["next_cursor"] is None
    assert len(paged["items"]) == 1
    assert second_page.status_code == 200
    assert second_page.json()["items"][0]["id"] != paged["items"][0]["id"]
    assert bad_cursor.status_code == 400
    assert one.status_code == 200
    assert one.json()["items"] == [
        {"product_id": "p-1003", "name": one.json()["items"][0]["name"], "quantity": 1}
    ]
    assert one.json()["items"][0]["name"]
