"""The journeys of `msa load`, run by Locust in a subprocess. msa never imports this module:
importing locust monkey-patches the standard library with gevent.

Four kinds of people, on both gateways. Visitors browse the listing, search, filter by category
and open product pages (the app: its feed, page after page by cursor). Shoppers do the same, log
in once and keep their session (web: cookie + CSRF token; app: bearer token, refreshed before it
expires) and now and then place an order and look at their orders. Everyone waits 0.5-2 s between
steps, as people do. Mind the edge (deploy/config-repo/gateway-*.yml): logins are limited per
address (30 per 5 min) and gateway-web sheds above ~20 pages in flight.
"""

from __future__ import annotations

import json
import random
import re
import time
import uuid
from typing import Any

from locust import HttpUser, between, events, task
from locust.env import Environment

WAIT = between(0.5, 2.0)
# Requests of one kind share a row in the summary, whatever their id or query.
LISTING, PAGE = "web /api/products", "web /api/products/{id}"
SEARCH, CATEGORY = "web /api/products?q=", "web /api/products?category="
FEED, FEED_NEXT, SCREEN = "mobile /m/products", "mobile /m/products?cursor=", "mobile /m/products/{id}"
SOLD_OUT = "Insufficient stock"
# Shoppers order only what has this many units to spare, so the demo's nearly sold-out products
# (1-3 units) are still there after a run.
SPARE_STOCK = 10


@events.init_command_line_parser.add_listener  # type: ignore[untyped-decorator]  # Locust's own hook
def _options(parser: Any) -> None:
    parser.add_argument("--web-url", default="http://localhost:8080", help="gateway-web")
    parser.add_argument("--mobile-url", default="http://localhost:8081", help="gateway-mobile")


@events.init.add_listener  # type: ignore[untyped-decorator]
def _hosts(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    if options is not None:
        WebVisitor.host = WebShopper.host = options.web_url
        MobileVisitor.host = MobileShopper.host = options.mobile_url


@events.init.add_listener  # type: ignore[untyped-decorator]
def _failures_at_exit(environment: Environment, **_: Any) -> None:
    """Every distinct failure Locust counted, to <--json-file>_failures.json for msa's report.

    Written on Locust's `quit` (after its users stopped and it wrote --json-file); its failures
    CSV lags up to a second behind."""
    options = environment.parsed_options
    if options is None or not options.json_file:
        return
    path = f"{options.json_file}_failures.json"

    def write(**_: Any) -> None:
        with open(path, "w") as handle:
            json.dump(list(environment.stats.serialize_errors().values()), handle)

    environment.events.quit.add_listener(write)  # type: ignore[no-untyped-call]


def _has_spare(available: int | None) -> bool:
    return available is not None and available >= SPARE_STOCK


def _credentials(username: str) -> dict[str, str]:
    return {"username": username, "password": f"{username}-password"}  # the dev-only seed users


def _order_body(product_id: str) -> dict[str, Any]:
    return {"lines": [{"product_id": product_id, "quantity": 1}]}


def _problem(answer: Any) -> str:
    """`503 <the problem's detail>`: one failure line per kind of fault or limit (numbers and quoted
    ids in the detail masked: "retry in N s", "No product with id '…'")."""
    if answer.status_code == 0:  # no answer: the root cause (refused, reset, timed out), not the URL
        error = getattr(answer, "error", None)
        for _ in range(10):  # requests wraps urllib3's error, which wraps the socket's
            if error is None or (error.__cause__ or error.__context__) is None:
                break
            error = error.__cause__ or error.__context__
        return f"0 {error!r}"
    try:
        body = answer.json()
    except ValueError:  # not JSON: a proxy's page
        body = None
    problem = body if isinstance(body, dict) else {}
    detail = str(problem.get("detail") or problem.get("title") or answer.text or "")
    detail = re.sub(r"\d+(\.\d+)?", "N", re.sub(r"'[^']*'", "'…'", detail))
    return f"{answer.status_code} {detail[:200]}".strip()


def _sold_out(answer: Any) -> bool:
    """An order met a product someone else just bought out: the shop's answer, not a fault."""
    return answer.status_code == 409 and SOLD_OUT in answer.text


class Unexpected(Exception):
    """Not the answer a request expects. Locust names a failure by its repr: the message alone."""

    def __repr__(self) -> str:
        return str(self)


class Person(HttpUser):
    """What every journey shares: a request fails, with its problem's detail, unless it got the
    answer it expects (Locust's own failure names only the status)."""

    abstract = True
    wait_time = WAIT

    def call(self, method: str, path: str, *, name: str, expect: int = 200, **kwargs: Any) -> Any:
        with self.client.request(method, path, name=name, catch_response=True, **kwargs) as answer:
            if answer.status_code == expect or (expect == 201 and _sold_out(answer)):
                answer.success()
            else:
                answer.failure(Unexpected(_problem(answer)))
        return answer


class WebVisitor(Person):
    """Anonymous browser on gateway-web."""

    weight = 2

    def on_start(self) -> None:
        self.cards: list[dict[str, Any]] = []
        self.browse()

    def _listing(self, name: str, **params: Any) -> None:
        answer = self.call("GET", "/api/products", params=params, name=name)
        if answer.status_code == 200:
            self.cards = answer.json()["items"] or self.cards

    @task(4)
    def browse(self) -> None:
        self._listing(LISTING, page=random.randint(1, 2), size=20)

    @task(2)
    def search(self) -> None:
        brand = random.choice(self.cards)["brand"] if self.cards else "tent"
        self._listing(SEARCH, q=brand)

    @task(2)
    def category(self) -> None:
        chosen = random.choice(self.cards)["category"] if self.cards else "camping"
        self._listing(CATEGORY, category=chosen)

    @task(4)
    def product_page(self) -> None:
        if self.cards:
            self.call("GET", f"/api/products/{random.choice(self.cards)['id']}", name=PAGE)


class WebShopper(WebVisitor):
    """Logged in once (HttpOnly session cookie, kept by the client) and buying now and then."""

    weight = 1
    username = "alice"

    def on_start(self) -> None:
        super().on_start()
        login = self.call("POST", "/auth/login", json=_credentials(self.username), name="web /auth/login")
        self.csrf: str | None = login.json()["csrf_token"] if login.status_code == 200 else None

    @task(1)
    def order(self) -> None:
        # Only what the listing showed with stock to spare; a user without a session browses on.
        plenty = [c for c in self.cards if c["stock"] and _has_spare(c["stock"]["available"])]
        if self.csrf is None or not plenty:
            return
        headers = {"X-CSRF-Token": self.csrf, "Idempotency-Key": f"load-{uuid.uuid4()}"}
        body = _order_body(random.choice(plenty)["id"])
        self.call("POST", "/api/orders", json=body, headers=headers, name="web /api/orders", expect=201)

    @task(1)
    def my_orders(self) -> None:
        if self.csrf is not None:
            self.call("GET", "/api/orders", name="web /api/orders")


class MobileVisitor(Person):
    """Anonymous app user on gateway-mobile: the compact feed, paged by cursor."""

    weight = 2

    def on_start(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.cursor: str | None = None
        self.available: dict[str, int | None] = {}  # product id -> units, as its screen last said
        self.feed()

    def _page(self, name: str, **params: Any) -> None:
        answer = self.call("GET", "/m/products", params=params, name=name)
        if answer.status_code == 200:
            feed = answer.json()
            self.rows, self.cursor = feed["items"] or self.rows, feed["next_cursor"]

    @task(3)
    def feed(self) -> None:
        self._page(FEED, limit=10)

    @task(3)
    def next_page(self) -> None:
        # The end of the feed starts it over, as pulling to refresh does.
        if self.cursor:
            self._page(FEED_NEXT, cursor=self.cursor)
        else:
            self.feed()

    @task(4)
    def product_screen(self) -> None:
        if self.rows:
            answer = self.call("GET", f"/m/products/{random.choice(self.rows)['id']}", name=SCREEN)
            if answer.status_code == 200:
                screen = answer.json()
                self.available[screen["id"]] = screen["available"]


class MobileShopper(MobileVisitor):
    """Holds a token pair from one login; renews it by refresh before the access token expires."""

    weight = 1
    username = "bob"

    def on_start(self) -> None:
        super().on_start()
        self.tokens: dict[str, Any] | None = None
        self.renew_at = 0.0
        answer = self.call("POST", "/auth/token", json=_credentials(self.username), name="mobile /auth/token")
        if answer.status_code == 200:
            self._keep(answer.json())

    def _keep(self, tokens: dict[str, Any]) -> None:
        self.tokens = tokens
        self.renew_at = time.monotonic() + 0.8 * float(tokens["expires_in"])

    def _bearer(self) -> dict[str, str] | None:
        if self.tokens is not None and time.monotonic() >= self.renew_at:
            refresh = {"refresh_token": self.tokens["refresh_token"]}
            answer = self.call("POST", "/auth/refresh", json=refresh, name="mobile /auth/refresh")
            if answer.status_code == 200:
                self._keep(answer.json())
            else:
                self.tokens = None  # the session is over: browse on without one
        return {"Authorization": f"Bearer {self.tokens['access_token']}"} if self.tokens else None

    @task(1)
    def order(self) -> None:
        # Only what a product screen showed with stock to spare (the feed says just in stock or not).
        plenty = [product for product, available in self.available.items() if _has_spare(available)]
        auth = self._bearer()
        if auth is None or not plenty:
            return
        headers = {**auth, "Idempotency-Key": f"load-{uuid.uuid4()}"}
        body = _order_body(random.choice(plenty))
        self.call("POST", "/m/orders", json=body, headers=headers, name="mobile /m/orders", expect=201)

    @task(1)
    def my_orders(self) -> None:
        auth = self._bearer()
        if auth is not None:
            self.call("GET", "/m/orders", params={"limit": 10}, headers=auth, name="mobile /m/orders")
