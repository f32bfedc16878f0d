"""The stack as `docker compose up --build --wait` leaves it: every container healthy, no process
running as root, the config repository mounted read-only, and one product page as one trace in
the Zipkin container."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from chassis.ops import operator_headers
from msa_testing.containers import ONE_SHOT, ComposeStack, own_services, read_model
from msa_testing.polling import wait_until

# Our Python services, as docker-compose.yml builds them.
OWN = set(own_services(read_model()))


def test_every_service_is_up_and_healthy(stack: ComposeStack) -> None:
    containers = {c.service: c for c in stack.containers()}
    long_running = {name for name in stack.services if name not in ONE_SHOT}
    assert OWN <= long_running
    assert set(containers) >= long_running
    for name in long_running:
        assert (containers[name].state, containers[name].health) == ("running", "healthy"), name


def _uid_of_pid_1(stack: ComposeStack, container: str) -> int:
    pid = stack.inspect(container)["State"]["Pid"]
    # The host's view of the container's main process: true whatever user the image declares.
    with open(f"/proc/{pid}/status") as handle:
        uid_line = next(line for line in handle if line.startswith("Uid:"))
    return int(uid_line.split()[1])  # real uid


def test_no_container_runs_its_process_as_root(stack: ComposeStack) -> None:
    for container in stack.containers():
        if container.service in ONE_SHOT:
            continue
        assert _uid_of_pid_1(stack, container.name) != 0, f"{container.name} runs as root"
    # Our images declare a numeric non-root user, so a runAsNonRoot policy can check it too.
    for container in stack.containers():
        if container.service in OWN:
            assert stack.inspect(container.name)["Config"]["User"] == "10001:10001", container.name


def test_the_config_repository_is_mounted_read_only(stack: ComposeStack) -> None:
    (config,) = stack.containers("config-service")
    (mount,) = [m for m in stack.inspect(config.name)["Mounts"] if m["Destination"] == "/repo"]
    assert mount["RW"] is False
    attempt = stack.exec_python(config.name, "open('/repo/deploy/config-repo/new.yml', 'w')")
    assert attempt.returncode != 0
    assert "Read-only file system" in attempt.stderr
    # ...and it is this stack's copy of the repository that config-service serves.
    served = httpx.get(
        f"{stack.url('gateway-web')}/ops/config", headers=operator_headers(), timeout=10
    ).json()
    assert served["version"] in stack.git("rev-list", "--all").split()


def _trace(zipkin: str, trace_id: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{zipkin}/api/v2/trace/{trace_id}", timeout=5)
    spans: list[dict[str, Any]] = (
        answer.json() if answer.status_code == 200 else []
    )  # 404 until the first span
    return spans


def test_a_product_page_is_one_trace_in_zipkin(stack: ComposeStack) -> None:
    trace_id = secrets.token_hex(16)
    page = httpx.get(
        f"{stack.url('gateway-web')}/api/products/p-1001",
        headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"},
        timeout=10,
    )
    assert page.status_code == 200, page.text
    wanted = {"gateway-web", "catalog", "inventory", "reviews"}

    def servers() -> set[str]:
        spans = _trace(stack.url("zipkin"), trace_id)
        found = {s["localEndpoint"]["serviceName"] for s in spans if s.get("kind") == "SERVER"}
        return found if wanted <= found else set()

    # Spans leave each service every few seconds (BatchSpanProcessor).
    found = wait_until(f"trace {trace_id} in the Zipkin container", servers, timeout_s=30, every_s=1)
    assert wanted <= found


def test_the_dashboard_finds_every_service_in_the_registry(stack: ComposeStack) -> None:
    # No list in the compose file: each service announced http://<its compose name>:8000.
    def panel() -> dict[str, dict[str, Any]]:
        state = httpx.get(f"{stack.url('ops-dashboard')}/api/state", timeout=5).json()
        found = {s["name"]: s for s in state["services"]}
        return found if set(found) >= OWN and all(s["status"] == "up" for s in found.values()) else {}

    services = wait_until("every service up on the dashboard", panel, timeout_s=30, every_s=1)
    assert {name: s["url"] for name, s in services.items()} == {name: f"http://{name}:8000" for name in OWN}
