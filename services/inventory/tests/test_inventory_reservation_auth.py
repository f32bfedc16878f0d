"""inventory: reserving and releasing need scope inventory:reserve (orders' service token); stock
reads stay public."""

from __future__ import annotations

import httpx

from msa_testing.apps import TokenIssuer

BODY = {"order_id": "o-auth", "lines": [{"sku": "p-1001", "quantity": 1}]}


async def reserved(client: httpx.AsyncClient) -> int:
    units: int = (await client.get("/stock/p-1001")).json()["reserved"]
    return units


async def test_reserve_and_release_without_a_token_are_401(anonymous: httpx.AsyncClient) -> None:
    before = await reserved(anonymous)  # stock reads need no token
    for path in ("/reservations", "/reservations/o-auth/release"):
        answer = await anonymous.post(path, json=BODY)
        assert answer.status_code == 401, path
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.headers["www-authenticate"].startswith("Bearer")
    assert await reserved(anonymous) == before


async def test_a_user_token_without_the_scope_is_403(
    anonymous: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    before = await reserved(anonymous)
    # even an admin's token: inventory trusts orders, not end users, with reservations
    user = issuer.headers("admin", "orders:write inventory:read inventory:write")
    for path in ("/reservations", "/reservations/o-auth/release"):
        answer = await anonymous.post(path, json=BODY, headers=user)
        assert answer.status_code == 403, path
        assert answer.json()["missing_scope"] == ["inventory:reserve"]
    assert await reserved(anonymous) == before


async def test_the_service_token_reserves_and_releases(
    anonymous: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    service = issuer.headers("service:orders", "inventory:reserve")
    before = await reserved(anonymous)
    assert (await anonymous.post("/reservations", json=BODY, headers=service)).status_code == 201
    assert await reserved(anonymous) == before + 1
    assert (await anonymous.post("/reservations/o-auth/release", headers=service)).status_code == 200
    assert await reserved(anonymous) == before
    listing = await anonymous.get("/stock", params={"skus": "p-1001,p-1002"})
    assert listing.status_code == 200
    assert len(listing.json()["items"]) == 2
