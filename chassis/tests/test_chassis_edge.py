"""Edge rules of the chassis: ids put into downstream paths cannot rewrite them (``path_segment``),
``/ops/config`` answers only to the operator token, and credentials inside URLs are masked."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from chassis import PROBLEM_JSON, BreakerRegistry, LiveSettings, ServiceSettings, create_app
from chassis.config_view import MASK, masked
from chassis.http import Downstream, UnroutableId, path_segment
from chassis.ops import DEV_OPS_TOKEN, OpsSettings, operator_headers
from chassis.testing import running_app
from msa_testing.apps import served


def _items_app() -> FastAPI:
    """A callee whose list and item routes tell which one answered."""
    app = FastAPI()

    @app.get("/items")
    async def listing() -> dict[str, str]:
        return {"route": "list"}

    @app.get("/items/{item_id}")
    async def item(item_id: str) -> dict[str, str]:
        return {"route": "item", "id": item_id}

    return app


@pytest.mark.parametrize("value", [".", "..", "x?y=1", "a#b", "%2E", "%2F", "50%", "café", "a b"])
async def test_a_path_segment_reaches_the_item_route_as_it_was(value: str) -> None:
    settings = ServiceSettings(zipkin_endpoint=None, env="test")
    async with served(_items_app()) as url:
        client = Downstream(
            caller="test", callee="items", base_url=url, live=LiveSettings(settings),
            registry=BreakerRegistry(), breaker_redis=None,
        )  # fmt: skip
        try:
            answer = await client.get_json(f"/items/{path_segment(value)}")
        finally:
            await client.aclose()
    assert answer == {"route": "item", "id": value}


@pytest.mark.parametrize("value", ["", "a/b", "../items", "/"])
def test_a_value_that_cannot_be_one_segment_is_404(value: str) -> None:
    # the callee routes on the decoded path: an encoded "/" would still split the segment there
    with pytest.raises(UnroutableId) as refused:
        path_segment(value)
    assert refused.value.status == 404


def _app(redis_url: str) -> FastAPI:
    settings = ServiceSettings(
        service_name="ops-test",
        # a password inside a URL: a key name like redis_url says nothing about it
        redis_url=redis_url.replace("redis://", "redis://:url-secret-1@"),
        zipkin_endpoint="https://collector:tok-url-secret-2@zipkin.example/api/v2/spans?api_key=k-secret-3",
        env="test",
    )
    return create_app(settings)


async def test_ops_config_needs_the_operator_token(redis_url: str) -> None:
    async with running_app(_app(redis_url)) as client:
        refused = {
            "none": await client.get("/ops/config"),
            "wrong": await client.get("/ops/config", headers=operator_headers("not-the-token")),
            "basic": await client.get("/ops/config", headers={"Authorization": "Basic b3BzOnRva2Vu"}),
        }
        allowed = await client.get("/ops/config", headers=operator_headers())
        telemetry = await client.get("/ops/telemetry")
    for what, response in refused.items():
        assert response.status_code == 401, what
        assert response.headers["content-type"] == PROBLEM_JSON, what
        assert response.headers["www-authenticate"] == 'Bearer realm="ops"', what
        assert "redis" not in response.text, what
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["service"] == "ops-test"
    # counters and breaker states only, no configuration: left open (see chassis/ops.py)
    assert telemetry.status_code == 200


async def test_ops_config_masks_credentials_inside_urls(redis_url: str) -> None:
    async with running_app(_app(redis_url)) as client:
        response = await client.get("/ops/config", headers=operator_headers())
    settings = response.json()["settings"]
    for secret in ("url-secret-1", "tok-url-secret-2", "k-secret-3"):
        assert secret not in response.text
    assert settings["redis_url"].startswith(f"redis://:{MASK}@127.0.0.1:")
    assert (
        settings["zipkin_endpoint"] == f"https://collector:{MASK}@zipkin.example/api/v2/spans?api_key={MASK}"
    )


def test_masking_inside_url_lists_and_of_known_secrets_inside_values() -> None:
    flat = {
        "service_urls": "a=http://u:pw-1@a:8000,b=redis://tok-2@b:6379/0",
        "plain_url": "http://catalog:8000/products?page=2",
        "note": "uses known-secret-3 inside",
        "redis_url": "redis://:pa,ss@w@redis:6379/0",  # a password may hold "," and "@"
    }
    assert masked(flat, {"known-secret-3"}) == {
        "service_urls": f"a=http://u:{MASK}@a:8000,b=redis://{MASK}@b:6379/0",
        "redis_url": f"redis://:{MASK}@redis:6379/0",
        "plain_url": "http://catalog:8000/products?page=2",
        "note": MASK,
    }


def test_production_refuses_the_dev_operator_token_and_short_ones() -> None:
    for token in (DEV_OPS_TOKEN, "short-token"):
        with pytest.raises(ValidationError, match="OPS_TOKEN"):
            OpsSettings(env="production", ops_token=token)
    assert OpsSettings(env="production", ops_token="a-long-operator-token-1234").env == "production"
    assert OpsSettings(env="development").ops_token.get_secret_value() == DEV_OPS_TOKEN


def test_a_production_service_does_not_start_with_the_dev_operator_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENV", "production")
    monkeypatch.delenv("OPS_TOKEN", raising=False)
    with pytest.raises(ValidationError, match="OPS_TOKEN"):
        create_app(ServiceSettings(zipkin_endpoint=None))
    monkeypatch.setenv("OPS_TOKEN", "a-long-operator-token-1234")
    assert create_app(ServiceSettings(zipkin_endpoint=None)).title == "service"


async def test_an_empty_operator_token_closes_the_endpoint(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPS_TOKEN", "")
    async with running_app(_app(redis_url)) as client:
        response = await client.get("/ops/config", headers={"Authorization": "Bearer "})
    assert response.status_code == 401
