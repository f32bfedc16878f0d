"""What the web gateway refuses at the edge, before any downstream call: Idempotency-Keys orders
would refuse, ids that are dot segments, quantities that are not JSON integers; and what it ignores:
credentials sent to a public route (neither checked nor relayed).

The gateway runs in-process; auth-service, catalog, inventory, reviews and orders are the real apps
on real sockets with their own stores and a real Redis.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable

import httpx
from fastapi import FastAPI

from msa_testing.edge import assert_credentials_ignored

PROBLEM = "application/problem+json"
ALICE = {"username": "alice", "password": "alice-password"}
Runner = Callable[[FastAPI], contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]
ORDER = {"lines": [{"product_id": "p-1001", "quantity": 1}]}


async def _login(client: httpx.AsyncClient) -> dict[str, str]:
    response = await client.post("/auth/login", json=ALICE)
    assert response.status_code == 200, response.text
    return {"X-CSRF-Token": response.json()["csrf_token"]}


async def _order_total(client: httpx.AsyncClient) -> int:
    response = await client.get("/api/orders")
    assert response.status_code == 200, response.text
    total: int = response.json()["total"]
    return total


async def test_idempotency_keys_orders_would_refuse_are_400_at_the_gateway(
    gateway: Callable[..., FastAPI], run: Runner
) -> None:
    bad_keys: dict[str, bytes] = {
        "non-ASCII (UTF-8 bytes)": "café".encode(),
        "latin-1 byte": b"caf\xe9",
        "space inside": b"two words",
        "too long": b"k" * 256,
    }
    async with run(gateway()) as web:
        csrf = await _login(web)
        before = await _order_total(web)
        answers = {
            reason: await web.post("/api/orders", json=ORDER, headers={**csrf, "Idempotency-Key": key})
            for reason, key in bad_keys.items()
        }
        after = await _order_total(web)
    for reason, response in answers.items():
        assert response.status_code == 400, (reason, response.status_code, response.text)
        assert response.headers["content-type"] == PROBLEM, reason
        assert "Idempotency-Key" in response.json()["detail"], reason
    assert after == before, "nothing was placed"


async def test_order_ids_that_are_dot_segments_never_reach_another_route(
    gateway: Callable[..., FastAPI], run: Runner
) -> None:
    async with run(gateway()) as web:
        await _login(web)
        # httpx sends %2E as written; the gateway sees the decoded path segment "." or "..".
        answers = {path: await web.get(path) for path in ("/api/orders/%2E", "/api/orders/%2E%2E")}
        demo = await web.get("/api/orders/o-demo-0001")
    for path, response in answers.items():
        assert response.status_code == 422, (path, response.status_code, response.text)
        assert response.headers["content-type"] == PROBLEM, path
    assert demo.status_code == 200, "alice's demo order: ids with dashes still work"


async def test_product_ids_that_are_dot_segments_are_refused(
    gateway: Callable[..., FastAPI], run: Runner
) -> None:
    review = {"rating": 4, "title": "t", "body": "b"}
    async with run(gateway()) as web:
        csrf = await _login(web)
        answers = [await web.get(path) for path in ("/api/products/%2E", "/api/products/%2E%2E")]
        answers.append(await web.post("/api/products/%2E%2E/reviews", json=review, headers=csrf))
    for response in answers:
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == PROBLEM


async def test_quantities_must_be_json_integers(gateway: Callable[..., FastAPI], run: Runner) -> None:
    async with run(gateway()) as web:
        csrf = await _login(web)
        before = await _order_total(web)
        answers = {
            repr(quantity): await web.post(
                "/api/orders",
                json={"lines": [{"product_id": "p-1001", "quantity": quantity}]},
                headers={**csrf, "Idempotency-Key": uuid.uuid4().hex},
            )
            for quantity in (True, "1", 1.0)
        }
        after = await _order_total(web)
    for quantity, response in answers.items():
        assert response.status_code == 422, (quantity, response.text)
        assert response.headers["content-type"] == PROBLEM
    assert after == before, "nothing was placed"


async def test_credentials_on_a_public_route_are_ignored_not_checked(
    gateway: Callable[..., FastAPI], run: Runner
) -> None:
    app = gateway()
    async with run(app) as web:
        csrf = await _login(web)
        ended = dict(web.cookies)
        assert (await web.post("/auth/logout", headers=csrf)).status_code == 204
        web.cookies.clear()
        presented = {
            "ended session cookie": {"Cookie": "; ".join(f"{k}={v}" for k, v in ended.items())},
            "forged bearer token": {"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9."},
        }
        await assert_credentials_ignored(
            web, app, ("/api/products?size=5", "/api/products/p-1001"), presented
        )
