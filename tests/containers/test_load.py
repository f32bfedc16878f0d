"""`msa load` against the running containers: a healthy stack serves 20 simulated people without
a failed request; with reviews failing (chaos.error_rate 1.0, committed to the stack's config
repository) under load, pages are degraded, not failed, and the ops dashboard shows
gateway-web->reviews Open (screenshot: test-artifacts/dashboard-open-circuit.png). The compose
profile `load` builds its image and runs the same journeys inside the compose network."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from msa_testing.browser import CHROMIUM, screenshot_when
from msa_testing.containers import ComposeStack
from msa_testing.figures import Figures
from msa_testing.infra import require_infra
from msa_testing.load import run_load, start_load, summary
from msa_testing.polling import wait_until
from msa_testing.resilience import configured

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
BREAKER = "gateway-web->reviews"


def _table(out: str) -> list[str]:
    return [
        line for line in out.splitlines() if line.split()[:1] in (["request"], ["GET"], ["POST"], ["total"])
    ]


def _assert_clean(out: str, err: str, returncode: int) -> dict[str, tuple[int, int]]:
    assert returncode == 0, out + err
    rows = summary(out)
    assert rows["total"][0] > 0
    assert rows["total"][1] == 0, out
    names = [name.split()[1] for name, (requests, _) in rows.items() if name != "total" and requests]
    assert "web" in names, out
    assert "mobile" in names, out
    return rows


def test_a_healthy_stack_serves_the_load_without_a_failure(stack: ComposeStack, figures: Figures) -> None:
    done = run_load(stack.url("gateway-web"), stack.url("gateway-mobile"), users=20, duration_s=30)
    print(done.stdout)
    figures.add("msa load, healthy stack: 20 users, 30 s", *_table(done.stdout))
    rows = _assert_clean(done.stdout, done.stderr, done.returncode)
    assert rows["total"][0] >= 200, "20 people, a step every 0.5-2 s, for 30 s"


def _breaker(stack: ComposeStack) -> dict[str, Any] | None:
    state = httpx.get(f"{stack.url('ops-dashboard')}/api/state", timeout=5).json()
    return next((b for b in state["breakers"] if b["name"] == BREAKER), None)


def test_reviews_failing_under_load_opens_its_breaker_on_the_dashboard(
    stack: ComposeStack, figures: Figures
) -> None:
    if not Path(CHROMIUM).exists():
        require_infra("needs /usr/bin/chromium (Debian package chromium) for the screenshot")
    load = start_load(stack.url("gateway-web"), stack.url("gateway-mobile"), users=10, duration_s=180)
    try:
        wait_until(
            "load on the dashboard", lambda: (_breaker(stack) or {}).get("request_count"), timeout_s=30
        )
        with configured(stack, {"reviews": {"chaos": {"error_rate": 1.0}}}):
            opened = wait_until(
                f"{BREAKER} Open on the dashboard",
                lambda: (b := _breaker(stack)) and b["state"] == "open" and b,
                timeout_s=40,
                every_s=0.5,
            )
            screenshot_when(
                f"{stack.url('ops-dashboard')}/",
                f'.breaker[data-name="{BREAKER}"][data-state="open"]',
                ARTIFACTS / "dashboard-open-circuit.png",
            )
        # reviews healthy again: the breaker closes after its reset timeout, under the same load
        wait_until(
            f"{BREAKER} closed again", lambda: (_breaker(stack) or {}).get("state") == "closed", timeout_s=40
        )
    finally:
        load.send_signal(signal.SIGINT)
        out, err = load.communicate(timeout=60)
    print(out, err)
    figures.add(
        "msa load, reviews failing (chaos.error_rate 1.0) then healthy: 10 users",
        f"dashboard: {BREAKER} {opened['label']}, error {opened['error_percentage']} %",
        *_table(out),
    )
    # reviews is optional on every page: answers lose their ratings, not their status
    _assert_clean(out, err, load.returncode)
    assert (ARTIFACTS / "dashboard-open-circuit.png").stat().st_size > 10_000


def test_the_compose_profile_load_runs_the_journeys_in_the_compose_network(
    stack: ComposeStack, monkeypatch: pytest.MonkeyPatch, figures: Figures
) -> None:
    # The service exactly as written, shortened through the variables its command reads.
    monkeypatch.setenv("LOAD_USERS", "4")
    monkeypatch.setenv("LOAD_DURATION_S", "12")
    stack.compose("--profile", "load", "build", "load", timeout=900)
    done = stack.compose("--profile", "load", "run", "--rm", "--no-deps", "load", timeout=180, check=False)
    print(done.stdout, done.stderr)
    figures.add(
        "docker compose --profile load (4 users, 12 s, inside the compose network)", *_table(done.stdout)
    )
    _assert_clean(done.stdout, done.stderr, done.returncode)
    assert "against http://gateway-web:8000 (web) and http://gateway-mobile:8000 (mobile)" in done.stdout
