"""The storefront in a real browser against a running topology (config-service, auth-service, catalog,
inventory, reviews, orders, gateway-web and redis-server as real processes, spans to a real Zipkin):
browse, search, filter and page as the API answers; log in; add to cart; place an order (CSRF header
and Idempotency-Key sent by the page); see it in "my orders"; write a review; the footer links the
last request's trace, which Zipkin has. Reviews stopped: the banner says so and the shop still sells.
Catalog stopped: a 503 with its Retry-After; orders stopped: the same, and the checkout clicked again
once orders is back reuses its Idempotency-Key; failed logins: a 429 with its Retry-After. A write
without the CSRF header is refused 403 problem+json; a tab whose session was replaced in another tab
writes with the new session's token. On canned answers (edge cases a topology does not make at will):
a malformed link, a late answer of a view left behind, pictures of other hosts, an unsampled trace,
a cart in two currencies, and a refused CSRF token.
Screenshots: test-artifacts/storefront.png, storefront-degraded.png, storefront-phone.png.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway_web.auth.service import CSRF_PROBLEM
from gateway_web.storefront.router import STATIC_DIR
from msa_testing.browser import CHROMIUM, launched
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

    topology = make_topology(
        only=SERVICES, zipkin=zipkin_server, env={"gateway-web": {"ZIPKIN_UI_URL": zipkin_server.url}}
    )
    web = topology.url("gateway-web")
    ARTIFACTS.mkdir(exist_ok=True)
    async with launched(chromium) as browser:
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
        assert "Trail Running Shoe × 1" in await page.locator(f'li.order[data-id="{order_id}"]').inner_text()
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
            names = {s["localEndpoint"]["serviceName"] for s in answer.json()} if answer.is_success else set()
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
            assert refused["body"]["type"] == CSRF_PROBLEM
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
        sent = [(await r.all_headers())["idempotency-key"] for r in writes if r.url == f"{web}/api/orders"]
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

        # ---- another tab logs in again (a new session, a new CSRF token); this tab, reloaded, still
        # writes: it sends the token of the session it has now, not the one it logged in with
        other = await context.new_page()
        await other.goto(web + "/#/login")
        await other.locator("#username").fill("alice")
        await other.locator("#password").fill("alice-password")
        # (the tab shows Log out at once, from the session it opened with: wait for the login itself)
        async with other.expect_response(lambda r: r.url == f"{web}/auth/login") as relogin:
            await other.locator("#login-form button[type=submit]").click()
        assert (await relogin.value).status == 200
        await other.locator("#logout-button").wait_for(state="visible")
        await other.close()
        await page.reload()
        await page.locator("#logout-button").wait_for(state="visible")

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


# ---- the page on canned answers ---------------------------------------------------------------------
SHOP = "http://shop.test"  # never resolved: every request of the page is answered by the test
SAMPLED, UNSAMPLED = "0" * 31 + "a", "0" * 31 + "b"
FILE_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


def card(product_id: str, thumb_url: str) -> dict[str, Any]:
    return {
        "id": product_id,
        "name": f"Product {product_id}",
        "brand": "Brand",
        "category": "tents",
        "price": "10.00 EUR",
        "price_cents": 1000,
        "currency": "EUR",
        "thumb_url": thumb_url,
        "image_url": thumb_url,
        "stock": None,
        "rating": None,
    }


LISTING = [
    card("p-1", "/img/products/p-1-thumb.jpg"),
    card("p-2", "//evil.test/x.jpg"),
    card("p-3", "/\\evil.test/x.jpg"),  # a browser reads it as //evil.test/x.jpg
    card("p-4", "https://evil.test/x.jpg"),
    card("p-5", "javascript:alert(1)"),
]


class CannedShop:
    """Answers the page's requests: its files from the package, the API as each case needs."""

    def __init__(self) -> None:
        self.csrf_sent: list[str | None] = []

    async def __call__(self, route: Any) -> None:
        request = route.request
        path = request.url.removeprefix(SHOP).split("?")[0]
        if path == "/" or path.startswith("/storefront/") and path != "/storefront/config.json":
            file = STATIC_DIR / ("index.html" if path == "/" else path.removeprefix("/storefront/"))
            await route.fulfill(body=file.read_bytes(), content_type=FILE_TYPES[file.suffix])
        elif path == "/storefront/config.json":
            await self.json(
                route,
                {
                    "zipkin_ui_url": "http://zipkin.test",
                    "csrf_header": "X-CSRF-Token",
                    "csrf_cookie": "msa_csrf",
                },
            )
        elif path.startswith("/img/"):
            await route.fulfill(
                body='<svg xmlns="http://www.w3.org/2000/svg"/>', content_type="image/svg+xml"
            )
        elif path == "/auth/me":
            await self.json(route, {"sub": "alice", "scope": "shop"})
        elif path == "/auth/logout":
            self.csrf_sent.append((await request.all_headers()).get("x-csrf-token"))
            problem = {
                "type": CSRF_PROBLEM,
                "title": "Forbidden",
                "status": 403,
                "detail": "Send the CSRF token.",
            }
            await self.json(route, problem, status=403)
        elif path == "/api/products":
            await self.json(
                route, {"items": LISTING, "total": len(LISTING), "page": 1, "size": 12}, trace=SAMPLED
            )
        elif path == "/api/products/p-late":  # answered after the shopper has moved on, degraded
            await asyncio.sleep(1.5)
            await self.json(route, {**card("p-late", ""), "latest_reviews": None}, degraded="reviews")
        elif path == "/api/products/p-unsampled":
            await self.json(
                route, {**card("p-unsampled", ""), "latest_reviews": []}, trace=UNSAMPLED, flags="00"
            )
        else:
            await route.fulfill(status=404, body="")

    async def json(
        self,
        route: Any,
        body: Any,
        *,
        status: int = 200,
        trace: str = SAMPLED,
        flags: str = "01",
        degraded: str = "",
    ) -> None:
        headers = {"traceresponse": f"00-{trace}-{'0' * 15}1-{flags}"}
        if degraded:
            headers["X-Degraded"] = degraded
        media = "application/problem+json" if status >= 400 else "application/json"
        await route.fulfill(status=status, headers=headers, body=json.dumps(body), content_type=media)


async def test_the_page_handles_what_the_topology_will_not_make_at_will(chromium: str) -> None:

    shop = CannedShop()
    async with launched(chromium) as browser:
        context = await browser.new_context()
        await context.route("**/*", shop)
        page = await context.new_page()
        page.set_default_timeout(10_000)
        page_errors: list[str] = []
        page.on("pageerror", lambda exc: page_errors.append(str(exc)))

        # ---- a malformed link is a "not found", not an exception
        await page.goto(SHOP + "/#/product/%E0")
        await page.locator("#not-found").wait_for()

        # ---- pictures: this origin's only, however another host is spelled; a sampled trace is a link
        await page.goto(SHOP + "/#/")
        await page.locator("#products li.card").first.wait_for()
        pictures = await page.evaluate(
            "() => [...document.querySelectorAll('#products img')].map((i) => i.getAttribute('src'))"
        )
        assert pictures == ["/img/products/p-1-thumb.jpg"]
        assert await page.locator("#trace-link").inner_text() == SAMPLED

        # ---- the degraded answer of a view left behind does not reach the next view's banner
        async with page.expect_response(lambda r: r.url.endswith("/p-late")):
            await page.goto(SHOP + "/#/product/p-late")
            await page.goto(SHOP + "/#/")
        await page.locator("#products li.card").first.wait_for()
        await page.evaluate("() => new Promise((resolve) => setTimeout(resolve, 200))")  # its json read
        assert not await page.locator("#degraded").is_visible()

        # ---- an unsampled trace is named, not linked: Zipkin never has it
        await page.goto(SHOP + "/#/product/p-unsampled")
        await page.locator("article.product").wait_for()
        assert await page.locator("#trace-id").inner_text() == UNSAMPLED
        assert await page.locator("#trace-link").count() == 0

        # ---- a cart in two currencies: a total per currency, none converted
        lines = [
            {
                "product_id": "p-1",
                "name": "Tent",
                "price_cents": 1000,
                "currency": "EUR",
                "thumb_url": "",
                "quantity": 2,
            },
            {
                "product_id": "p-2",
                "name": "Boot",
                "price_cents": 550,
                "currency": "USD",
                "thumb_url": "",
                "quantity": 1,
            },
        ]
        await page.evaluate("(lines) => localStorage.setItem('msa.cart', JSON.stringify(lines))", lines)
        await page.goto(SHOP + "/#/cart")
        assert await page.locator("#cart-total").inner_text() == "Total: 20.00 EUR + 5.50 USD"

        # ---- a refused CSRF token: dropped, the session re-read, Log in offered instead of a dead Log out
        await page.evaluate("() => { document.cookie = 'msa_csrf=stale; path=/'; }")
        await page.reload()
        await page.locator("#logout-button").click()
        await page.locator("#login-link").wait_for(state="visible")
        assert not await page.locator("#logout-button").is_visible()
        assert "Log in again" in await page.locator("#notice-text").inner_text()
        assert shop.csrf_sent == ["stale"]
        assert "msa_csrf" not in await page.evaluate("() => document.cookie")

        assert page_errors == []
