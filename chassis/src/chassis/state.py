"""What one app keeps for its lifetime, typed: ``chassis_state(app)`` instead of ``app.state``
attributes reached by string.

The chassis's own parts are fields (settings, Redis, breakers, downstreams, readiness checks);
a service's own resources (its store, keyring, dashboard, ...) are kept by their type::

    provide(app, db)                                   # in the service's ``create``
    DatabaseDep = Annotated[Database, Depends(resource_of(Database))]
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import FastAPI, Request

if TYPE_CHECKING:  # annotations only: every module below may import this one
    import redis.asyncio as aioredis

    from chassis.breakers import BreakerRegistry, RollingCounts
    from chassis.health import ReadyCheck
    from chassis.http import Downstream
    from chassis.refresh import Refresher
    from chassis.settings import LiveSettings

__all__ = ["ChassisState", "chassis_state", "provide", "resource", "resource_of"]

T = TypeVar("T")


@dataclass(eq=False)
class ChassisState:
    live: LiveSettings[Any]
    breakers: BreakerRegistry
    edge: RollingCounts  # requests this process refused at once: EDGE_EVENTS (chassis.app)
    refresher: Refresher | None = None  # None: settings did not come from config-service
    ready_checks: dict[str, ReadyCheck] = field(default_factory=dict)
    downstreams: dict[str, Downstream] = field(default_factory=dict)  # filled by the lifespan
    resources: dict[type, object] = field(default_factory=dict)
    _redis: aioredis.Redis | None = None

    @property
    def redis(self) -> aioredis.Redis:
        """The app's Redis client, opened by its lifespan."""
        if self._redis is None:
            raise RuntimeError("Redis is opened by the app's lifespan: start the app first")
        return self._redis

    @redis.setter
    def redis(self, client: aioredis.Redis) -> None:
        self._redis = client


def chassis_state(app: FastAPI) -> ChassisState:
    state: ChassisState = app.state.chassis  # set by chassis.create_app, the one place
    return state


def provide(app: FastAPI, value: T, *, kind: type[T] | None = None) -> T:
    """Keep ``value`` as the app's resource of its type (or of ``kind``); replaces an earlier one
    (tests install stand-ins this way)."""
    chassis_state(app).resources[kind or type(value)] = value
    return value


def resource(app: FastAPI, kind: type[T], default: Callable[[], T] | None = None) -> T:
    """The app's resource of type ``kind``; made by ``default`` on first use when given."""
    resources = chassis_state(app).resources
    value = resources.get(kind)
    if value is None:
        if default is None:
            raise LookupError(f"no {kind.__name__} provided to this app (provide(app, ...))")
        value = resources[kind] = default()
    if not isinstance(value, kind):
        raise TypeError(f"the app's {kind.__name__} resource is a {type(value).__name__}")
    return value


def resource_of(kind: type[T]) -> Callable[[Request], Awaitable[T]]:
    """A dependency giving the app's resource of type ``kind`` (``async``: no thread hop)."""

    async def get(request: Request) -> T:
        return resource(request.app, kind)

    get.__name__ = f"resource_{kind.__name__}"
    return get
