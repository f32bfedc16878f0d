"""After Redis restarts, the clients the chassis makes answer the next burst: no command fails on
a pooled connection the old Redis closed (redis-py's own ``from_url`` clients fail each such
connection's next command once)."""

from __future__ import annotations

import asyncio
import signal

import redis
import redis.asyncio as aioredis

from chassis.redis_clients import async_redis, sync_redis
from msa_testing.infra import start_redis

BURST = 20


async def _burst(client: aioredis.Redis) -> list[str]:
    """BURST commands at once (a plain one, a script, a transaction): the failures' types."""
    script = client.register_script("return redis.call('INCR', KEYS[1])")

    async def one(n: int) -> None:
        if n % 3 == 0:
            await script(keys=[f"count:{n}"])
        elif n % 3 == 1:
            async with client.pipeline(transaction=True) as pipe:
                await pipe.set(f"key:{n}", 1).expire(f"key:{n}", 10).execute()
        else:
            await client.get(f"key:{n}")

    answers = await asyncio.gather(*(one(n) for n in range(BURST)), return_exceptions=True)
    return [type(answer).__name__ for answer in answers if isinstance(answer, BaseException)]


async def test_a_burst_after_redis_restarted_is_answered_on_every_pooled_connection() -> None:
    server = start_redis()
    ours = async_redis(server.url, socket_timeout=1.0, socket_connect_timeout=1.0)
    plain = aioredis.Redis.from_url(server.url, socket_timeout=1.0, socket_connect_timeout=1.0)
    sync_ours = sync_redis(server.url, socket_timeout=1.0, socket_connect_timeout=1.0)
    try:
        for client in (ours, plain):
            assert await _burst(client) == [], "every pooled connection opened"
        sync_ours.ping()
        server.process.send_signal(signal.SIGKILL)  # as `docker kill`: no goodbye to any client
        server.process.wait(10)
        server = start_redis(server.port)  # back on the same port, empty
        assert await _burst(ours) == []
        assert sync_ours.ping()
        # the reference: redis-py's own from_url client fails on its stale connections
        assert "ConnectionError" in await _burst(plain)
    finally:
        await ours.aclose()
        await plain.aclose()
        sync_ours.close()
        server.stop()


def test_a_timeout_is_not_retried() -> None:
    """Redis slow is not Redis gone, and the command may have run: no second try."""
    client = sync_redis("redis://127.0.0.1:1/0")
    retry = client.get_connection_kwargs()["retry"]
    assert retry.get_retries() == 1
    assert redis.TimeoutError not in retry._supported_errors
