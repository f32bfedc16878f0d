"""What the mobile gateway refuses at the edge, before any downstream call: Idempotency-Keys orders
would refuse, ids that are dot segments, quantities that are not JSON integers; and what it ignores:
a token sent to a public route (neither checked nor relayed).

The gateway runs in-process; auth-service, catalog, inventory, reviews and orders are the real apps
on real sockets with their own stores and a real Redis.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI

from msa_testing.edge import assert_credentials_ignored

PROBLEM = "application/problem+json"
Runner = Callable[[FastAPI], contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]
ORDER = {"lines": [{"product_id": "p-1003", "quantity": 1}]}


async def _tokens(client: httpx.AsyncClient, user: str = "alice") -> dict[str, Any]:
    response = await client.post("/auth/token", json={"username": user, "password": f"{user}-password"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _order_count(client: httpx.AsyncClient, auth: dict[str, str]) -> int:
    response = await client.get("/m/orders", params={"limit": 50}, headers=auth)
    assert response.status_code == 200, response.text
    return len(response.json()["items"])


async def test_idempotency_keys_orders_would_refuse_are_400_at_the_gateway(
    gateway: Callable[..., FastAPI], run: Runner
) -> None:
    bad_keys: dict[str, bytes] = {
        "non-ASCII (UTF-8 bytes)": "café".encode(),
        "latin-1 byte": b"caf\xe9",
        "space inside": b"two words",
        "too long": b"k" * 256,
    }
    async with run(gateway()) as mobile:
        auth = _bearer((await _tokens(mobile))["access_token"])
        before = await _order_count(mobile, auth)
        answers = {
            reason: await mobile.post("/m/orders", json=ORDER, headers={**auth, "Idempotency-Key": key})
            for reason, key in bad_keys.items()
        }
        missing = await mobile.post("/m/orders", json=ORDER, headers=auth)
        after = await _order_count(mobile, auth)
        good = await mobile.post("/m/orders", json=ORDER, headers={**auth, "Idempotency-Key": "k" * 255})
    for reason, response in answers.items():
        assert response.status_code == 400, (reason, response.status_code, response.text)
        assert response.headers["content-type"] == PROBLEM, reason
        assert "Idempotency-Key" in response.json()["detail"], reason
    assert missing.status_code == 422, missing.text  # a required header, like any required parameter
    assert missing.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    assert after == before, "nothing was placed"
    assert good.status_code == 201, good.text


async def test_order_ids_that_are_dot_segments_never_reach_another_route(
    gateway: Callable[..., FastAPI], run: Runner
) -> None:
    async with run(gateway()) as mobile:
        auth = _bearer((await _tokens(mobile))["access_token"])
        # httpx sends %2E as written; the gateway sees the decoded path segment "." or "..".
        answers = {
            path: await mobile.get(path, headers=auth) for path in ("/m/orders/%2E", "/m/orders/%2E%2E")
        }
        traversal = await mobile.get("/m/orders/%2E%2E%2Forders", headers=auth)
        demo = await mobile.get("/m/orders/o-demo-0001", headers=auth)
    for path, response in answers.items():
        assert response.status_code == 422, (path, response.status_code, response.text)
        assert response.headers["content-type"] == PROBLEM, path
    assert traversal.status_code == 404, traversal.text  # "../orders" has a slash: no route
    assert traversal.headers["content-type"] == PROBLEM
    assert demo.status_code == 200, "alice's demo order: ids with dashes still work"


async def test_product_ids_that_are_dot_segments_are_refused(
    gateway: Callable[..., FastAPI], run: Runner
) -> None:
    async with run(gateway()) as mobile:
        answers = [await mobile.get(path) for path in ("/m/products/%2E", "/m/products/%2E%2E")]
    for response in answers:
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == PROBLEM


async def test_quantities_must_be_json_integers(gateway: Callable[..., FastAPI], run: Runner) -> None:
    async with run(gateway()) as mobile:
        auth = _bearer((await _tokens(mobile))["access_token"])
        before = await _order_count(mobile, auth)
        answers = {
            repr(quantity): await mobile.post(
                "/m/orders",
                json={"lines": [{"product_id": "p-1003", "quantity": quantity}]},
                headers={**auth, "Idempotency-Key": uuid.uuid4().hex},
            )
            for quantity in (True, "1", 1.0)
        }
        after = await _order_count(mobile, auth)
    for quantity, response in answers.items():
        assert response.status_code == 422, (quantity, response.text)
        assert response.headers["content-type"] == PROBLEM
    assert after == before, "nothing was placed"


async def test_a_token_on_a_public_route_is_ignored_not_checked(
    gateway: Callable[..., FastAPI], run: Runner
) -> None:
    app = gateway()
    async with run(app) as mobile:
        revoked = await _tokens(mobile, "bob")
        assert (
            await mobile.post("/auth/logout", json={"refresh_token": revoked["refresh_token"]})
        ).status_code == 204
        presented = {
            "revoked": _bearer(revoked["access_token"]),
            "forged": _bearer("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9."),
            "not a bearer token": {"Authorization": "Basic YWRtaW46YWRtaW4="},
        }
        await assert_credentials_ignored(
            mobile, app, ("/m/products?limit=5", "/m/products/p-1001"), presented
        )
