"""Checks of a gateway's edge that both gateways share."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import httpx
from fastapi import FastAPI

from chassis.state import chassis_state

__all__ = ["assert_credentials_ignored"]


async def assert_credentials_ignored(
    client: httpx.AsyncClient, app: FastAPI, paths: Iterable[str], presented: Mapping[str, Mapping[str, str]]
) -> None:
    """Each public ``path`` answers every set of ``presented`` headers (a revoked token, a forged
    one, an ended session cookie...) exactly as it answers an anonymous caller, and never asks
    auth-service about them: credentials on a public route are ignored, not checked."""
    auth_calls = chassis_state(app).downstreams["auth-service"].breaker.metrics
    calls_before = auth_calls.snapshot()["request_count"]
    for path in paths:
        anonymous = await client.get(path)
        assert anonymous.status_code == 200, anonymous.text
        for what, headers in presented.items():
            answer = await client.get(path, headers=dict(headers))
            assert answer.status_code == 200, (path, what, answer.text)
            assert answer.json() == anonymous.json(), (path, what)
    calls_after = auth_calls.snapshot()["request_count"]
    assert calls_after == calls_before, "public routes never ask auth-service about credentials"
