"""`docker compose up --scale catalog=2`: two catalog replicas behind the compose DNS name.

- both replicas serve product pages (each one's access log has them);
- one replica killed mid-traffic: pages may fail while connections to it break, then none does
  once the gateway's breaker and Docker's DNS round-robin have settled;
- the replicas share breaker state through Redis: calls failing in one replica open the circuit
  that the other one then reports open, without having made a failing call itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from msa_testing.containers import ComposeStack, Container
from msa_testing.polling import wait_until

PAGE = "/api/products/p-1001"
SETTLE_S = 10.0  # breaker and DNS settling after a replica dies; failures are allowed only before it


@pytest.fixture
def two_catalogs(stack: ComposeStack) -> Iterator[list[Container]]:
    stack.compose("up", "-d", "--wait", "--no-recreate", "--scale", "catalog=2", "catalog", timeout=300)
    replicas = [c for c in stack.containers("catalog") if c.state == "running"]
    assert len(replicas) == 2
    yield replicas
    stack.compose("up", "-d", "--wait", "--scale", "catalog=1", "catalog", timeout=300)
    assert len(stack.containers("catalog", all_states=False)) == 1


def _traffic(stack: ComposeStack, stop: threading.Event, log: list[tuple[float, int]]) -> None:
    with httpx.Client(base_url=stack.url("gateway-web"), timeout=10) as client:
        while not stop.is_set():
            try:
                status = client.get(PAGE).status_code
            except httpx.HTTPError:
                status = 0
            log.append((time.monotonic(), status))


def _pages_served(stack: ComposeStack, replica: Container) -> int:
    logs = stack.docker("logs", replica.name)
    return logs.count('"GET /products/p-1001 200')


def test_two_replicas_serve_and_one_killed_costs_nothing_once_settled(
    stack: ComposeStack, two_catalogs: list[Container]
) -> None:
    # The gateway's pooled connections all lead to the first catalog (earlier tests opened them);
    # idle ones close after chassis.transport's keep-alive (4 s), and new ones resolve `catalog`
    # to either replica.
    time.sleep(5)
    before = {r.name: _pages_served(stack, r) for r in two_catalogs}
    stop = threading.Event()
    log: list[tuple[float, int]] = []
    # Several clients at once: the gateway opens several connections, each resolving `catalog`.
    workers = [threading.Thread(target=_traffic, args=(stack, stop, log)) for _ in range(6)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(8)
        served = {r.name: _pages_served(stack, r) - before[r.name] for r in two_catalogs}
        assert all(count > 0 for count in served.values()), f"pages per replica: {served}"
        victim = two_catalogs[1]
        killed_at = time.monotonic()
        stack.docker("kill", victim.name)
        time.sleep(SETTLE_S + 10)
    finally:
        stop.set()
        for worker in workers:
            worker.join(30)
    after = [(t, status) for t, status in log if t > killed_at + SETTLE_S]
    failed_late = [status for _, status in after if status != 200]
    assert len(after) > 50, f"too little traffic after settling to judge: {len(after)}"
    assert failed_late == [], f"{len(failed_late)} of {len(after)} pages failed after settling"
    early = [status for t, status in log if killed_at <= t <= killed_at + SETTLE_S and status != 200]
    print(f"replica killed: {len(early)} failed pages while settling, 0 of {len(after)} after")


def _unknown_kid_token() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode({"sub": "nobody"}, key, algorithm="RS256", headers={"kid": "no-such-key"})


def _breaker_state(stack: ComposeStack, replica: Container, name: str) -> str:
    (found,) = [b for b in stack.get_json(replica.name, "/ops/telemetry")["breakers"] if b["name"] == name]
    return str(found["state"])


def test_the_replicas_share_breaker_state(stack: ComposeStack, two_catalogs: list[Container]) -> None:
    """Replica A fails to fetch signing keys from a stopped auth-service (a token with an unknown
    key id makes it try, at most every 2 s) until its catalog->auth-service circuit opens; replica
    B, which made no such call, reports the same circuit open."""
    replica_a, replica_b = two_catalogs
    breaker = "catalog->auth-service"
    token = _unknown_kid_token()
    write = (
        "import urllib.request, urllib.error\n"
        "request = urllib.request.Request('http://127.0.0.1:8000/products', data=b'{}', method='POST',\n"
        f"    headers={{'Authorization': 'Bearer {token}', 'Content-Type': 'application/json'}})\n"
        "try:\n    urllib.request.urlopen(request, timeout=10)\n"
        "except urllib.error.HTTPError as answer:\n    print(answer.code)\n"
    )
    stack.compose("stop", "auth-service")
    try:
        assert _breaker_state(stack, replica_b, breaker) == "closed"

        def a_opened() -> bool:
            stack.exec_python(replica_a.name, write)
            return _breaker_state(stack, replica_a, breaker) == "open"

        wait_until("replica A's circuit to auth-service open", a_opened, timeout_s=40, every_s=2.1)
        assert _breaker_state(stack, replica_b, breaker) == "open", "replica B sees the shared state"
        calls_b = [
            b for b in stack.get_json(replica_b.name, "/ops/telemetry")["breakers"] if b["name"] == breaker
        ]
        assert calls_b[0]["counts"]["failure"] == 0, "B never failed a call itself"
    finally:
        stack.compose("start", "auth-service")
        stack.wait_healthy(["auth-service"], timeout_s=120)
