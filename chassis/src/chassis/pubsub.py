"""One way to listen to Redis channels for the life of a process: subscribe, react, and when Redis
goes away, say so once, wait (0.5 s doubling to ``backoff_max_s``) and subscribe again.

Events published while unsubscribed are lost: ``on_subscribed(again=True)`` is where a listener
catches up (re-fetch its config, drop its cache). Used by the config refresher, the gateways'
revocation listener and the dashboard's feed::

    await subscribe_forever(
        "config refresh", redis_url, [REFRESH_CHANNEL], on_message=handle, on_subscribed=catch_up
    )
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

import redis.asyncio as aioredis
from redis.exceptions import RedisError

__all__ = ["subscribe_forever"]

log = logging.getLogger(__name__)

OnMessage = Callable[[str, bytes], Awaitable[None]]
OnSubscribed = Callable[[bool], Awaitable[None]]
OnLost = Callable[[Exception], Awaitable[None]]
OnIdle = Callable[[], Awaitable[None]]


async def subscribe_forever(
    name: str,
    redis_url: str,
    channels: Sequence[str],
    *,
    on_message: OnMessage,
    on_subscribed: OnSubscribed | None = None,
    on_lost: OnLost | None = None,
    on_idle: OnIdle | None = None,
    idle_s: float = 1.0,
    backoff_max_s: float = 5.0,
    client: aioredis.Redis | None = None,
) -> None:
    """Runs until cancelled. ``on_message(channel, data)`` for each message; ``on_idle()`` after
    ``idle_s`` without one; ``on_subscribed(again)`` after each (re)subscription; ``on_lost(exc)``
    once per outage. ``client``: a connection pool of the caller's (else one of its own, with no
    read timeout: a subscriber mostly waits), which it may also use for commands in ``on_subscribed``."""
    own = client is None
    backoff, subscribed_before, failing = 0.5, False, False
    while True:
        connection = client or aioredis.Redis.from_url(
            redis_url, socket_connect_timeout=1.0, socket_keepalive=True, health_check_interval=10
        )
        try:
            async with connection.pubsub(ignore_subscribe_messages=True) as pubsub:
                await pubsub.subscribe(*channels)
                if on_subscribed is not None:
                    await on_subscribed(subscribed_before)  # may fail too: then still an outage
                if failing:
                    log.info("%s channel subscribed again", name)
                subscribed_before, failing, backoff = True, False, 0.5
                while True:
                    message = await pubsub.get_message(timeout=idle_s)
                    _raise_if_cancelled()
                    if message is not None and message.get("type") == "message":
                        channel = message.get("channel")
                        data = message.get("data")
                        await on_message(
                            channel.decode() if isinstance(channel, bytes) else str(channel),
                            data if isinstance(data, bytes) else str(data).encode(),
                        )
                    elif message is None and on_idle is not None:
                        await on_idle()
        except (RedisError, OSError) as exc:
            _raise_if_cancelled(exc)
            if not failing:
                log.warning("%s channel lost (%s); subscribing again", name, type(exc).__name__)
                if on_lost is not None:
                    await on_lost(exc)
            failing = True
        finally:
            if own:
                await connection.aclose()
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, backoff_max_s)


def _raise_if_cancelled(cause: BaseException | None = None) -> None:
    """A cancel that lands as redis-py's read timeout expires can be swallowed (seen on Python
    3.11 with redis-py 8): the read returns no message or a timeout error, and the task, still
    marked as cancelling, then waited on its next read for ever, so an app's shutdown never
    finished. Found by the shared-breaker tests (about one run in three)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError from cause
