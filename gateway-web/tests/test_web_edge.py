"""gateway-web at the edge: no redirect built from the Host header, Secure cookies in production."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from auth_service.settings import Settings as AuthServiceSettings
from chassis.state import chassis_state
from msa_testing.apps import GatewayRunner, served

PROBLEM = "application/problem+json"
# A web client secret without the dev-only mark, which a production gateway refuses.
WEB_SECRET = "web-secret-of-this-test-run"


@pytest.fixture
def auth_settings(tmp_path: Path, redis_url: str) -> AuthServiceSettings:
    """The real auth-service of msa_testing, knowing the gateway's production client secret."""
    return AuthServiceSettings(
        data_dir=tmp_path / "auth", redis_url=redis_url, zipkin_endpoint=None, env="test",
        web_client_secret=WEB_SECRET,
    )  # fmt: skip


async def test_a_trailing_slash_is_a_404_not_a_redirect_to_the_host_header(
    make_gateway: Callable[..., FastAPI],
) -> None:
    async with served(make_gateway()) as url, httpx.AsyncClient(base_url=url) as client:
        for path in ("/api/products/", "/auth/me/", "/health/live/"):
            response = await client.get(path, headers={"Host": "evil.example"})
            assert response.status_code == 404, (path, response.headers.get("location"))
            assert "location" not in response.headers
            assert response.headers["content-type"] == PROBLEM
        assert (await client.get("/auth/me", headers={"Host": "evil.example"})).status_code == 401


async def test_production_sets_secure_cookies_whatever_cookie_secure_says(
    make_gateway: Callable[..., FastAPI], run: GatewayRunner
) -> None:
    app = make_gateway(env="production", auth={"client_secret": WEB_SECRET, "cookie_secure": False})
    async with run(app) as client:
        login = await client.post("/auth/login", json={"username": "alice", "password": "alice-password"})
        assert login.status_code == 200, login.text
        cookies = {h.split("=", 1)[0]: h.lower() for h in login.headers.get_list("set-cookie")}
        assert "; secure" in cookies["msa_session"]
        assert "; secure" in cookies["msa_csrf"]
        csrf = login.json()["csrf_token"]
        session = login.cookies["msa_session"]
        logout = await client.post(
            "/auth/logout", headers={"X-CSRF-Token": csrf, "Cookie": f"msa_session={session}"}
        )
        assert logout.status_code == 204
        assert all("; secure" in h.lower() for h in logout.headers.get_list("set-cookie"))
    assert chassis_state(app).live.current.auth.cookie_secure is True  # and /ops/config shows it so
