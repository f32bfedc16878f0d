"""The login limits beyond one user: per client address, a global ceiling, bounded hashing, whose
X-Forwarded-For counts, and what a failed login puts in the logs. Real Redis, the app in-process."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from auth_service.main import create
from auth_service.settings import Settings

WEB = ("web", "dev-only-web-secret")
MOBILE = ("mobile", "dev-only-mobile-secret")
PROBLEM = "application/problem+json"


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)  # the peer is 127.0.0.1
        async with httpx.AsyncClient(transport=transport, base_url="http://auth-service") as client:
            yield client


Serving = Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def make_client(make_settings: Callable[..., Settings]) -> Serving:
    """``async with make_client(**settings) as client``: auth-service with those settings."""
    return lambda **overrides: serving(make_settings(**overrides))


async def login(
    client: httpx.AsyncClient,
    username: str | None = None,
    password: str = "wrong",
    *,
    ip: str | None = None,
    auth: tuple[str, str] = MOBILE,
) -> httpx.Response:
    return await client.post(
        "/oauth/token",
        data={
            "grant_type": "password",
            "username": username or "u-" + secrets.token_hex(5),
            "password": password,
        },
        auth=auth,
        headers={"X-Forwarded-For": ip} if ip else {},
    )


def assert_refused(response: httpx.Response, *, at_most_s: int) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["error"] == "too_many_attempts"
    assert 1 <= int(response.headers["retry-after"]) <= at_most_s


async def test_an_address_is_refused_after_its_failures_whatever_the_usernames(
    make_client: Serving,
) -> None:
    async with make_client(login_ip_max_failures=6, login_ip_window_s=120) as client:
        for _ in range(3):  # successes from a shared address (an office) do not count
            assert (await login(client, "alice", "alice-password", ip="203.0.113.7")).status_code == 200
        for _ in range(6):
            assert (await login(client, ip="203.0.113.7")).status_code == 400
        refused = await login(client, "alice", "alice-password", ip="203.0.113.7")
        assert_refused(refused, at_most_s=120)
        assert "from this address" in refused.json()["detail"]
        # another address is not affected
        assert (await login(client, "alice", "alice-password", ip="198.51.100.1")).status_code == 200


async def test_an_ipv6_network_counts_as_one_address(make_client: Serving) -> None:
    async with make_client(login_ip_max_failures=4) as client:
        for host in range(1, 5):  # rotating through one /64 does not reset the count
            assert (await login(client, ip=f"2001:db8:1:2::{host}")).status_code == 400
        assert_refused(await login(client, ip="2001:db8:1:2::ff"), at_most_s=300)
        assert (await login(client, "bob", "bob-password", ip="2001:db8:1:3::1")).status_code == 200


async def test_ipv4_mapped_addresses_count_as_their_ipv4_address(make_client: Serving) -> None:
    # a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d: not all in one ::/64 bucket
    async with make_client(login_ip_max_failures=3) as client:
        for _ in range(3):
            assert (await login(client, ip="::ffff:203.0.113.9")).status_code == 400
        assert_refused(await login(client, ip="203.0.113.9"), at_most_s=300)
        assert (await login(client, "bob", "bob-password", ip="::ffff:198.51.100.9")).status_code == 200


async def test_concurrent_attempts_never_exceed_the_address_limit(make_client: Serving) -> None:
    # every attempt gets a hashing slot in time: only the limit itself can refuse them
    async with make_client(login_ip_max_failures=10, login_hash_queue=100, login_hash_wait_s=10) as client:
        answers = await asyncio.gather(*(login(client, ip="203.0.113.9") for _ in range(40)))
    statuses = Counter(a.status_code for a in answers)
    # checked and counted atomically before hashing: exactly the allowed number of guesses
    assert statuses == {400: 10, 429: 30}, statuses


async def test_the_global_ceiling_refuses_logins_from_every_address(make_client: Serving) -> None:
    async with make_client(login_global_max_attempts=5, login_global_window_s=60) as client:
        for n in range(5):
            assert (await login(client, ip=f"192.0.2.{n}")).status_code == 400
        refused = await login(client, "alice", "alice-password", ip="198.51.100.50")
        assert_refused(refused, at_most_s=60)
        assert "right now" in refused.json()["detail"]


async def test_attempts_refused_by_an_address_limit_leave_the_global_budget_alone(
    make_client: Serving,
) -> None:
    async with make_client(
        login_ip_max_failures=2, login_global_max_attempts=4, login_global_window_s=60
    ) as client:
        for _ in range(2):
            assert (await login(client, ip="203.0.113.1")).status_code == 400
        for _ in range(20):  # one locked-out address hammering on cannot starve everyone else
            assert (await login(client, ip="203.0.113.1")).status_code == 429
        assert (await login(client, "alice", "alice-password", ip="198.51.100.2")).status_code == 200


async def test_hashing_is_bounded_and_a_full_queue_is_refused_at_once(make_client: Serving) -> None:
    # one slot, two may wait (for up to 5 s): of ten at once, three are checked, seven refused fast
    async with make_client(
        login_hash_slots=1, login_hash_queue=2, login_hash_wait_s=5, login_ip_max_failures=12
    ) as client:
        started = time.perf_counter()

        async def timed() -> tuple[int, float]:
            answer = await login(client, ip="203.0.113.20")
            return answer.status_code, time.perf_counter() - started

        answers = await asyncio.gather(*(timed() for _ in range(10)))
        refused = [took for status, took in answers if status == 429]
        assert Counter(status for status, _ in answers) == {400: 3, 429: 7}
        assert max(refused) < 2.0, "a refusal must not wait for a slot"
        # no password was checked for the refused ones: they do not count as failures (3 of 12 used)
        for _ in range(9):
            assert (await login(client, ip="203.0.113.20")).status_code == 400
        assert (await login(client, ip="203.0.113.20")).status_code == 429


async def test_x_forwarded_for_counts_only_from_the_gateway_clients(make_client: Serving) -> None:
    # web is a gateway here, mobile is not: mobile's X-Forwarded-For is ignored, the peer counts
    async with make_client(forwarding_clients=["web"]) as client:
        for n in range(5):
            assert (await login(client, "bob", ip=f"198.51.100.{n}")).status_code == 400
        assert_refused(await login(client, "bob", "bob-password", ip="198.51.100.99"), at_most_s=300)
        # the gateway's report of its caller's address is believed: that user is somewhere else
        assert (await login(client, "bob", "bob-password", ip="198.51.100.99", auth=WEB)).status_code == 200
        # a report that is no address is ignored (the peer counts): bob is locked out there
        assert (await login(client, "bob", "bob-password", ip="not-an-ip", auth=WEB)).status_code == 429


def test_a_service_client_cannot_be_a_forwarding_client(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(ValueError, match="orders"):
        make_settings(forwarding_clients=["web", "orders"])


async def test_failed_login_usernames_are_never_logged_as_typed(
    auth: httpx.AsyncClient, captured_logs: list[str]
) -> None:
    odd = "x'); DROP TABLE users;--\n2099-01-01 INFO forged line ${jndi:ldap://evil}"[:64]
    typed_password = "alice-password"  # typed into the username field by mistake
    for username in (odd, typed_password, "bob"):
        assert (await login(client=auth, username=username, ip="203.0.113.30")).status_code == 400
    text = "\n".join(captured_logs)
    assert "login failed for bob from 203.0.113.30" in text  # a known user is named: the log is useful
    assert text.count("login failed for unknown#") == 2
    for fragment in ("DROP TABLE", "forged line", "jndi", typed_password):
        assert fragment not in text
