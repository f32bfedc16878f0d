"""subscribe_forever on real Redis: messages arrive, an idle listener is told so, a lost
subscription is reported once and comes back by itself, telling the listener it may have missed
events (the config refresher, the revocation listener and the dashboard feed all rely on it)."""

from __future__ import annotations

import asyncio
import contextlib

import redis.asyncio as aioredis

from chassis.pubsub import subscribe_forever
from msa_testing.polling import wait_until_async


async def test_messages_idle_loss_and_resubscription(redis_url: str) -> None:
    events: list[tuple[str, object]] = []

    async def on_message(channel: str, data: bytes) -> None:
        events.append(("message", (channel, data)))

    async def on_subscribed(again: bool) -> None:
        events.append(("subscribed", again))

    async def on_lost(exc: Exception) -> None:
        events.append(("lost", type(exc).__name__))

    async def on_idle() -> None:
        events.append(("idle", None))

    publisher = aioredis.Redis.from_url(redis_url)
    listener = asyncio.create_task(
        subscribe_forever(
            "test", redis_url, ["t:one", "t:two"], on_message=on_message, on_subscribed=on_subscribed,
            on_lost=on_lost, on_idle=on_idle, idle_s=0.1, backoff_max_s=0.2,
        )
    )  # fmt: skip
    try:
        await wait_until_async("subscribed", lambda: ("subscribed", False) in events)
        await publisher.publish("t:two", "hello")
        await wait_until_async("the message", lambda: ("message", ("t:two", b"hello")) in events)
        await wait_until_async("an idle call", lambda: ("idle", None) in events)
        await publisher.client_kill_filter(_type="pubsub")  # Redis drops every subscriber
        await wait_until_async("subscribed again", lambda: ("subscribed", True) in events)
        await publisher.publish("t:one", "again")
        await wait_until_async("a message after", lambda: ("message", ("t:one", b"again")) in events)
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        await publisher.aclose()
    assert [e for e in events if e[0] == "lost"] == [("lost", "ConnectionError")], "said once"
    assert [e for e in events if e[0] == "subscribed"] == [("subscribed", False), ("subscribed", True)]
