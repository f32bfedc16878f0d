"""The dashboard never redirects to the Host header a client sent (it once answered
``/api/state/`` with ``307 Location: http://<Host>/api/state``)."""

from __future__ import annotations

import httpx

from msa_testing.apps import served
from ops_dashboard.main import create
from ops_dashboard.settings import Settings


async def test_a_trailing_slash_is_a_404_not_a_redirect_to_the_host_header(redis_url: str) -> None:
    settings = Settings(redis_url=redis_url, zipkin_endpoint=None, env="test", replica_id="dashboard-test")
    async with served(create(settings)) as url, httpx.AsyncClient(base_url=url) as client:
        for path in ("/api/state/", "/api/alerts/", "/stream/"):
            response = await client.get(path, headers={"Host": "evil.example"})
            assert response.status_code == 404, (path, response.headers.get("location"))
            assert "location" not in response.headers
            assert response.headers["content-type"] == "application/problem+json"
        assert (await client.get("/api/state", headers={"Host": "evil.example"})).status_code == 200
