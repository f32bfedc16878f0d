"""Zipkin's "View Logs" link, checked on the real Zipkin server of the version .env pins.

docker-compose.yml sets ``ZIPKIN_UI_LOGS_URL`` (Spring's relaxed binding of the server property
``zipkin.ui.logs-url``). This starts the same zipkin-server release with that environment and
checks that the UI's /config.json serves the URL, and that the bundled zipkin-lens fills
``{traceId}`` in it and labels it "View Logs" (an item of the trace page's header menu in 3.6.1,
not a button of its own), so that item opens Kibana Discover on the trace being viewed.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
import yaml

from msa_testing.infra import ZIPKIN_VERSION, start_zipkin

REPO = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())


def _dotenv(name: str) -> str:
    for line in (REPO / ".env").read_text().splitlines():
        if line.startswith(f"{name}="):
            return line.split("=", 1)[1].strip()
    raise KeyError(name)


@pytest.mark.system
def test_zipkin_serves_the_logs_url_and_lens_fills_the_trace_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _dotenv("ZIPKIN_VERSION") == ZIPKIN_VERSION, "the tests run the Zipkin release compose pins"
    logs_url = COMPOSE["services"]["zipkin"]["environment"]["ZIPKIN_UI_LOGS_URL"]
    monkeypatch.setenv("ZIPKIN_UI_LOGS_URL", logs_url)  # inherited by the server process
    server = start_zipkin(tmp_path)
    try:
        config = httpx.get(f"{server.url}/zipkin/config.json", timeout=10).json()
        assert config["logsUrl"] == logs_url
        index = httpx.get(f"{server.url}/zipkin/", timeout=10).text
        scripts = re.findall(r'src="([^"]+\.js)"', index)
        assert scripts, "zipkin-lens index.html without scripts"
        bundle = "".join(httpx.get(f"{server.url}{src}", timeout=30).text for src in scripts)
    finally:
        server.stop()
    # zipkin-lens: logsUrl.replace(/{traceId}/g, trace.traceId)
    assert re.search(r"logsUrl\.replace\(/\{traceId\}/g", bundle)
    assert "{traceId}" in logs_url
    # The label the docs name: TracePage/Header/HeaderMenu.tsx's menu item.
    assert "View Logs" in bundle
    assert "**View Logs**" in (REPO / "deploy/README.md").read_text()
