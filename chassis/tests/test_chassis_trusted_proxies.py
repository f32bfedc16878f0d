"""Forwarded headers are believed only from ``TRUSTED_PROXIES``, on a service started the way
production starts it: ``serve()`` in its own process (uvicorn alone trusts 127.0.0.1)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from chassis import ServiceSettings
from msa_testing.servers import served_process

# A service whose one route tells the client address it saw, started through serve().
SERVICE = """
from fastapi import APIRouter, Request
from chassis import ServiceSettings, create_app, serve

router = APIRouter()

@router.get("/whoami")
async def whoami(request: Request) -> dict[str, str]:
    return {"client": request.client.host if request.client else "", "scheme": request.url.scheme}

serve(lambda: create_app(ServiceSettings(), routers=[router]))
"""


@contextlib.contextmanager
def service(redis_url: str, log: Path, trusted: str | None) -> Iterator[str]:
    env = {"SERVICE_NAME": "proxy-test", **({"TRUSTED_PROXIES": trusted} if trusted is not None else {})}
    with served_process(SERVICE, redis_url=redis_url, log=log, env=env) as served:
        yield served.url


def seen(url: str, *, via: str = "127.0.0.1", **headers: str) -> dict[str, Any]:
    transport = httpx.HTTPTransport(local_address=via)  # loopback is a /8: 127.0.0.x are distinct peers
    with httpx.Client(transport=transport) as client:
        answer: dict[str, Any] = client.get(f"{url}/whoami", headers=headers).json()
    return answer


FORWARDED = {"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"}


def test_by_default_no_peer_is_trusted_not_even_loopback(redis_url: str, tmp_path: Path) -> None:
    with service(redis_url, tmp_path / "service.log", trusted=None) as url:
        assert seen(url, **FORWARDED) == {"client": "127.0.0.1", "scheme": "http"}


def test_only_the_configured_proxies_are_believed(redis_url: str, tmp_path: Path) -> None:
    with service(redis_url, tmp_path / "service.log", trusted="127.0.0.2, 10.0.0.0/8") as url:
        assert seen(url, via="127.0.0.2", **FORWARDED) == {"client": "198.51.100.7", "scheme": "https"}
        # the proxy's own hop is skipped, the client's claim before it is not taken at its word
        chain = {"X-Forwarded-For": "203.0.113.1, 198.51.100.7"}
        assert seen(url, via="127.0.0.2", **chain)["client"] == "198.51.100.7"
        assert seen(url, via="127.0.0.3", **FORWARDED) == {"client": "127.0.0.3", "scheme": "http"}


def test_trusted_proxies_are_read_from_the_environment_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTED_PROXIES", " 10.0.0.5 , fd00::/8,")
    assert ServiceSettings().trusted_proxies == ["10.0.0.5", "fd00::/8"]
    monkeypatch.setenv("TRUSTED_PROXIES", "proxy.internal")  # uvicorn would silently trust nobody
    with pytest.raises(ValidationError, match="no IP address or network"):
        ServiceSettings()
    monkeypatch.delenv("TRUSTED_PROXIES")
    assert ServiceSettings().trusted_proxies == []
