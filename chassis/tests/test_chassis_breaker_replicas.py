"""Shared breaker state between two real processes (``msa_testing.breaker_replica``) and a real
redis-server: healthy calls send Redis nothing, a trip on one replica reaches the other over the
transitions channel, and both go on through a Redis outage and share again after it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest
import redis

from msa_testing.breaker_replica import FAIL_MAX, Replica
from msa_testing.figures import Figures
from msa_testing.infra import RedisServer, start_redis
from msa_testing.servers import FlakyServer

# What the module docstring of chassis.breakers promises: a transition reaches the other replicas
# a pub/sub message later; if the message is lost, the periodic resync (1 s) brings it.
PROPAGATION_BOUND_S = 0.1


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own: it is stopped and started again, and its command
    counts are read."""
    redis_server = start_redis()
    yield redis_server
    redis_server.stop()


def _replicas(
    stack: ExitStack, redis_url: str, server: FlakyServer, resync_s: float
) -> tuple[Replica, Replica]:
    a, b = Replica(redis_url, server.url, resync_s), Replica(redis_url, server.url, resync_s)
    stack.callback(a.stop)
    stack.callback(b.stop)
    a.ready()
    b.ready()
    return a, b


def _commands(admin: redis.Redis) -> dict[str, int]:
    """Commands Redis served since ``CONFIG RESETSTAT``, but for this one (``admin``'s own)."""
    stats = admin.info("commandstats")
    counts = {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}
    counts.pop("config|resetstat", None), counts.pop("info", None)
    return counts


def _trip_and_watch(a: Replica, b: Replica, server: FlakyServer) -> float:
    """Trip the circuit on A while B waits for it; returns how long after A opened B saw it."""
    b.send("wait open 5")
    server.mode = "fail"
    outcomes = [a.ask("call")["outcome"] for _ in range(FAIL_MAX)]
    assert outcomes == ["failure"] * FAIL_MAX
    opened = a.ask("state")
    assert opened["state"] == "open"
    seen = b.read()
    assert seen["state"] == "open", seen
    return float(seen["seen_at"]) - float(opened["opened_at"])


def test_healthy_calls_send_redis_nothing_and_a_trip_reaches_the_other_process(
    own_redis: RedisServer, server: FlakyServer, figures: Figures
) -> None:
    with ExitStack() as stack:
        # resync every 60 s: within this test only the transitions channel can tell B
        a, b = _replicas(stack, own_redis.url, server, resync_s=60)
        assert a.ask("call") == b.ask("call") == {"outcome": "ok", "n": 1}
        admin = own_redis.client()
        stack.callback(admin.close)
        admin.config_resetstat()
        assert a.ask("calls 300")["outcome"] == "ok"
        assert b.ask("calls 300")["outcome"] == "ok"
        during = _commands(admin)
        assert during == {}, f"600 healthy calls sent Redis {during}"

        lag_s = _trip_and_watch(a, b, server)
        assert lag_s <= PROPAGATION_BOUND_S, f"B saw the open circuit {lag_s * 1000:.1f} ms after A opened it"
        hits = server.hits
        assert b.ask("call")["outcome"] == "short_circuited"
        assert server.hits == hits, "B never called the failing callee"
        figures.add(
            "shared breaker (two processes, loopback Redis)",
            f"600 healthy calls: {sum(during.values())} Redis commands",
            f"open on A -> seen by B: {lag_s * 1000:.2f} ms (bound {PROPAGATION_BOUND_S * 1000:.0f} ms)",
        )


def test_redis_down_each_replica_goes_on_alone_and_back_they_share_again(
    own_redis: RedisServer, server: FlakyServer
) -> None:
    with ExitStack() as stack:
        a, b = _replicas(stack, own_redis.url, server, resync_s=0.2)
        assert a.ask("call")["outcome"] == "ok"
        own_redis.stop()
        # healthy calls never needed Redis: they go on, in both replicas
        assert a.ask("calls 50") == b.ask("calls 50") == {"outcome": "ok", "n": 50}
        # failures open A's circuit on its own state; B cannot hear of it and keeps calling
        server.mode = "fail"
        assert [a.ask("call")["outcome"] for _ in range(FAIL_MAX)] == ["failure"] * FAIL_MAX
        assert a.ask("state")["state"] == "open"
        assert b.ask("state")["state"] == "closed"

        restarted = start_redis(own_redis.port)  # back, empty
        stack.callback(restarted.stop)
        # both resubscribe; A's resync pushes the circuit it opened alone, and B adopts it
        assert b.ask("wait open 10")["state"] == "open"
        assert a.ask("state")["state"] == "open", "not undone by A's resync"
        hits = server.hits
        assert b.ask("call")["outcome"] == "short_circuited"
        assert server.hits == hits
