"""Self-registration (chassis.registry): every service announces where it answers, in real Redis,
renews it (so it comes back after Redis lost it), and readers skip stale or foreign entries."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import redis.asyncio as aioredis

from chassis import ServiceSettings, create_app
from chassis import registry as registry_module
from chassis.registry import REGISTRY_KEY, advertised_url, registered
from chassis.testing import running_app


def test_the_advertised_url_is_the_bind_address_or_the_service_name_or_what_is_set() -> None:
    assert advertised_url(ServiceSettings(service_name="catalog", host="0.0.0.0", port=8000)) == (
        "http://catalog:8000"  # in a container: its DNS name on the compose network
    )
    assert advertised_url(ServiceSettings(service_name="catalog", host="127.0.0.1", port=43111)) == (
        "http://127.0.0.1:43111"  # msa dev up
    )
    explicit = ServiceSettings(service_name="catalog", advertise_url="https://catalog.internal/")
    assert advertised_url(explicit) == "https://catalog.internal"


async def test_a_service_registers_itself_and_comes_back_after_redis_lost_it(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry_module, "ANNOUNCE_EVERY_S", 0.1)
    client = aioredis.Redis.from_url(redis_url)
    await client.delete(REGISTRY_KEY)
    settings = ServiceSettings(
        service_name="registry-test", host="127.0.0.1", port=45678, redis_url=redis_url, zipkin_endpoint=None
    )
    try:
        async with running_app(create_app(settings)):
            await asyncio.sleep(0.3)
            assert await registered(client, max_age_s=60) == {"registry-test": "http://127.0.0.1:45678"}
            await client.delete(REGISTRY_KEY)  # Redis restarted empty
            await asyncio.sleep(0.3)
            assert "registry-test" in await registered(client, max_age_s=60)
        # stopped: the entry stays (the dashboard shows it unreachable) until it is too old
        await asyncio.sleep(0.3)
        assert "registry-test" in await registered(client, max_age_s=60)
        assert "registry-test" not in await registered(client, max_age_s=0.2)
    finally:
        await client.delete(REGISTRY_KEY)
        await client.aclose()


async def test_entries_nobody_of_ours_wrote_are_skipped(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    fresh = json.dumps({"url": "http://ok:8000", "seen_at": time.time()})
    try:
        await client.delete(REGISTRY_KEY)
        await client.hset(
            REGISTRY_KEY,
            mapping={
                "ok": fresh,
                "not-json": "{",
                "no-url": json.dumps({"seen_at": time.time()}),
                "not-http": json.dumps({"url": "file:///etc/passwd", "seen_at": time.time()}),
            },
        )
        assert await registered(client, max_age_s=60) == {"ok": "http://ok:8000"}
    finally:
        await client.delete(REGISTRY_KEY)
        await client.aclose()
