"""The storefront served by gateway-web: the page and its files (types, CSP, caching), the config
route, generated product pictures, and the API, docs, health, ops and rate limits unchanged by it."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from catalog.products.seed import DEMO_PRODUCTS
from gateway_web.auth.service import CSRF_PROBLEM
from gateway_web.storefront.router import STATIC_DIR
from msa_testing.apps import GatewayRunner

PROBLEM = "application/problem+json"
TYPES = {
    ".js": ("text/javascript", "application/javascript"),
    ".css": ("text/css",),
    ".svg": ("image/svg+xml",),
}
TRACERESPONSE = re.compile(r"^00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


def assert_page_headers(response: httpx.Response) -> None:
    csp = response.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"  # no 'unsafe-inline', no other origin
    assert directives["connect-src"] == "'self'"
    assert "unsafe" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-cache"


async def test_the_page_and_every_file_it_loads_come_from_the_gateway(web: httpx.AsyncClient) -> None:
    page = await web.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert_page_headers(page)
    assert "<script>" not in page.text  # nothing inline for CSP to allow
    assert "style=" not in page.text
    assets = re.findall(r'(?:src|href)="(/storefront/[^"]+)"', page.text)
    assert {"/storefront/app.js", "/storefront/app.css", "/storefront/favicon.svg"} <= set(assets)
    # every shipped file is served with its type and the page's headers, and revalidated by ETag
    files = sorted(p.name for p in STATIC_DIR.iterdir() if p.suffix != ".html")
    assert {"api.js", "cart.js", "app.js"} <= set(files)
    for name in files:
        response = await web.get(f"/storefront/{name}")
        assert response.status_code == 200, name
        assert response.headers["content-type"].split(";")[0] in TYPES[STATIC_DIR.joinpath(name).suffix], name
        assert_page_headers(response)
        again = await web.get(f"/storefront/{name}", headers={"If-None-Match": response.headers["etag"]})
        assert again.status_code == 304, name


def test_no_file_fetches_anything_from_elsewhere() -> None:
    for path in STATIC_DIR.iterdir():
        text = path.read_text().replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert not re.search(r"https?://|//[a-z0-9-]+\.[a-z]", text), path.name
        # modules import each other, nothing else; only api.js calls fetch
        assert all(m.startswith("./") for m in re.findall(r'from "([^"]+)"', text)), path.name
        assert ("fetch(" in text) == (path.name == "api.js"), path.name
    # a 403 of this type makes the page re-read its session (api.js)
    assert f'"{CSRF_PROBLEM}"' in STATIC_DIR.joinpath("api.js").read_text()


async def test_unknown_files_are_404_problems_like_any_path(web: httpx.AsyncClient) -> None:
    for path in (
        "/storefront/nope.js",
        "/storefront/",
        "/storefront/%2e%2e/main.py",
        "/storefront/static/app.js",
    ):
        response = await web.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == PROBLEM, path
    assert (await web.get("/index.html")).status_code == 404


async def test_config_names_zipkin_and_the_csrf_header(
    make_gateway: Callable[..., FastAPI], run: GatewayRunner, web: httpx.AsyncClient
) -> None:
    default = await web.get("/storefront/config.json")
    assert default.status_code == 200
    assert default.json() == {
        "zipkin_ui_url": "http://localhost:9411",
        "csrf_header": "X-CSRF-Token",
        "csrf_cookie": "msa_csrf",
    }
    assert default.headers["cache-control"] == "no-cache"
    async with run(make_gateway(zipkin_ui_url="http://zipkin.example:9411/")) as client:
        configured = (await client.get("/storefront/config.json")).json()
    assert configured["zipkin_ui_url"] == "http://zipkin.example:9411"


async def test_every_catalog_picture_resolves_to_a_deterministic_svg(
    make_gateway: Callable[..., FastAPI], run: GatewayRunner
) -> None:
    # No shedding: in-process, a hundred requests answered within one loop turn count as load.
    async with run(make_gateway(shed={"enabled": False})) as web:
        seen = {url: await picture(web, url, width) for url, width in catalog_pictures()}
    assert len(set(seen.values())) == len(seen)  # another id (or size), another picture


def catalog_pictures() -> list[tuple[str, str]]:
    return [
        (str(product[field]), width)
        for product in DEMO_PRODUCTS
        for field, width in (("image_url", "640"), ("thumb_url", "160"))
    ]


async def picture(web: httpx.AsyncClient, url: str, width: str) -> str:
    """The SVG at ``url``, checked."""
    response = await web.get(url)
    assert response.status_code == 200, url
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert "max-age=" in response.headers["cache-control"]
    svg = ET.fromstring(response.text)
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    assert svg.get("width") == width
    assert (await web.get(url)).text == response.text  # the same id, the same picture
    return response.text


@pytest.mark.parametrize(
    "name",
    [
        "p-1001.png",
        "p-1001",
        "-x.jpg",
        "..jpg",
        "a%3Cscript%3E.jpg",
        f"{'a' * 65}.jpg",
        "-thumb.jpg",
        "p-1001%0A.jpg",  # a regex's $ matches before a final newline: the whole id must match
        "p-1001%0A-thumb.jpg",
    ],
)
async def test_a_name_that_is_no_picture_is_a_404_problem(web: httpx.AsyncClient, name: str) -> None:
    response = await web.get(f"/img/products/{name}")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM


async def test_api_docs_health_and_ops_still_answer(web: httpx.AsyncClient) -> None:
    assert (await web.get("/health/live")).status_code == 200
    assert (await web.get("/ops/telemetry")).status_code == 200
    docs = await web.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    paths = (await web.get("/openapi.json")).json()["paths"]
    assert {"/api/products", "/auth/login"} <= set(paths)
    assert not [p for p in paths if p == "/" or p.startswith(("/storefront", "/img"))]  # not API
    me = await web.get("/auth/me")
    assert me.status_code == 401
    assert me.headers["content-type"] == PROBLEM
    # catalog is down in this gateway (nothing listens): the API answers, as ever, 503 + Retry-After
    products = await web.get("/api/products")
    assert products.status_code == 503
    assert products.headers["content-type"] == PROBLEM
    assert "retry-after" in products.headers


async def test_answers_name_their_trace_for_the_footer(web: httpx.AsyncClient) -> None:
    me = await web.get("/auth/me")
    match = TRACERESPONSE.match(me.headers["traceresponse"])
    assert match, me.headers["traceresponse"]
    assert match.group(1) == me.json()["trace_id"]  # the trace the problem names too
    other = await web.get("/api/products")
    other_match = TRACERESPONSE.match(other.headers["traceresponse"])
    assert other_match
    assert other_match.group(1) != match.group(1)


async def test_the_page_its_files_and_pictures_are_not_traced(web: httpx.AsyncClient) -> None:
    # a listing view loads a score of them: in Zipkin, the API calls alone
    for path in ("/", "/storefront/app.js", "/storefront/config.json", "/img/products/p-1001-thumb.jpg"):
        response = await web.get(path)
        assert response.status_code == 200, path
        assert "traceresponse" not in response.headers, path
    for path in ("/auth/me", "/api/products", "/docs", "/storefront"):  # the rest is, as ever
        assert "traceresponse" in (await web.get(path)).headers, path


RATE_LIMIT: dict[str, Any] = {
    "enabled": True,
    "groups": {"api": {"paths": ["/"], "per_ip": {"limit": 1, "period_s": 60, "burst": 4}}},
}


async def test_the_page_counts_against_the_api_rate_limit_and_health_does_not(
    make_gateway: Callable[..., FastAPI], run: GatewayRunner
) -> None:
    async with run(make_gateway(rate_limit=RATE_LIMIT)) as client:
        statuses = [(await client.get(path)).status_code for path in ("/", "/storefront/app.js", "/", "/")]
        assert statuses == [200] * 4
        refused = await client.get("/storefront/app.css")
        assert refused.status_code == 429
        assert refused.headers["content-type"] == PROBLEM
        assert "retry-after" in refused.headers
        assert (await client.get("/health/ready")).status_code == 200
