"""Chassis ``Downstream`` clients for tests, each one replica of a caller: its own breaker registry
and its own Redis connection for breaker state (shared with the other replicas through Redis).
The connections are closed when the test ends (``msa_testing.fixtures``), as an app's lifespan
closes its own."""

from __future__ import annotations

import redis

from chassis import BreakerRegistry, Downstream, LiveSettings, ServiceSettings

__all__ = ["close_replica_clients", "replica_client"]

_OPENED: list[redis.Redis] = []


def replica_client(
    settings: ServiceSettings, url: str, registry: BreakerRegistry | None = None
) -> Downstream:
    """The ``caller->callee`` client of one replica, calling ``url``."""
    _OPENED.append(redis.Redis.from_url(settings.redis_url))
    return Downstream(
        caller="caller",
        callee="callee",
        base_url=url,
        live=LiveSettings(settings),
        registry=registry or BreakerRegistry(),
        breaker_redis=_OPENED[-1],
    )


def close_replica_clients() -> None:
    while _OPENED:
        _OPENED.pop().close()
