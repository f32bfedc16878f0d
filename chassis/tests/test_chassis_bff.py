"""chassis.bff.View: required and optional parts, the budget, and late parts left to finish."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import Response

from chassis.bff import BudgetExceeded, View, mark_degraded
from chassis.http import DownstreamError, DownstreamUnavailable


async def _value(value: str, delay_s: float = 0.0) -> str:
    await asyncio.sleep(delay_s)
    return value


async def _raise(error: Exception) -> str:
    raise error


async def test_parts_run_concurrently_and_keep_their_values() -> None:
    other_started = asyncio.Event()

    async def waits_for_the_other() -> str:
        await other_started.wait()  # only finishes if the second part runs meanwhile
        return "a"

    async def signals() -> str:
        other_started.set()
        return "b"

    async with View(5.0) as view:
        first = view.start(waits_for_the_other())
        second = view.start(signals())
        assert await view.required("a", first) == "a"
        assert await view.optional("b", second) == "b"
    assert view.degraded == []


async def test_a_late_optional_part_is_none_and_degraded_but_keeps_running() -> None:
    finished = asyncio.Event()

    async def slow() -> str:
        await asyncio.sleep(0.3)
        finished.set()
        return "late"

    async with View(0.05) as view:
        part = view.start(slow())
        assert await view.optional("reviews", part) is None
    assert view.degraded == ["reviews"]
    assert not part.cancelled()
    await asyncio.wait_for(finished.wait(), 2)  # the call ran to its own end: its breaker hears it
    assert part.result() == "late"


async def test_a_late_required_part_is_503_with_retry_after() -> None:
    with pytest.raises(BudgetExceeded) as caught:
        async with View(0.05) as view:
            await view.required("catalog", view.start(_value("x", 1.0)))
    assert caught.value.status == 503
    assert caught.value.headers["Retry-After"] == "1"
    assert caught.value.extras == {"downstream": "catalog", "reason": "budget"}


async def test_unavailable_and_client_errors() -> None:
    async with View(1.0) as view:
        lost = view.start(_raise(DownstreamError("bad ids", status=422)))
        assert await view.optional("inventory", lost) is None
        fallback = view.fallback("reviews")
        assert fallback(DownstreamUnavailable("reviews", "failure", 1)) is None
        with pytest.raises(DownstreamError):  # a required part's 4xx is relayed as it is
            await view.required("catalog", view.start(_raise(DownstreamError("no such product", status=404))))
    assert view.degraded == ["inventory", "reviews"]
    response = Response()
    mark_degraded(response, view.degraded)
    assert response.headers["X-Degraded"] == "inventory, reviews"
    untouched = Response()
    mark_degraded(untouched, [])
    assert "X-Degraded" not in untouched.headers
