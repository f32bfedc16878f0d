"""X-Forwarded-For from a client changes nothing (issue 11, defect 3), through both gateways as
`msa dev up` runs them: real processes on loopback, where uvicorn alone would trust every client.

Loopback is a whole /8 on Linux: a client bound to 127.0.0.2 is another address, and 127.0.0.3 plays
the reverse proxy the gateways are told to trust (TRUSTED_PROXIES).
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from msa_testing.fixtures import Topology

pytestmark = pytest.mark.system

SERVICES = {"config-service", "auth-service", "gateway-web", "gateway-mobile"}
PROXY = "127.0.0.3"
LOGIN = {"gateway-mobile": "/auth/token", "gateway-web": "/auth/login"}


@pytest.fixture
def topo(make_topology: Callable[..., Topology]) -> Topology:
    proxy = {"TRUSTED_PROXIES": PROXY}
    return make_topology(only=SERVICES, env={"gateway-web": proxy, "gateway-mobile": proxy})


def client(url: str, via: str = "127.0.0.1") -> httpx.Client:
    return httpx.Client(base_url=url, timeout=10, transport=httpx.HTTPTransport(local_address=via))


@pytest.mark.parametrize("gateway", sorted(LOGIN))
def test_a_client_cannot_choose_the_address_its_logins_count_against(topo: Topology, gateway: str) -> None:
    url, path = topo.url(gateway), LOGIN[gateway]

    def login(http: httpx.Client, user: str, password: str, claim: str | None = None) -> int:
        headers = {"X-Forwarded-For": claim} if claim else {}
        body = {"username": user, "password": password}
        return http.post(path, json=body, headers=headers).status_code

    with client(url) as attacker, client(url, via="127.0.0.2") as neighbour, client(url, via=PROXY) as proxy:
        # twelve failed logins for bob, each claiming another address: all count against the real one
        statuses = [login(attacker, "bob", "wrong", claim=f"198.51.100.{n}") for n in range(12)]
        assert statuses == [401] * 5 + [429] * 7, statuses
        # locked out: yet another claimed address does not let bob in
        assert login(attacker, "bob", "bob-password", claim="203.0.113.77") == 429

        # failures claiming to come from 127.0.0.2 do not lock alice out there (5 < the 30 per address)
        for _ in range(5):
            assert login(attacker, "alice", "wrong", claim="127.0.0.2") == 401
        assert login(attacker, "alice", "alice-password") == 429
        assert login(neighbour, "alice", "alice-password") == 200

        # the configured proxy is believed: bob's lockout is per end-user address behind it
        for _ in range(5):
            assert login(proxy, "bob", "wrong", claim="198.51.100.200") == 401
        assert login(proxy, "bob", "bob-password", claim="198.51.100.200") == 429
        assert login(proxy, "bob", "bob-password", claim="198.51.100.201") == 200
