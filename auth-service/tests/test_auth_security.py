"""Brute-force lockout, hostile bodies, an unreachable Redis, and what never reaches the logs."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from auth_service.main import create
from auth_service.settings import Settings
from msa_cli.devstack import free_port

WEB = ("web", "dev-only-web-secret")
PROBLEM = "application/problem+json"


def attempt(password: str, ip: str = "203.0.113.7") -> dict[str, object]:
    return {
        "data": {"grant_type": "password", "username": "alice", "password": password},
        "auth": WEB,
        "headers": {"X-Forwarded-For": ip},
    }


async def test_after_n_failures_per_user_and_ip_logins_answer_429(auth: httpx.AsyncClient) -> None:
    for _ in range(5):
        assert (await auth.post("/oauth/token", **attempt("wrong"))).status_code == 400  # type: ignore[arg-type]
    locked = await auth.post("/oauth/token", **attempt("alice-password"))  # type: ignore[arg-type]
    assert locked.status_code == 429
    assert locked.headers["content-type"] == PROBLEM
    assert 0 < int(locked.headers["retry-after"]) <= 300
    # the same user from another address, and another user from the locked address, still log in
    assert (
        await auth.post("/oauth/token", **attempt("alice-password", ip="198.51.100.1"))
    ).status_code == 200  # type: ignore[arg-type]
    bob = await auth.post(
        "/oauth/token",
        data={"grant_type": "password", "username": "bob", "password": "bob-password"},
        auth=WEB,
        headers={"X-Forwarded-For": "203.0.113.7"},
    )
    assert bob.status_code == 200


async def test_a_success_resets_the_failure_count(auth: httpx.AsyncClient) -> None:
    for _ in range(4):
        await auth.post("/oauth/token", **attempt("wrong"))  # type: ignore[arg-type]
    assert (await auth.post("/oauth/token", **attempt("alice-password"))).status_code == 200  # type: ignore[arg-type]
    for _ in range(4):
        assert (await auth.post("/oauth/token", **attempt("wrong"))).status_code == 400  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (
            b"grant_type=password&username=alice&password=" + b"x" * 9000,
            "application/x-www-form-urlencoded",
            413,
        ),
        (b'{"grant_type": "password"}', "application/json", 415),
        (b"\xff\xfe\x00garbage", "application/x-www-form-urlencoded", 400),
        (b"grant_type=password&grant_type=refresh_token", "application/x-www-form-urlencoded", 400),
        (b"&&==&", "application/x-www-form-urlencoded", 400),
    ],
)
async def test_malformed_and_oversize_bodies_get_4xx_problems(
    auth: httpx.AsyncClient, body: bytes, content_type: str, status: int
) -> None:
    for path in ("/oauth/token", "/oauth/introspect", "/oauth/revoke"):
        response = await auth.post(path, content=body, headers={"content-type": content_type}, auth=WEB)
        assert response.status_code == status, (path, response.text)
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["status"] == status


async def test_a_lying_content_length_is_still_capped(auth: httpx.AsyncClient) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(20):
            yield b"x" * 1024

    response = await auth.post(
        "/oauth/token",
        content=chunks(),
        headers={"content-type": "application/x-www-form-urlencoded"},
        auth=WEB,
    )
    assert response.status_code == 413


async def test_redis_down_answers_503_and_the_service_keeps_running(
    make_settings: Callable[..., Settings],
) -> None:
    app = create(make_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://a") as client:
            for _ in range(2):
                response = await client.post(
                    "/oauth/token",
                    data={"grant_type": "password", "username": "alice", "password": "alice-password"},
                    auth=WEB,
                )
                assert response.status_code == 503
                assert response.headers["content-type"] == PROBLEM
                assert "retry-after" in response.headers
            assert (await client.get("/.well-known/jwks.json")).status_code == 200


async def test_no_password_token_or_secret_reaches_the_logs(
    auth: httpx.AsyncClient, captured_logs: list[str]
) -> None:
    tokens = (
        await auth.post(
            "/oauth/token",
            data={"grant_type": "password", "username": "alice", "password": "alice-password"},
            auth=WEB,
            headers={"X-Forwarded-For": "192.0.2.9"},
        )
    ).json()
    await auth.post("/oauth/token", **attempt("a-wrong-password-value"))  # type: ignore[arg-type]
    rotated = (
        await auth.post(
            "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
            auth=WEB,
        )
    ).json()
    await auth.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=WEB,
    )
    await auth.post("/oauth/introspect", data={"token": rotated["access_token"]}, auth=WEB)
    await auth.post("/oauth/revoke", data={"token": rotated["refresh_token"]}, auth=WEB)
    text = "\n".join(captured_logs)
    assert "login of alice" in text  # the log is there: the check below looks at real lines
    assert "used twice" in text
    for secret in (
        "alice-password",
        "a-wrong-password-value",
        "dev-only-web-secret",
        tokens["access_token"],
        tokens["refresh_token"],
        rotated["access_token"],
        rotated["refresh_token"],
    ):
        assert secret not in text
