"""create_app answers the other-slash variant of a route 404, never with a redirect: Starlette
would build its absolute Location from the Host header the client sent."""

from __future__ import annotations

from fastapi import APIRouter

from chassis import PROBLEM_JSON, ServiceSettings, create_app
from chassis.testing import running_app

router = APIRouter()


@router.get("/items")
async def items() -> list[str]:
    return []


@router.get("/folder/")
async def folder() -> list[str]:
    return []


async def test_no_trailing_slash_redirects_on_any_service(redis_url: str) -> None:
    settings = ServiceSettings(
        service_name="slash-test", redis_url=redis_url, zipkin_endpoint=None, env="test"
    )
    async with running_app(create_app(settings, routers=[router]), base_url="http://evil.example") as client:
        for path in ("/items/", "/folder", "/health/live/"):
            response = await client.get(path)
            assert response.status_code == 404, (path, response.headers.get("location"))
            assert "location" not in response.headers
            assert response.headers["content-type"] == PROBLEM_JSON
        assert (await client.get("/items")).status_code == 200
        assert (await client.get("/folder/")).status_code == 200
