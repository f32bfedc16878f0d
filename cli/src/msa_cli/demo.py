"""`msa demo`: a narrated walkthrough against a running platform (docker compose up or msa dev up).

Each step prints the HTTP call and the interesting part of the answer; an unexpected answer stops the
walkthrough with a non-zero exit code, so the demo doubles as a smoke test.
"""

from __future__ import annotations

import secrets
import sys
import time
import uuid
from typing import Any

import httpx

from msa_cli.where import Urls

__all__ = ["DemoFailed", "run"]

TIMEOUT = httpx.Timeout(10.0, connect=3.0)
START_HINT = "start the platform first: docker compose up, or uv run msa dev up"


class DemoFailed(Exception):
    """A step answered unexpectedly, or a gateway is not reachable."""


def _step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def _show(label: str, value: object) -> None:
    print(f"     {label}: {value}", flush=True)


def _call(client: httpx.Client, method: str, path: str, expect: int, **kwargs: Any) -> httpx.Response:
    """One HTTP call, printed; anything but ``expect`` ends the demo."""
    try:
        answer = client.request(method, path, **kwargs)
    except httpx.TransportError as exc:
        raise DemoFailed(f"{client.base_url} is not reachable ({type(exc).__name__}); {START_HINT}") from exc
    print(f"  -> {method} {path}  {answer.status_code}", flush=True)
    if answer.status_code != expect:
        raise DemoFailed(f"{method} {path}: expected {expect}, got {answer.status_code}: {answer.text[:300]}")
    return answer


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ---- web: browser BFF, cookie session + CSRF ------------------------------------------------------


def web_listing(web: httpx.Client) -> str:
    _step("web: product listing (catalog + inventory + reviews, fetched concurrently)")
    cards = _call(web, "GET", "/api/products?size=3", 200).json()["items"]
    if not cards:
        raise DemoFailed("the web listing is empty")
    for card in cards:
        stock = card["stock"]["available"] if card["stock"] else "unknown"
        rating = f"{card['rating']['average']} ({card['rating']['count']})" if card["rating"] else "none"
        _show(card["id"], f"{card['name']} | {card['price']} | stock {stock} | rating {rating}")
    in_stock = [c["id"] for c in cards if c["stock"] and c["stock"]["in_stock"]]
    return in_stock[0] if in_stock else str(cards[0]["id"])


def web_product_page(web: httpx.Client, product_id: str) -> str:
    """Sends its own W3C traceparent, so the trace id is known without asking anyone."""
    _step("web: product page, with our own traceparent")
    trace_id = secrets.token_hex(16)
    traceparent = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    page = _call(web, "GET", f"/api/products/{product_id}", 200, headers={"traceparent": traceparent})
    body = page.json()
    _show("product", f"{body['name']} | {body['price']}")
    _show("latest reviews", len(body.get("latest_reviews") or []))
    _show("degraded", body.get("degraded") or "nothing")
    _show("traceparent sent", traceparent)
    return trace_id


def web_login(web: httpx.Client) -> str:
    _step("web: login as alice (HttpOnly session cookie + CSRF token)")
    login = _call(web, "POST", "/auth/login", 200, json={"username": "alice", "password": "alice-password"})
    _show("cookies held by the client", ", ".join(sorted(web.cookies.keys())))
    me = _call(web, "GET", "/auth/me", 200).json()
    _show("/auth/me", f"sub={me['sub']} scope={me['scope']}")
    csrf: str = login.json()["csrf_token"]
    return csrf


def web_orders(web: httpx.Client, csrf: str, product_id: str) -> None:
    _step("web: place an order with an Idempotency-Key, then send it again")
    headers = {"X-CSRF-Token": csrf, "Idempotency-Key": f"demo-{uuid.uuid4()}"}
    body = {"lines": [{"product_id": product_id, "quantity": 1}]}
    first = _call(web, "POST", "/api/orders", 201, json=body, headers=headers).json()
    _show("order", f"{first['id']} | {first['status']} | {first['total']}")
    again = _call(web, "POST", "/api/orders", 200, json=body, headers=headers)
    _show(
        "replayed", f"{again.json()['id']} (Idempotent-Replayed: {again.headers.get('Idempotent-Replayed')})"
    )
    if again.json()["id"] != first["id"]:
        raise DemoFailed("the same Idempotency-Key gave another order")
    mine = _call(web, "GET", "/api/orders", 200).json()["items"]
    _show("my orders", ", ".join(f"{o['id']} ({o['lines'][0]['name']})" for o in mine[:3]))
    if first["id"] not in {o["id"] for o in mine}:
        raise DemoFailed("the new order is missing from my orders")


# ---- mobile: app BFF, bearer tokens, compact answers ----------------------------------------------


def mobile_token(mobile: httpx.Client) -> dict[str, Any]:
    _step("mobile: token as bob")
    tokens: dict[str, Any] = _call(
        mobile, "POST", "/auth/token", 200, json={"username": "bob", "password": "bob-password"}
    ).json()
    _show("answer", f"access_token (JWT), refresh_token (opaque), expires_in={tokens['expires_in']}")
    return tokens


def mobile_feed(mobile: httpx.Client) -> None:
    _step("mobile: compact feed with cursor paging")
    feed = _call(mobile, "GET", "/m/products?limit=3", 200).json()
    for row in feed["items"]:
        _show(row["id"], f"{row['name']} | {row['price']} minor units | in stock {row['in_stock']}")
    _show("next_cursor", feed["next_cursor"])
    if feed["next_cursor"]:
        more = _call(mobile, "GET", "/m/products", 200, params={"cursor": feed["next_cursor"]}).json()
        _show("next page", ", ".join(row["id"] for row in more["items"]))


def bytes_ratio(web: httpx.Client, mobile: httpx.Client, count: int = 20) -> None:
    _step(f"bytes: the same {count} products, web listing vs mobile feed")
    web_page = _call(web, "GET", f"/api/products?size={count}", 200)
    mobile_page = _call(mobile, "GET", f"/m/products?limit={count}", 200)
    web_ids = [p["id"] for p in web_page.json()["items"]]
    if web_ids != [p["id"] for p in mobile_page.json()["items"]]:
        raise DemoFailed("web and mobile listed different products")
    ratio = len(mobile_page.content) / len(web_page.content)
    _show(
        f"{len(web_ids)} products",
        f"web {len(web_page.content)} bytes, mobile {len(mobile_page.content)} bytes, ratio {ratio:.0%}",
    )


def refresh_reuse(mobile: httpx.Client, tokens: dict[str, Any]) -> None:
    _step("mobile: refresh rotation, then reuse of the old refresh token")
    access, old = tokens["access_token"], {"refresh_token": tokens["refresh_token"]}
    _call(mobile, "GET", "/m/me", 200, headers=_auth(access))
    rotated = _call(mobile, "POST", "/auth/refresh", 200, json=old).json()
    _show("rotated", f"new pair; refresh token changed: {rotated['refresh_token'] != old['refresh_token']}")
    reuse = _call(mobile, "POST", "/auth/refresh", 401, json=old)
    _show("old refresh token again", f"{reuse.json().get('detail')} -> the whole session is revoked")
    # The gateway drops its cached introspection on the revocation event (pub/sub, milliseconds);
    # a few bounded retries cover the moment in between.
    for _ in range(10):
        if mobile.get("/m/me", headers=_auth(rotated["access_token"])).status_code == 401:
            break
        time.sleep(0.3)
    _call(mobile, "GET", "/m/me", 401, headers=_auth(rotated["access_token"]))
    _show("access token of that session", "refused (401)")


# ---- where to look --------------------------------------------------------------------------------


def open_next(urls: Urls, trace_id: str) -> None:
    _step("open next")
    _show("spans of the product page in Zipkin", _zipkin_spans(urls.zipkin, trace_id))
    print(f"  1. the storefront (log in as alice / alice-password):  {urls.web}/", flush=True)
    print(f"  2. the breaker wall (`uv run msa load` makes it move):  {urls.dashboard}/", flush=True)
    print(f"  3. the product page's trace, hop by hop:                {urls.zipkin}/zipkin/traces/{trace_id}")


def _zipkin_spans(zipkin: str, trace_id: str) -> str:
    """Informative only: spans are exported in batches, and Zipkin may not run (msa dev up without it)."""
    for _ in range(6):
        try:
            answer = httpx.get(f"{zipkin}/api/v2/trace/{trace_id}", timeout=TIMEOUT)
        except httpx.TransportError:
            return "Zipkin not reachable (msa dev up --zipkin starts it)"
        if answer.status_code == 200:
            services = sorted({s.get("localEndpoint", {}).get("serviceName", "?") for s in answer.json()})
            return f"{len(answer.json())} spans from {', '.join(services)}"
        time.sleep(1.0)
    return "not there yet (spans are exported in batches; try the link in a few seconds)"


def _fail(message: str) -> int:
    print(f"\nmsa demo: {message}", file=sys.stderr, flush=True)
    return 1


def run(urls: Urls) -> int:
    with (
        httpx.Client(base_url=urls.web, timeout=TIMEOUT) as web,
        httpx.Client(base_url=urls.mobile, timeout=TIMEOUT) as mobile,
    ):
        try:
            product_id = web_listing(web)
            trace_id = web_product_page(web, product_id)
            csrf = web_login(web)
            web_orders(web, csrf, product_id)
            tokens = mobile_token(mobile)
            mobile_feed(mobile)
            bytes_ratio(web, mobile)
            refresh_reuse(mobile, tokens)
            open_next(urls, trace_id)
        except DemoFailed as exc:
            return _fail(str(exc))
        except httpx.TransportError as exc:
            return _fail(f"a gateway stopped answering ({type(exc).__name__}); {START_HINT}")
        except (KeyError, TypeError, ValueError) as exc:
            return _fail(f"unexpected answer shape ({type(exc).__name__}: {exc})")
    print("\ndemo complete.", flush=True)
    return 0
