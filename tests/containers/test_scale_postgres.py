"""docker-compose.scale.yml: the domain services on one PostgreSQL, two replicas each.

- every replica is healthy, on PostgreSQL, and serves (each one's access log has requests);
- 200 orders placed at once through both gateways (some keys sent twice at the same moment) are
  exactly 200 orders, and inventory holds exactly their units, no more;
- one replica of each domain service killed mid-traffic: clients retry with their
  Idempotency-Key, as a client should, and no order is lost or doubled; once the orders service
  has recovered what the killed replica left unfinished, every reservation belongs to an order
  and every order has its reservation.

Breaker state shared across replicas through the one Redis is test_scale.py's subject.
"""

from __future__ import annotations

import collections
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import pytest

from msa_testing.containers import ComposeStack, Container
from msa_testing.infra import require_infra
from msa_testing.polling import wait_until

DOMAIN = ["catalog", "inventory", "reviews", "orders"]
FILES = ["-f", "docker-compose.yml", "-f", "docker-compose.scale.yml"]
# 172-194 units each in inventory's demo seed: the 600 orders of this file take 150 of each
SKUS = ["p-1002", "p-1016", "p-1021", "p-1026"]
GIVE_UP_S = 120.0  # a client keeps retrying a key this long (an abandoned attempt takes ~35 s)


@pytest.fixture(scope="module")
def scaled(stack: ComposeStack) -> Iterator[ComposeStack]:
    image = stack.compose(*FILES, "config", "--images", timeout=60).stdout.split()
    postgres_image = next(name for name in image if name.startswith("postgres:"))
    if stack.docker("images", "-q", postgres_image).strip() == "":
        require_infra(f"no {postgres_image} image: bash scripts/standin-images.sh builds a stand-in")
    stack.compose(*FILES, "up", "-d", "--wait", "--wait-timeout", "300", "postgres", *DOMAIN, timeout=420)
    try:
        # the gateways still hold connections to the replaced containers: wait for whole pages
        wait_until("whole product pages again", lambda: _whole_page(stack), timeout_s=60)
        yield stack
    finally:
        # back to the base stack: SQLite, one replica each, no PostgreSQL
        one_each = [arg for service in DOMAIN for arg in ("--scale", f"{service}=1")]
        stack.compose("up", "-d", "--wait", "--remove-orphans", *one_each, *DOMAIN, timeout=420)
        stack.docker("volume", "rm", "-f", f"{stack.project}_postgres-data")
        wait_until("whole product pages on the base stack", lambda: _whole_page(stack), timeout_s=60)


def _whole_page(stack: ComposeStack) -> bool:
    try:
        answer = httpx.get(f"{stack.url('gateway-web')}/api/products/p-1001", timeout=5)
    except httpx.HTTPError:
        return False
    return answer.status_code == 200 and not answer.json().get("degraded")


def psql(stack: ComposeStack, database: str, sql: str) -> list[list[str]]:
    (postgres,) = stack.containers("postgres", all_states=False)
    out = stack.docker(
        "exec", postgres.name, "psql", "-U", "postgres", "-d", database, "-AtF", "\t", "-c", sql
    )
    return [line.split("\t") for line in out.splitlines() if line]


# --- clients of both gateways ------------------------------------------------------------------
@dataclass
class Buyer:
    """One user at one gateway: places an order under a key, retrying with that key while the
    answer says "not now" (5xx, 409 still in progress, connection errors), as a client should."""

    post: Callable[[str, dict[str, object]], httpx.Response]
    answers: collections.Counter[int] = field(default_factory=collections.Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def order(self, key: str, sku: str) -> str:
        body = {"lines": [{"product_id": sku, "quantity": 1}]}
        deadline = time.monotonic() + GIVE_UP_S
        delay = 0.2
        while True:
            try:
                answer = self.post(key, body)
                status = answer.status_code
            except httpx.HTTPError:
                answer, status = None, 0
            with self.lock:
                self.answers[status] += 1
            if answer is not None and status in (200, 201):
                order_id: str = answer.json()["id"]
                return order_id
            # 409 "Request in progress" with Retry-After: the key's first attempt is not finished
            # (yet, or ever: then orders' recovery releases it after abandoned_after_s and the key
            # is new again)
            in_progress = (
                answer is not None
                and status == 409
                and answer.json().get("title") == "Request in progress"
                and "retry-after" in answer.headers
            )
            retryable = status == 0 or status >= 500 or in_progress
            if not retryable or time.monotonic() > deadline:
                raise AssertionError(f"key {key}: gave up on {status}: {answer.text if answer else ''}")
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def web_buyer(stack: ComposeStack, client: httpx.Client) -> Buyer:
    login = client.post(
        f"{stack.url('gateway-web')}/auth/login", json={"username": "alice", "password": "alice-password"}
    )
    assert login.status_code == 200, login.text
    csrf = client.cookies["msa_csrf"]

    def post(key: str, body: dict[str, object]) -> httpx.Response:
        return client.post(
            f"{stack.url('gateway-web')}/api/orders",
            json=body,
            headers={"X-CSRF-Token": csrf, "Idempotency-Key": key},
        )

    return Buyer(post)


def mobile_buyer(stack: ComposeStack, client: httpx.Client) -> Buyer:
    token = client.post(
        f"{stack.url('gateway-mobile')}/auth/token", json={"username": "bob", "password": "bob-password"}
    ).json()["access_token"]

    def post(key: str, body: dict[str, object]) -> httpx.Response:
        return client.post(
            f"{stack.url('gateway-mobile')}/m/orders",
            json=body,
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
        )

    return Buyer(post)


@dataclass
class Placed:
    orders: dict[str, tuple[str, str]]  # key -> (order id, sku)
    during_at: float | None  # when ``during`` was over (time.monotonic())
    after_during: int  # answers that came back after that


def place_orders(
    stack: ComposeStack, count: int, *, during: Callable[[], None] | None = None, during_after: int = 0
) -> Placed:
    """``count`` orders, half through each gateway, 16 at a time; every tenth key is sent a second
    time right after the first (the two run at once). ``during`` runs once ``during_after`` orders
    have been answered, while the rest are in flight."""
    answered = threading.Semaphore(0)
    with httpx.Client(timeout=15) as web_http, httpx.Client(timeout=15) as mobile_http:
        buyers = [web_buyer(stack, web_http), mobile_buyer(stack, mobile_http)]
        jobs = []
        for n in range(count):
            job = (buyers[n % 2], f"scale-{uuid.uuid4()}", SKUS[n % len(SKUS)])
            jobs += [job, job] if n % 10 == 0 else [job]

        def run(buyer: Buyer, key: str, sku: str) -> tuple[str, float]:
            order_id = buyer.order(key, sku)
            answered.release()
            return order_id, time.monotonic()

        during_at = None
        with ThreadPoolExecutor(16) as pool:
            futures = [pool.submit(run, *job) for job in jobs]
            if during is not None:
                for _ in range(during_after):
                    assert answered.acquire(timeout=GIVE_UP_S), "orders stopped coming back"
                during()
                during_at = time.monotonic()  # answers after this came once it had happened
            results = [future.result(timeout=GIVE_UP_S + 60) for future in futures]
    orders: dict[str, tuple[str, str]] = {}
    for (_, key, sku), (order_id, _) in zip(jobs, results, strict=True):
        assert orders.setdefault(key, (order_id, sku)) == (order_id, sku), f"key {key}: two orders"
    after = sum(1 for _, done_at in results if during_at is not None and done_at > during_at)
    print("answers:", dict(buyers[0].answers + buyers[1].answers), f"({after} after `during`)")
    return Placed(orders, during_at, after)


def reserved(stack: ComposeStack) -> dict[str, int]:
    rows = psql(stack, "inventory", f"SELECT sku, reserved FROM stock WHERE sku IN ({_quoted(SKUS)})")
    return {sku: int(n) for sku, n in rows}


def _quoted(values: list[str]) -> str:
    return ", ".join(f"'{value}'" for value in values)


def assert_every_reservation_is_an_order(stack: ComposeStack) -> None:
    """No order without its reservation, no reservation without its order, the same lines."""
    confirmed = psql(
        stack, "orders",
        "SELECT o.id, l.product_id, l.quantity FROM orders o JOIN order_lines l ON l.order_id = o.id "
        "WHERE o.status = 'confirmed' ORDER BY 1, 2",
    )  # fmt: skip
    held = psql(
        stack, "inventory",
        "SELECT r.order_id, l.sku, l.quantity FROM reservations r "
        "JOIN reservation_lines l ON l.order_id = r.order_id WHERE r.status = 'reserved' ORDER BY 1, 2",
    )  # fmt: skip
    assert confirmed == held


# --- the tests ---------------------------------------------------------------------------------
def test_every_replica_is_healthy_on_postgres_and_serves(scaled: ComposeStack) -> None:
    for service in DOMAIN:
        replicas = scaled.containers(service, all_states=False)
        assert len(replicas) == 2, f"{service}: {[(r.name, r.state) for r in replicas]}"
        for replica in replicas:
            ready = scaled.get_json(replica.name, "/health/ready")
            store = ready["checks"]["store"]
            assert store["status"] == "up", ready
            assert f"@postgres:5432/{service}" in str(store), store
            assert "dev-only" not in str(store), "the password is not shown"
    # Several at once, so the gateway opens several connections (one client reuses one), each to
    # the next address compose's DNS gave for the name.
    with httpx.Client(timeout=10) as client, ThreadPoolExecutor(8) as pool:
        url = f"{scaled.url('gateway-web')}/api/products/p-1003"
        assert set(pool.map(lambda _: client.get(url).status_code, range(160))) == {200}
    time.sleep(0.5)  # access lines reach stdout every 0.1 s (chassis.logging)
    for replica in scaled.containers("catalog", all_states=False):
        assert '"GET /products/p-1003 ' in scaled.docker("logs", replica.name), f"{replica.name} served none"


def test_200_orders_at_once_through_both_gateways_are_exactly_200_orders(scaled: ComposeStack) -> None:
    before = reserved(scaled)
    placed = place_orders(scaled, 200).orders
    assert len({order_id for order_id, _ in placed.values()}) == 200
    per_sku = collections.Counter(sku for _, sku in placed.values())
    after = reserved(scaled)
    assert {sku: after[sku] - before[sku] for sku in SKUS} == dict(per_sku)
    ids = _quoted([order_id for order_id, _ in placed.values()])
    assert psql(scaled, "orders", f"SELECT COUNT(*) FROM orders WHERE id IN ({ids})") == [["200"]]
    assert psql(scaled, "orders", "SELECT COUNT(*) FROM idempotency_keys WHERE state <> 'done'") == [["0"]]
    assert_every_reservation_is_an_order(scaled)


def test_one_replica_of_each_domain_service_killed_mid_traffic_loses_no_order(scaled: ComposeStack) -> None:
    victims: list[Container] = [scaled.containers(s, all_states=False)[0] for s in DOMAIN]

    def kill_one_of_each() -> None:
        for victim in victims:
            scaled.docker("kill", victim.name)

    before = reserved(scaled)
    run = place_orders(scaled, 400, during=kill_one_of_each, during_after=60)
    assert run.after_during >= 200, "the kill came in the middle of the traffic, not after it"
    placed = run.orders
    assert len({order_id for order_id, _ in placed.values()}) == 400, "one order per key"
    # What the killed orders replica left unfinished, the survivors' recovery releases.
    wait_until(
        "no unfinished order attempt left",
        lambda: (
            psql(scaled, "orders", "SELECT COUNT(*) FROM idempotency_keys WHERE state <> 'done'") == [["0"]]
        ),
        timeout_s=90,
    )
    per_sku = collections.Counter(sku for _, sku in placed.values())
    after = reserved(scaled)
    assert {sku: after[sku] - before[sku] for sku in SKUS} == dict(per_sku)
    assert_every_reservation_is_an_order(scaled)
    # the killed replicas come back (restart: unless-stopped) or are started again for the next test
    scaled.compose(*FILES, "up", "-d", "--wait", "--wait-timeout", "180", *DOMAIN, timeout=300)
