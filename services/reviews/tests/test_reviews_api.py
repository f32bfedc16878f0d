"""reviews: paged lists, batch summaries, create as a user, bad input, chaos, and the store."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from chassis import LiveSettings
from chassis.settings import ChaosSettings
from chassis.state import chassis_state
from msa_testing.store import store_connection
from reviews.main import create
from reviews.settings import Settings

PROBLEM = "application/problem+json"
Headers = Callable[[str], dict[str, str]]


async def test_list_is_paged_newest_first_with_the_products_summary(reviews: httpx.AsyncClient) -> None:
    summary = (await reviews.get("/summaries", params={"product_ids": "p-1001"})).json()["items"][0]
    count = summary["count"]
    assert count >= 2
    first = (await reviews.get("/products/p-1001/reviews", params={"size": 1})).json()
    second = (await reviews.get("/products/p-1001/reviews", params={"size": 1, "page": 2})).json()
    assert (first["total"], first["average"]) == (count, summary["average"]), (
        "the whole product, not the page"
    )
    assert (second["total"], second["average"]) == (count, summary["average"])
    assert first["items"][0]["created_at"] >= second["items"][0]["created_at"]
    assert first["items"][0]["id"] != second["items"][0]["id"]


async def test_summaries_for_a_batch(reviews: httpx.AsyncClient, reviews_app: FastAPI) -> None:
    body = (
        await reviews.get("/summaries", params=[("product_ids", "p-1002,p-1011"), ("product_ids", "p-x")])
    ).json()
    assert [s["product_id"] for s in body["items"]] == ["p-1002", "p-1011", "p-x"]
    with store_connection(reviews_app) as conn:
        avg, count = conn.execute(
            text("SELECT AVG(rating), COUNT(*) FROM reviews WHERE product_id = 'p-1002'")
        ).one()
    assert body["items"][0] == {"product_id": "p-1002", "average": round(float(avg), 2), "count": count}
    assert body["items"][2] == {"product_id": "p-x", "average": None, "count": 0}
    assert (await reviews.get("/summaries", params={"product_ids": ""})).json() == {"items": []}


async def test_create_as_user_updates_the_summary(reviews: httpx.AsyncClient, user_headers: Headers) -> None:
    review = {"rating": 5, "title": "Great tent", "body": "Dry through a storm."}
    created = await reviews.post("/products/p-1100/reviews", json=review, headers=user_headers("alice"))
    assert created.status_code == 201
    assert created.json()["author"] == "alice"
    listed = (await reviews.get("/products/p-1100/reviews")).json()
    assert [r["title"] for r in listed["items"]] == ["Great tent"]
    assert (listed["total"], listed["average"]) == (1, 5.0)
    summary = (await reviews.get("/summaries", params={"product_ids": "p-1100"})).json()["items"][0]
    assert summary == {"product_id": "p-1100", "average": 5.0, "count": 1}
    twice = await reviews.post("/products/p-1100/reviews", json=review, headers=user_headers("alice"))
    assert twice.status_code == 409
    other = await reviews.post(
        "/products/p-1100/reviews", json={**review, "rating": 2}, headers=user_headers("bob")
    )
    assert other.status_code == 201
    summary = (await reviews.get("/summaries", params={"product_ids": "p-1100"})).json()["items"][0]
    assert summary == {"product_id": "p-1100", "average": 3.5, "count": 2}
    top = (await reviews.get("/products/p-1100/reviews", params={"sort": "top", "size": 1})).json()
    assert (top["total"], top["average"], top["items"][0]["rating"]) == (2, 3.5, 5)
    none = (await reviews.get("/products/p-9999/reviews")).json()
    assert (none["items"], none["total"], none["average"]) == ([], 0, None)


async def test_create_needs_a_user(reviews: httpx.AsyncClient) -> None:
    answer = await reviews.post("/products/p-1001/reviews", json={"rating": 5, "title": "x"})
    assert answer.status_code == 401
    assert answer.headers["content-type"].startswith(PROBLEM)


async def test_bad_input_is_problem_json(reviews: httpx.AsyncClient, user_headers: Headers) -> None:
    for params in ({"page": 0}, {"size": 0}, {"size": 51}):
        assert (await reviews.get("/products/p-1001/reviews", params=params)).status_code == 422
    too_many = ",".join(f"p-{n}" for n in range(101))
    assert (await reviews.get("/summaries", params={"product_ids": too_many})).status_code == 422
    for bad in (
        {"rating": 0, "title": "x"},
        {"rating": 6, "title": "x"},
        {"rating": 3, "title": ""},
        {"rating": 3},
    ):
        answer = await reviews.post("/products/p-1001/reviews", json=bad, headers=user_headers("carol"))
        assert answer.status_code == 422, bad
        assert answer.headers["content-type"].startswith(PROBLEM)
    huge = {"rating": 3, "title": "x", "body": "y" * 70_000}
    assert (
        await reviews.post("/products/p-1001/reviews", json=huge, headers=user_headers("carol"))
    ).status_code == 413


async def test_chaos_error_rate_breaks_and_heals_without_restart(
    reviews: httpx.AsyncClient, reviews_app: FastAPI
) -> None:
    live: LiveSettings = chassis_state(reviews_app).live  # type: ignore[type-arg]
    live.replace(live.current.model_copy(update={"chaos": ChaosSettings(error_rate=1.0)}))
    for _ in range(5):
        assert (await reviews.get("/summaries", params={"product_ids": "p-1001"})).status_code == 500
    assert (await reviews.get("/health/live")).status_code == 200
    live.replace(live.current.model_copy(update={"chaos": ChaosSettings(error_rate=0.0)}))
    assert (await reviews.get("/summaries", params={"product_ids": "p-1001"})).status_code == 200


async def test_seeding_is_idempotent(reviews_store: str, redis_url: str) -> None:
    counts = []
    for _ in range(2):
        app = create(
            Settings(database_url=reviews_store, redis_url=redis_url, zipkin_endpoint=None, env="test")
        )
        async with app.router.lifespan_context(app):
            with store_connection(app) as conn:
                counts.append(conn.execute(text("SELECT COUNT(*) FROM reviews")).scalar_one())
    assert counts[0] == counts[1] > 50


async def test_openapi_documents_the_api(reviews: httpx.AsyncClient) -> None:
    assert (await reviews.get("/docs")).status_code == 200
    paths = (await reviews.get("/openapi.json")).json()["paths"]
    assert {"/products/{product_id}/reviews", "/summaries"} <= set(paths)


async def test_top_sort_puts_the_best_rating_first(reviews: httpx.AsyncClient, user_headers: Headers) -> None:
    for user, rating in (("u1", 2), ("u2", 5), ("u3", 4)):
        body = {"rating": rating, "title": f"{rating} stars"}
        await reviews.post("/products/p-2000/reviews", json=body, headers=user_headers(user))
    top = (await reviews.get("/products/p-2000/reviews", params={"sort": "top", "size": 1})).json()
    assert [r["rating"] for r in top["items"]] == [5]
    newest = (await reviews.get("/products/p-2000/reviews")).json()
    assert [r["author"] for r in newest["items"]] == ["u3", "u2", "u1"]
    assert (await reviews.get("/products/p-2000/reviews", params={"sort": "worst"})).status_code == 422
