"""Redis clients for commands, made one way: timeouts as the caller says, and one retry on a
connection Redis closed.

redis-py's ``from_url`` gives its pooled connections no retry. After Redis restarts, each pooled
connection then fails its next command once ("Connection closed by server.") before it
reconnects, so a burst right after a restart fails as many requests as the pool held connections
(the containers tier saw a login answered 503 eight seconds after Redis was back). One retry on
``ConnectionError`` reconnects and sends the command again. A timeout is not retried: the command
may have run, and Redis is slow, not gone.

Subscribers (``chassis.pubsub``, and the clients they share) keep redis-py's clients without a
retry: a retried subscription reconnects silently, and they must see the loss to re-read what was
published meanwhile.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

__all__ = ["async_redis", "sync_redis"]


def async_redis(url: str, **options: Any) -> aioredis.Redis:
    """An asyncio client; ``options`` are redis-py's (``socket_timeout``, ...)."""
    retry = AsyncRetry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
    return aioredis.Redis.from_url(url, retry=retry, **options)


def sync_redis(url: str, **options: Any) -> redis.Redis:
    """A blocking client (the breakers' writes); ``options`` as for ``async_redis``."""
    retry = Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
    return redis.Redis.from_url(url, retry=retry, **options)
