"""orders calls inventory as itself (client_credentials token, scope inventory:reserve), never with
the user's token; and Idempotency-Keys expire after ``idempotency_ttl_s``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import jwt
from sqlalchemy import text

from chassis import ServiceError
from chassis.auth import ServiceTokenProvider
from chassis.state import chassis_state, provide, resource
from chassis.store import Database
from msa_testing.apps import TokenIssuer
from orders.customer_orders import service

from .conftest import Platform

TENT = {"lines": [{"product_id": "p-1011", "quantity": 1}]}
SOCKS = {"lines": [{"product_id": "p-1010", "quantity": 1}]}


class Recorder(httpx.AsyncBaseTransport):
    """Notes the bearer token of every request that reaches inventory."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.subs: list[str] = []
        self.codes: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        self.subs.append(str(jwt.decode(token, options={"verify_signature": False})["sub"]) if token else "")
        response = await self.inner.handle_async_request(request)
        self.codes.append(response.status_code)
        return response


async def test_inventory_sees_orders_service_token_not_the_users(platform: Platform) -> None:
    recorder = Recorder(platform.inventory_link.inner)
    platform.inventory_link.inner = recorder
    placed = [
        await platform.orders.post("/orders", json=TENT, headers=platform.headers("alice", "k-a")),
        await platform.orders.post("/orders", json=SOCKS, headers=platform.headers("bob", "k-b")),
        # short stock: the reserve is refused and orders releases (the undo path)
        await platform.orders.post(
            "/orders", json={"lines": [{"product_id": "p-1011", "quantity": 99}]},
            headers=platform.headers("alice", "k-c"),
        ),
    ]  # fmt: skip
    assert [answer.status_code for answer in placed] == [201, 201, 409]
    assert len(recorder.subs) == 4  # 3 reserves + 1 release
    assert set(recorder.subs) == {"service:orders"}
    tokens: ServiceTokenProvider = resource(platform.orders_app, ServiceTokenProvider)
    assert tokens.fetches == 1  # cached across requests and users


async def test_a_refused_service_token_is_fetched_again_once(platform: Platform) -> None:
    stranger = TokenIssuer()  # signs with a key inventory does not trust: 401
    issued: list[str] = []

    async def fetch() -> tuple[str, float]:
        issuer = stranger if not issued else platform.issuer
        issued.append(issuer.token("service:orders", "inventory:reserve"))
        return issued[-1], 300.0

    provide(platform.orders_app, ServiceTokenProvider(fetch=fetch))
    recorder = Recorder(platform.inventory_link.inner)
    platform.inventory_link.inner = recorder
    answer = await platform.orders.post("/orders", json=TENT, headers=platform.headers("alice", "k-r"))
    assert answer.status_code == 201, answer.text
    assert recorder.codes == [401, 201]
    assert len(issued) == 2


async def test_an_expired_key_is_new_again(platform: Platform) -> None:
    live = chassis_state(platform.orders_app).live
    live.replace(live.current.model_copy(update={"idempotency_ttl_s": 0.3}))
    headers = platform.headers("alice", "k-ttl")
    first = await platform.orders.post("/orders", json=TENT, headers=headers)
    replay = await platform.orders.post("/orders", json=TENT, headers=headers)
    assert (first.status_code, replay.status_code) == (201, 200)
    assert replay.json()["id"] == first.json()["id"]
    await asyncio.sleep(0.4)
    # expired: a new order, even with another body (the old one is forgotten, not a mismatch)
    again = await platform.orders.post("/orders", json=SOCKS, headers=headers)
    assert again.status_code == 201
    assert again.json()["id"] != first.json()["id"]
    assert platform.reserved_units("p-1011") == 1
    assert platform.reserved_units("p-1010") == 1


async def test_expired_keys_are_purged_but_unfinished_attempts_stay(platform: Platform) -> None:
    for n in range(3):
        answer = await platform.orders.post("/orders", json=TENT, headers=platform.headers("bob", f"k-p{n}"))
        assert answer.status_code == 201
    old = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    with platform.orders_db() as conn:
        conn.execute(text("UPDATE idempotency_keys SET updated_at = :old WHERE key = 'k-p0'"), {"old": old})
        conn.execute(
            text(
                'INSERT INTO idempotency_keys ("user", key, request_hash, order_id, state, updated_at) '
                "VALUES ('bob', 'k-pending', 'h', 'o-pending', 'pending', :old)"
            ),
            {"old": old},
        )
    purged = await service.purge_expired_keys(db=resource(platform.orders_app, Database), ttl_s=3600)
    assert purged == 1
    with platform.orders_db() as conn:
        keys = {
            row[0] for row in conn.execute(text("SELECT key FROM idempotency_keys WHERE \"user\" = 'bob'"))
        }
    assert keys == {"k-p1", "k-p2", "k-pending"}  # the pending attempt is recovery's, not the TTL's
    # the orders themselves stay
    listing = await platform.orders.get("/orders", headers=platform.headers("bob"))
    assert listing.json()["total"] == 1 + 3  # bob's seeded demo order + these


async def test_no_service_token_is_503_and_holds_no_stock(platform: Platform) -> None:
    async def refused() -> tuple[str, float]:
        raise ServiceError("The authentication service refused this service's credentials.", status=503)

    provide(platform.orders_app, ServiceTokenProvider(fetch=refused))
    before = platform.reserved_units("p-1011")
    for n in range(6):  # more than the breaker's fail_max
        answer = await platform.orders.post(
            "/orders", json=TENT, headers=platform.headers("alice", f"k-none{n}")
        )
        assert answer.status_code == 503
    # the token is fetched before inventory's breaker: auth-service's failure is not inventory's
    inventory = chassis_state(platform.orders_app).downstreams["inventory"].breaker
    assert (inventory.state, inventory.cb.fail_counter) == ("closed", 0)
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert platform.reserved_units("p-1011") == before
    with platform.orders_db() as conn:
        assert (
            conn.execute(text("""SELECT COUNT(*) FROM orders WHERE "user" = 'alice'""")).scalar_one() == 2
        )  # the demo ones
