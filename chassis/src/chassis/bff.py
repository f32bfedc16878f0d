"""What the BFF gateways share: a time budget per answer, and the optional parts an answer lost.

A BFF view fans out to several downstreams. A *required* part (the product itself) that fails
makes the answer a 503 problem+json with ``Retry-After``; an *optional* part (stock, reviews) that
fails becomes ``None`` and is named in ``degraded`` and the ``X-Degraded`` header. Failing means:
the downstream is unavailable (the chassis ``Downstream`` fallback), or the part is still running
when the budget of the whole answer runs out. So an answer never waits longer than its budget,
whatever its downstreams do.

A late part is left to finish in the background rather than cancelled: its own downstream timeout
still bounds it, and the breaker hears its verdict (pybreaker counts a cancelled call as a success,
so cancelling slow calls would keep the circuit of a slow downstream closed for ever).

    async with View(settings.bff.budget_s) as view:
        product = view.start(catalog.get_json(f"/products/{pid}"))
        stock = view.start(inventory.get_json("/stock", params=..., fallback=view.fallback("inventory")))
        body = await view.required("catalog", product)
        levels = await view.optional("inventory", stock)   # None when lost
    answer = Page(..., degraded=view.degraded)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from fastapi import Response
from pydantic import BaseModel, Field, model_validator

from chassis import deadline
from chassis.errors import ServiceError
from chassis.http import Downstream, DownstreamError, DownstreamUnavailable, _relay
from chassis.settings import ServiceSettings

__all__ = [
    "DEGRADED_HEADER",
    "BffServiceSettings",
    "BffSettings",
    "BudgetExceeded",
    "IdempotentWrite",
    "View",
    "idempotent_write",
    "mark_degraded",
    "relayed_error",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
DEGRADED_HEADER = "X-Degraded"


class BffSettings(BaseModel):
    """``bff.budget_s``: re-read on refresh like every behaviour setting."""

    budget_s: float = Field(
        2.0, gt=0, le=30, description="the longest an aggregated answer waits for its downstream parts"
    )


class BffServiceSettings(ServiceSettings):
    """The settings of a BFF gateway: the chassis's, plus ``bff``. A request arriving at a
    gateway gets the BFF budget as its deadline (unless ``deadline.edge_s`` says otherwise): the
    budget then bounds every call made for it. A client's own ``X-Deadline-Ms`` is ignored here
    (``deadline.from_callers``)."""

    bff: BffSettings = BffSettings()

    @model_validator(mode="after")
    def _edge_deadline_is_the_budget(self) -> Self:
        update: dict[str, object] = {}
        if self.deadline.edge_s is None:
            update["edge_s"] = self.bff.budget_s
        if "from_callers" not in self.deadline.model_fields_set:
            update["from_callers"] = False  # the edge: a client's X-Deadline-Ms is not ours to follow
        if update:
            self.deadline = self.deadline.model_copy(update=update)
        return self


class BudgetExceeded(ServiceError):
    """A required part did not answer within the budget of the whole answer."""

    status = 503
    title = "Service Unavailable"

    def __init__(self, part: str, budget_s: float) -> None:
        super().__init__(
            f"{part} did not answer within the {budget_s:g}s budget of this page",
            headers={"Retry-After": "1"},
            extras={"downstream": part, "reason": "budget"},
        )


class View:
    """One aggregated answer in the making: its deadline, its running parts, the parts it lost.

    Parts started with ``start`` run concurrently (tasks copy the context, so their spans are
    children of the request's span). Whatever still runs when the block ends finishes detached.
    """

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s
        self.degraded: list[str] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._deadline = 0.0

    async def __aenter__(self) -> Self:
        left = deadline.remaining_s()  # the request's own deadline may be nearer than the budget
        if left is not None and left < self.budget_s:
            self.budget_s = max(left, 0.0)
        self._deadline = asyncio.get_running_loop().time() + self.budget_s
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for task in self._tasks:
            if task.done():
                _reap(task)
            else:  # late, or not needed after all (a required part failed): let it finish
                _detached.add(task)
                task.add_done_callback(_reap)

    def start(self, call: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.create_task(call)
        self._tasks.append(task)
        return task

    async def _within_budget(self, part: Awaitable[T]) -> T:
        task = part if isinstance(part, asyncio.Task) else self.start(_awaited(part))
        async with asyncio.timeout_at(self._deadline):
            # shield: the budget stops the waiting, not the call (see the module docstring)
            return await asyncio.shield(task)

    def fallback(self, part: str) -> Callable[[DownstreamUnavailable], None]:
        """For ``Downstream.json(fallback=...)``: the part is lost, its value unknown."""

        def lost(error: DownstreamUnavailable) -> None:
            self.lose(part)

        return lost

    def lose(self, part: str) -> None:
        if part not in self.degraded:
            self.degraded.append(part)

    async def required(self, part: str, task: Awaitable[T]) -> T:
        """The part's value; 503 when it is unavailable or late (a 4xx is relayed as it is)."""
        try:
            return await self._within_budget(task)
        except TimeoutError:
            raise BudgetExceeded(part, self.budget_s) from None

    async def optional(self, part: str, task: Awaitable[T]) -> T | None:
        """The part's value, or ``None`` (and the part marked degraded) when it is lost or late."""
        try:
            return await self._within_budget(task)
        except TimeoutError:
            log.info(
                "%s dropped from the answer: still running when the %gs budget ran out", part, self.budget_s
            )
        except DownstreamError as exc:
            # A 4xx where data was expected: a contract problem worth a warning, not a broken page.
            log.warning("%s dropped from the answer: it answered %s (%s)", part, exc.status, exc.detail)
        self.lose(part)
        return None


# Late parts still running after their answer went out; held here so they are not garbage-collected.
_detached: set[asyncio.Task[Any]] = set()


def _reap(task: asyncio.Task[Any]) -> None:
    """Collect a finished part's outcome (its failure was counted by its breaker already)."""
    _detached.discard(task)
    if not task.cancelled():
        task.exception()


async def _awaited(part: Awaitable[T]) -> T:
    return await part


def mark_degraded(response: Response, degraded: Sequence[str]) -> None:
    """``X-Degraded: reviews, inventory`` on an answer that lost optional parts."""
    if degraded:
        response.headers[DEGRADED_HEADER] = ", ".join(degraded)


def relayed_error(response: httpx.Response) -> DownstreamError:
    """The downstream's 4xx as our own problem+json (same status, detail, Retry-After), for
    callers of ``Downstream.request`` that need the status or headers of a success too."""
    return _relay(response)


@dataclass(frozen=True)
class IdempotentWrite:
    """How the callee answered an idempotent write: its body, 201 (new) or 200 (the same key and
    body again), and whether it was such a replay (``Idempotent-Replayed: true``)."""

    body: Any
    status_code: int
    replayed: bool

    def answer(self, response: Response, location: str) -> None:
        """The same outcome on our response: status, ``Location``, ``Idempotent-Replayed``."""
        response.status_code = self.status_code
        response.headers["Location"] = location
        if self.replayed:
            response.headers["Idempotent-Replayed"] = "true"


async def idempotent_write(
    downstream: Downstream, path: str, *, json: Any, key: str, headers: Mapping[str, str]
) -> IdempotentWrite:
    """POST a write the callee makes idempotent by ``Idempotency-Key`` (checked at the edge first,
    ``chassis.params.IdempotencyKey``) and relay the outcome; a 4xx becomes our own problem+json.
    Not bounded by a page budget: cutting a write short would leave the client guessing, the
    downstream timeout bounds it, and a retry with the same key is safe."""
    response = await downstream.request("POST", path, json=json, headers={**headers, "Idempotency-Key": key})
    if response.status_code >= 400:
        raise relayed_error(response)
    return IdempotentWrite(
        response.json(), response.status_code, response.headers.get("idempotent-replayed") == "true"
    )
