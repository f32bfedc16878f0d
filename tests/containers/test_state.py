"""What the containers keep and what they pick up while running.

- A config commit to the mounted repository changes a running container's setting, no restart.
- `docker compose restart` keeps orders (SQLite on the orders-data volume) and the signing key
  (auth-data): an order placed before is listed after, the JWKS key id is the same. `down -v`
  removes the volumes: started again, the platform has new keys and no orders.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from chassis.ops import operator_headers
from msa_testing.containers import ONE_SHOT, ComposeStack
from msa_testing.polling import wait_until

CONFIG = "deploy/config-repo/gateway-web.yml"


def _config(stack: ComposeStack) -> dict[str, Any]:
    response = httpx.get(f"{stack.url('gateway-web')}/ops/config", headers=operator_headers(), timeout=10)
    found: dict[str, Any] = response.json()
    return found


def test_a_config_commit_changes_a_running_container_without_a_restart(stack: ComposeStack) -> None:
    (gateway,) = stack.containers("gateway-web")
    started_at = stack.inspect(gateway.name)["State"]["StartedAt"]
    assert _config(stack)["settings"]["bff.budget_s"] == 2.0
    path = stack.directory / CONFIG
    original = path.read_text()
    assert "  budget_s: 2.0" in original
    path.write_text(original.replace("  budget_s: 2.0", "  budget_s: 1.8"))
    stack.git("commit", "-q", "-am", "gateway-web: a shorter page budget")
    head = stack.git("rev-parse", "HEAD")
    try:
        changed = wait_until(
            "gateway-web on the new config",
            lambda: (lambda c: c if c["version"] == head else None)(_config(stack)),
            timeout_s=20,
        )
        assert changed["settings"]["bff.budget_s"] == 1.8
        assert stack.inspect(gateway.name)["State"]["StartedAt"] == started_at, "no restart"
    finally:
        stack.git("revert", "--no-edit", "HEAD")
    wait_until("the old budget back", lambda: _config(stack)["settings"]["bff.budget_s"] == 2.0, timeout_s=20)


def _mobile_token(stack: ComposeStack) -> str:
    answer = httpx.post(
        f"{stack.url('gateway-mobile')}/auth/token",
        json={"username": "bob", "password": "bob-password"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


def _orders(stack: ComposeStack, token: str) -> list[str]:
    answer = httpx.get(
        f"{stack.url('gateway-mobile')}/m/orders", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    return [order["id"] for order in answer.json()["items"]]


def _key_ids(stack: ComposeStack) -> set[str]:
    (auth,) = stack.containers("auth-service")
    return {key["kid"] for key in stack.get_json(auth.name, "/.well-known/jwks.json")["keys"]}


def _named_volumes(stack: ComposeStack) -> set[str]:
    listed = stack.docker(
        "volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={stack.project}"
    )
    return set(listed.split())


def test_restart_keeps_orders_and_keys_and_down_v_removes_them(stack: ComposeStack) -> None:
    token = _mobile_token(stack)
    placed = httpx.post(
        f"{stack.url('gateway-mobile')}/m/orders",
        json={"lines": [{"product_id": "p-1002", "quantity": 1}]},
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())},
        timeout=10,
    )
    assert placed.status_code == 201, placed.text
    order = placed.json()["id"]
    keys = _key_ids(stack)
    long_running = [s for s in stack.services if s not in ONE_SHOT]

    stack.compose("restart", timeout=300)
    stack.wait_healthy(long_running, timeout_s=180)
    # Redis keeps nothing, so sessions are gone: log in again. The data volumes kept the rest.
    assert order in _orders(stack, _mobile_token(stack))
    assert _key_ids(stack) == keys

    volumes = _named_volumes(stack)
    assert {f"{stack.project}_{name}" for name in ("orders-data", "auth-data", "catalog-data")} <= volumes
    stack.down("-v")
    assert not _named_volumes(stack) & volumes, "down -v removes the data volumes"
    stack.up()
    assert order not in _orders(stack, _mobile_token(stack)), "only the seeded demo orders"
    assert not _key_ids(stack) & keys, "a new signing key"
