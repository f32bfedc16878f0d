"""problem+json for 404, 422, ServiceError and an unhandled error (no internals in the body)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from chassis import PROBLEM_JSON, ServiceError, ServiceSettings, create_app
from chassis.testing import running_app

router = APIRouter()


@router.get("/boom")
async def boom() -> None:
    raise RuntimeError("password=hunter2 at /srv/app/internal.py")


@router.get("/teapot")
async def teapot() -> None:
    raise ServiceError("short and stout", status=418, title="I'm a teapot", extras={"spout": True})


@router.get("/items")
async def items(size: Annotated[int, Query(ge=1, le=10)]) -> dict[str, int]:
    return {"size": size}


def _app(redis_url: str):  # type: ignore[no-untyped-def]
    settings = ServiceSettings(
        service_name="errors-test", redis_url=redis_url, zipkin_endpoint=None, env="test"
    )
    return create_app(settings, routers=[router])


async def test_not_found_is_problem_json(redis_url: str) -> None:
    async with running_app(_app(redis_url)) as client:
        response = await client.get("/nope")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["status"] == 404
    assert body["title"] == "Not Found"
    assert body["instance"] == "/nope"
    assert len(body["trace_id"]) == 32
    assert body["request_id"] == response.headers["x-request-id"]


async def test_validation_error_lists_fields_without_echoing_input(redis_url: str) -> None:
    async with running_app(_app(redis_url)) as client:
        response = await client.get("/items", params={"size": "secret-value"})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["errors"][0]["loc"] == ["query", "size"]
    assert "secret-value" not in response.text


async def test_service_error_keeps_status_title_and_extras(redis_url: str) -> None:
    async with running_app(_app(redis_url)) as client:
        response = await client.get("/teapot")
    assert response.status_code == 418
    body = response.json()
    assert body["title"] == "I'm a teapot"
    assert body["detail"] == "short and stout"
    assert body["spout"] is True


async def test_unhandled_error_is_a_500_that_leaks_nothing(redis_url: str) -> None:
    async with running_app(_app(redis_url)) as client:
        response = await client.get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["title"] == "Internal Server Error"
    assert len(body["trace_id"]) == 32
    for leak in ("hunter2", "internal.py", "Traceback", "RuntimeError"):
        assert leak not in response.text
