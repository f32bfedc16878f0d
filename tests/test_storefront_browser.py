"""The storefront in a real browser against a running topology (config-service, auth-service, catalog,
inventory, reviews, orders, gateway-web and redis-server as real processes, spans to a real Zipkin):
browse, search, filter and page as the API answers; log in; add to cart; place an order (CSRF header
and Idempotency-Key sent by the page); see it in "my orders"; write a review; the footer links the
last request's trace, which Zipkin has. Reviews stopped: the banner says so and the shop still sells.
Catalog stopped: a 503 with its Retry-After; orders stopped: the same, and the checkout clicked again
once orders is back reuses its Idempotency-Key; failed logins: a 429 with its Retry-After. A write
without the CSRF header is refused 403 problem+json.
Screenshots: test-artifacts/storefront.png, storefront-degraded.png, storefront-phone.png.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from msa_testing.browser import CHROMIUM, CHROMIUM_ARGS
from msa_testing.fixtures import Topology
from msa_testing.infra import ZipkinServer
from msa_testing.polling import wait_until

pytestmark = [pytest.mark.system, pytest.mark.browser]

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
SERVICES = {"config-service", "auth-service", "catalog", "inventory", "reviews", "orders", "gateway-web"}
PAGE_SIZE = 12  # the storefront's listing page size (app.js)
PROBLEM = "application/problem+json"

CARD_IDS = "() => [...document.querySelectorAll('#products li.card')].map((li) => li.dataset.id)"
SAME_CARDS = f"(ids) => JSON.stringify(({CARD_IDS})()) === JSON.stringify(ids)"
# A write from the page's own context, as a script would send it: the session cookie goes along.
POST_ORDER = """
async (headers) => {
  const response = await fetch("/api/orders", {
    method: "POST",
    headers: { "Content-Type": "application/json", "Idempotency-Key": "csrf-probe-" + Date.now(), ...headers },
    body: JSON.stringify({ lines: [{ product_id: "p-1001", quantity: 1 }] }),
  });
  return { status: response.status, type: response.headers.get("content-type"), body: await response.json() };
}
"""
ORDER_COUNT = "async () => (await (await fetch('/api/orders')).json()).total"


@pytest.fixture
def chromium(require_infra: Callable[[str], None]) -> str:
    if not Path(CHROMIUM).exists() or shutil.which("redis-server") is None:
        require_infra("needs /usr/bin/chromium (Debian package chromium) and redis-server")
    return CHROMIUM


def api_ids(web: str, **params: Any) -> list[str]:
    """The product ids gateway-web's API answers for a listing, in order."""
    answer = httpx.get(f"{web}/api/products", params={"size": PAGE_SIZE, **params}, timeout=10)
    assert answer.status_code == 200, answer.text
    return [item["id"] for item in answer.json()["items"]]


async def wait_cards(page: Any, expected: list[str]) -> None:
    assert expected, "a listing to compare with"
    try:
        await page.wait_for_function(SAME_CARDS, arg=expected, timeout=15_000)
    except Exception:
        raise AssertionError(f"cards {await page.evaluate(CARD_IDS)}, expected {expected}") from None


async def place_order(page: Any, base: str, product_id: str) -> str:
    """Add ``product_id`` from its page, check out, and return the id "my orders" highlights."""
    await page.goto(f"{base}/#/product/{product_id}")
    await page.locator(".product button.add").click()
    await page.locator("#cart-link").click()
    await page.locator("#place-order").click()
    placed = page.locator("#orders li.order.placed")
    await placed.wait_for(timeout=15_000)
    order_id = await placed.get_attribute("data-id")
    assert order_id
    assert f"Order {order_id}" in await placed.inner_text()
    assert await page.locator("#cart-count").inner_text() == "0"
    return order_id


async def test_storefront_browse_buy_degrade_and_refuse(
    make_topology: Callable[..., Topology], zipkin_server: ZipkinServer, chromium: str
) -> None:
    from playwright.async_api import async_playwright

    topology = make_topology(
        only=SERVICES, zipkin=zipkin_server, env={"gateway-web": {"ZIPKIN_UI_URL": zipkin_server.url}}
    )
    web = topology.url("gateway-web")
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium, args=CHROMIUM_ARGS, headless=True
        )
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            page = await context.new_page()
            page.set_default_timeout(15_000)
            page_errors: list[str] = []
            console_errors: list[str] = []
            writes: list[Any] = []
            page.on("pageerror", lambda exc: page_errors.append(str(exc)))
            page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
            page.on("request", lambda r: writes.append(r) if r.method != "GET" else None)

            # ---- browse: the listing, search, a category and the next page, as the API answers them
            await page.goto(web + "/")
            await wait_cards(page, api_ids(web))
            first = await page.locator("#products li.card").first.inner_text()
            assert "EUR" in first
            assert "In stock" in first or "Out of stock" in first
            assert "★" in first
            assert re.fullmatch(r"Page 1 of \d+", await page.locator(".pager span").inner_text())
            await page.locator("#q").fill("tent")
            await page.locator("#q").press("Enter")
            await wait_cards(page, api_ids(web, q="tent"))
            await page.locator("#q").fill("")
            await page.locator("#category").select_option("footwear")
            await wait_cards(page, api_ids(web, category="footwear"))
            await page.goto(web + "/#/")
            await wait_cards(page, api_ids(web))
            await page.locator(".pager a[rel=next]").click()
            await wait_cards(page, api_ids(web, page=2))

            # ---- keyboard: the skip link takes focus first, visibly; a card link opens with Enter
            await page.goto(web + "/#/")
            await page.reload()
            await wait_cards(page, api_ids(web))
            await page.keyboard.press("Tab")
            focused = await page.evaluate(
                "() => [document.activeElement.textContent, getComputedStyle(document.activeElement).outlineStyle]"
            )
            assert focused == ["Skip to content", "solid"]
            await page.locator("#products li.card a.card-link").first.focus()
            await page.keyboard.press("Enter")
            await page.locator("article.product").wait_for()

            # ---- log in, then the product page: stock, rating, latest reviews, nothing degraded
            await page.locator("#login-link").click()
            await page.locator("#username").fill("alice")
            await page.locator("#password").fill("alice-password")
            await page.locator("#login-form button[type=submit]").click()
            await page.locator("#logout-button").wait_for(state="visible")
            await page.locator("article.product").wait_for()  # back where the login started
            await page.goto(web + "/#/product/p-1001")
            await page.locator("#reviews li").first.wait_for()
            assert re.match(r"In stock \(\d+\)", await page.locator("#stock").inner_text())
            assert re.match(r"★ \d\.\d \(\d+ reviews?\)", await page.locator("#rating").inner_text())
            assert not await page.locator("#degraded").is_visible()

            # ---- write a review: it shows among the latest
            await page.locator("#review-rating").select_option("4")
            await page.locator("#review-title").fill("Great on wet rock")
            await page.locator("#review-body").fill("Wore them on a muddy ridge walk.")
            await page.locator("#review-form button[type=submit]").click()
            await page.locator("#reviews li", has_text="Great on wet rock").wait_for()

            # ---- add to cart, place the order, see it in "my orders"
            order_id = await place_order(page, web, "p-1001")
            assert (
                "Trail Running Shoe × 1" in await page.locator(f'li.order[data-id="{order_id}"]').inner_text()
            )
            order_posts = [r for r in writes if r.url == f"{web}/api/orders"]
            assert len(order_posts) == 1
            headers = await order_posts[0].all_headers()
            assert re.fullmatch(r"[0-9a-f]{32}", headers["idempotency-key"])
            assert headers["x-csrf-token"], "the page sends the session's CSRF token"
            for write in writes:  # every write the page made in a session carried it
                if not write.url.endswith("/auth/login"):
                    assert (await write.all_headers()).get("x-csrf-token"), write.url
            await page.screenshot(path=str(ARTIFACTS / "storefront.png"), full_page=True)

            # ---- the footer links the last request's trace (GET /api/orders), which Zipkin has
            link = page.locator("#trace-link")
            trace_id = await link.inner_text()
            assert await link.get_attribute("href") == f"{zipkin_server.url}/zipkin/traces/{trace_id}"

            def in_zipkin() -> bool:
                answer = httpx.get(f"{zipkin_server.url}/api/v2/trace/{trace_id}", timeout=5)
                names = (
                    {s["localEndpoint"]["serviceName"] for s in answer.json()} if answer.is_success else set()
                )
                return {"gateway-web", "orders"} <= names

            wait_until(f"trace {trace_id} in Zipkin", in_zipkin)
            async with httpx.AsyncClient(timeout=10) as client:  # the link opens Zipkin's trace page
                assert (await client.get(await link.get_attribute("href") or "")).status_code == 200

            # ---- a write without the CSRF header (or with a wrong one) is refused, and places nothing
            before = await page.evaluate(ORDER_COUNT)
            for headers in ({}, {"X-CSRF-Token": "not-this-sessions-token"}):
                refused = await page.evaluate(POST_ORDER, headers)
                assert refused["status"] == 403, refused
                assert refused["type"] == PROBLEM
                assert "X-CSRF-Token" in refused["body"]["detail"]
            assert await page.evaluate(ORDER_COUNT) == before

            # ---- reviews stopped: the product page says so and the shop still sells
            topology.stop("reviews")
            try:
                await page.goto(web + "/#/product/p-1003")
                banner = page.locator("#degraded")
                await banner.wait_for(state="visible")
                assert "Reviews are unavailable right now" in await banner.inner_text()
                assert await page.locator("#reviews-unavailable").is_visible()
                assert await page.locator("#rating").inner_text() == "Rating unavailable"
                assert (await page.locator("#stock").inner_text()).startswith("In stock")
                await page.screenshot(path=str(ARTIFACTS / "storefront-degraded.png"), full_page=True)
                await place_order(page, web, "p-1003")
                assert not await banner.is_visible()  # my orders needs no reviews
            finally:
                topology.start("reviews")

            # ---- catalog stopped: 503 with Retry-After, said so
            topology.stop("catalog")
            try:
                await page.goto(web + "/#/?q=boot")
                notice = page.locator("#notice")
                await notice.wait_for(state="visible")
                assert re.search(r"cannot do this right now.*try again in \d+ s", await notice.inner_text())
            finally:
                topology.start("catalog")

            # ---- orders stopped: the checkout is refused 503 (Retry-After said); clicked again once
            # orders is back, the same checkout places the order with the same Idempotency-Key
            await page.goto(f"{web}/#/product/p-1004")
            await page.locator(".product button.add").click()
            await page.locator("#cart-link").click()
            topology.stop("orders")
            try:
                await page.locator("#place-order").click()
                notice = page.locator("#notice")
                await notice.wait_for(state="visible")
                assert re.search(r"cannot do this right now.*try again in \d+ s", await notice.inner_text())
            finally:
                topology.start("orders")
            await page.locator("#place-order").click()
            await page.locator("#orders li.order.placed").wait_for()
            sent = [
                (await r.all_headers())["idempotency-key"] for r in writes if r.url == f"{web}/api/orders"
            ]
            keys = [k for k in sent if not k.startswith("csrf-probe-")]
            assert len(keys) == 4, keys
            assert keys[2] == keys[3], keys  # the retried click: the same key
            assert len(set(keys)) == 3, keys  # each checkout a fresh one

            # ---- a phone: the listing fits 375 px
            phone = await context.new_page()
            await phone.set_viewport_size({"width": 375, "height": 812})
            await phone.goto(web + "/")
            await wait_cards(phone, api_ids(web))
            assert await phone.evaluate("() => document.documentElement.scrollWidth") <= 375
            await phone.screenshot(path=str(ARTIFACTS / "storefront-phone.png"))
            await phone.close()

            # ---- logged out; failed logins for one name until auth-service's limit: 429 and its Retry-After
            await page.locator("#logout-button").click()
            await page.locator("#login-link").wait_for(state="visible")
            await page.locator("#login-link").click()
            notice_text = ""
            for _ in range(10):
                await page.locator("#username").fill("mallory")
                await page.locator("#password").fill("not-a-password")
                await page.locator("#login-form button[type=submit]").click()
                await page.locator("#notice").wait_for(state="visible")
                await page.locator("#login-form button[type=submit]").wait_for(state="attached")
                await page.wait_for_function("() => !document.querySelector('#login-form button').disabled")
                notice_text = await page.locator("#notice-text").inner_text()
                if notice_text.startswith("Too many requests"):
                    break
            assert re.search(r"^Too many requests.*try again in \d+ s", notice_text), notice_text

            assert page_errors == []
            assert not [e for e in console_errors if "Content Security Policy" in e], console_errors
        finally:
            await browser.close()
