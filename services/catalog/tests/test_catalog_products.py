"""catalog: listing, search, get, batch, admin writes, bad input, and its store (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from catalog.main import create
from msa_testing.store import store_connection

from .conftest import make_settings

PROBLEM = "application/problem+json"


async def test_list_is_paged_and_totals_the_seeded_catalog(catalog: httpx.AsyncClient) -> None:
    first = (await catalog.get("/products", params={"page": 1, "size": 10})).json()
    fourth = (await catalog.get("/products", params={"page": 4, "size": 10})).json()
    assert first["total"] >= 30
    assert len(first["items"]) == 10
    assert len(fourth["items"]) == first["total"] - 30
    assert {p["id"] for p in first["items"]}.isdisjoint({p["id"] for p in fourth["items"]})
    product = first["items"][0]
    assert product["price_cents"] > 0
    assert product["image_url"].startswith("/img/")
    assert product["thumb_url"].startswith("/img/")


async def test_search_by_text_and_category(catalog: httpx.AsyncClient) -> None:
    tents = (await catalog.get("/products", params={"q": "tent"})).json()
    assert [p["name"] for p in tents["items"]] == ["Two-Person Tent"]
    climbing = (await catalog.get("/products", params={"category": "climbing", "size": 100})).json()
    assert climbing["total"] == len(climbing["items"]) >= 4
    assert {p["category"] for p in climbing["items"]} == {"climbing"}
    both = (await catalog.get("/products", params={"category": "climbing", "q": "helmet"})).json()
    assert [p["id"] for p in both["items"]] == ["p-1020"]
    # LIKE wildcards in the query are literal text, not patterns.
    assert (await catalog.get("/products", params={"q": "%"})).json()["total"] == 0


async def test_search_ignores_case_beyond_ascii_on_both_engines(
    catalog: httpx.AsyncClient, bearer: Callable[..., dict[str, str]]
) -> None:
    product = {"id": "p-eclair", "name": "Éclair Stove", "category": "cooking", "price_cents": 4900}
    assert (await catalog.post("/products", json=product, headers=bearer())).status_code == 201
    for query in ("Éclair", "éclair", "ÉCLAIR", "éCLAIR sTOVE"):
        found = (await catalog.get("/products", params={"q": query})).json()
        assert [p["id"] for p in found["items"]] == ["p-eclair"], query


async def test_get_and_unknown_id(catalog: httpx.AsyncClient) -> None:
    assert (await catalog.get("/products/p-1001")).json()["name"] == "Trail Running Shoe"
    missing = await catalog.get("/products/p-nope")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith(PROBLEM)
    assert missing.json()["title"] == "Product not found"


async def test_batch_get_keeps_order_and_lists_missing(catalog: httpx.AsyncClient) -> None:
    answer = await catalog.get("/products/batch", params=[("ids", "p-1003"), ("ids", "p-x,p-1001")])
    body = answer.json()
    assert [p["id"] for p in body["items"]] == ["p-1003", "p-1001"]
    assert body["missing"] == ["p-x"]
    too_many = await catalog.get("/products/batch", params={"ids": ",".join(f"p-{i}" for i in range(101))})
    assert too_many.status_code == 422
    assert (await catalog.get("/products/batch", params={"ids": ""})).json() == {"items": [], "missing": []}


async def test_page_and_size_bounds_are_problem_json(catalog: httpx.AsyncClient) -> None:
    for params in ({"page": 0}, {"size": 0}, {"size": 101}, {"page": "x"}):
        answer = await catalog.get("/products", params=params)
        assert answer.status_code == 422, params
        assert answer.headers["content-type"].startswith(PROBLEM)


async def test_admin_creates_and_updates(
    catalog: httpx.AsyncClient, bearer: Callable[..., dict[str, str]]
) -> None:
    new = {"id": "p-9001", "name": "Bivy Sack", "category": "camping", "price_cents": 9900}
    created = await catalog.post("/products", json=new, headers=bearer())
    assert created.status_code == 201
    assert created.headers["location"] == "/products/p-9001"
    again = await catalog.post("/products", json=new, headers=bearer())
    assert again.status_code == 409
    changed = await catalog.patch("/products/p-9001", json={"price_cents": 8900}, headers=bearer())
    assert changed.json()["price_cents"] == 8900
    assert changed.json()["name"] == "Bivy Sack"
    assert (await catalog.get("/products/p-9001")).json()["price_cents"] == 8900
    unknown = await catalog.patch("/products/p-nope", json={"price_cents": 1}, headers=bearer())
    assert unknown.status_code == 404


async def test_money_is_a_json_integer_and_ids_are_never_dot_segments(
    catalog: httpx.AsyncClient, bearer: Callable[..., dict[str, str]]
) -> None:
    for price in ("12", True, 12.0):  # lax JSON parsing would read each as a number
        new = {"id": "p-9002", "name": "Bivy Sack", "category": "camping", "price_cents": price}
        created = await catalog.post("/products", json=new, headers=bearer())
        assert created.status_code == 422, (price, created.text)
        changed = await catalog.patch("/products/p-1001", json={"price_cents": price}, headers=bearer())
        assert changed.status_code == 422, (price, changed.text)
    assert (await catalog.get("/products/p-9002")).status_code == 404
    assert (await catalog.get("/products/p-1001")).json()["price_cents"] == 12900
    for path in ("/products/%2E", "/products/%2E%2E", "/products/-p-1001"):
        answer = await catalog.get(path)
        assert answer.status_code == 422, (path, answer.text)
        assert answer.headers["content-type"].startswith(PROBLEM)


async def test_writes_need_the_catalog_write_scope(
    catalog: httpx.AsyncClient, bearer: Callable[..., dict[str, str]]
) -> None:
    new = {"name": "Bivy Sack", "category": "camping", "price_cents": 9900}
    assert (await catalog.post("/products", json=new)).status_code == 401
    customer = bearer(sub="alice", scope="orders:write")
    assert (await catalog.post("/products", json=new, headers=customer)).status_code == 403
    assert (
        await catalog.patch("/products/p-1001", json={"price_cents": 1}, headers=customer)
    ).status_code == 403
    assert (await catalog.get("/products/p-1001")).json()["price_cents"] == 12900


async def test_forged_tokens_are_refused(catalog: httpx.AsyncClient) -> None:
    import jwt

    new = {"name": "Bivy Sack", "category": "camping", "price_cents": 9900}
    forged = jwt.encode(
        {"sub": "admin", "scope": "catalog:write"}, "a-guessed-secret-of-32-bytes-len!", "HS256"
    )
    answer = await catalog.post("/products", json=new, headers={"Authorization": f"Bearer {forged}"})
    assert answer.status_code == 401
    assert answer.headers["content-type"].startswith(PROBLEM)


async def test_invalid_writes_are_422(
    catalog: httpx.AsyncClient, bearer: Callable[..., dict[str, str]]
) -> None:
    bad = [
        {"name": "x", "category": "camping", "price_cents": -1},
        {"name": "", "category": "camping", "price_cents": 1},
        {"name": "x", "category": "camping", "price_cents": 1, "colour": "red"},
    ]
    for body in bad:
        assert (await catalog.post("/products", json=body, headers=bearer())).status_code == 422, body
    nulled = await catalog.patch("/products/p-1001", json={"name": None}, headers=bearer())
    assert nulled.status_code == 422


async def test_oversize_body_is_413(
    catalog: httpx.AsyncClient, bearer: Callable[..., dict[str, str]]
) -> None:
    body = {"name": "x", "category": "camping", "price_cents": 1, "description": "y" * 70_000}
    answer = await catalog.post("/products", json=body, headers=bearer())
    assert answer.status_code == 413
    assert answer.headers["content-type"].startswith(PROBLEM)
    assert answer.json()["trace_id"]
    assert "x-request-id" in answer.headers

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(20):
            yield b"x" * 8192

    streamed = await catalog.post("/products", content=chunks(), headers=bearer())
    assert streamed.status_code == 413


async def test_store_is_created_and_seeded_once(catalog_store: str, redis_url: str) -> None:
    for _ in range(2):  # a restart keeps data and adds no duplicates
        app: FastAPI = create(make_settings(catalog_store, redis_url))
        async with app.router.lifespan_context(app):
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c")
            async with client:
                total = (await client.get("/products")).json()["total"]
            with store_connection(app) as conn:
                assert conn.execute(text("SELECT COUNT(*) FROM products")).scalar_one() == total == 32


async def test_ready_reports_the_store(catalog: httpx.AsyncClient) -> None:
    ready = (await catalog.get("/health/ready")).json()
    assert ready["checks"]["store"]["status"] == "up"


async def test_openapi_documents_the_api(catalog: httpx.AsyncClient) -> None:
    assert (await catalog.get("/docs")).status_code == 200
    paths = (await catalog.get("/openapi.json")).json()["paths"]
    assert {"/products", "/products/batch", "/products/{product_id}"} <= set(paths)
    assert {"get", "post"} <= set(paths["/products"])


async def test_keyset_paging_with_after_walks_the_whole_catalog(catalog: httpx.AsyncClient) -> None:
    seen: list[str] = []
    after = None
    for _ in range(10):  # bounded: 32 products in pages of 10
        params: dict[str, str | int] = {"size": 10, **({"after": after} if after else {})}
        page = (await catalog.get("/products", params=params)).json()
        seen += [p["id"] for p in page["items"]]
        after = page["next_after"]
        if after is None:
            break
    assert seen == sorted(seen)
    assert len(seen) == len(set(seen)) == 32
    climbing = (await catalog.get("/products", params={"category": "climbing", "after": "p-1019"})).json()
    assert [p["id"] for p in climbing["items"]] == ["p-1020", "p-1021", "p-1022"]
    assert climbing["next_after"] is None
