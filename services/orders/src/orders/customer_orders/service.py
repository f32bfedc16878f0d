"""Placing an order: idempotent by key, priced by catalog, stock reserved in inventory.

The steps and what undoes them:
1. claim the Idempotency-Key in our store, naming a fresh order id (no stock held yet);
2. price the lines from catalog (failure: forget the claim);
3. reserve stock in inventory under the order id (failure: release, which is harmless if nothing
   was reserved, then forget the claim);
4. store the order and complete the claim in one transaction (failure: release, forget).
When an undo step fails too (inventory or our store down), the claim stays behind and
``recover_abandoned`` releases its reservation later. So there is never an order without a
reservation, and never a reservation without an order or a claim that will release it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import uuid
from typing import Any

from chassis import Downstream, deadline
from chassis.http import path_segment
from chassis.store import Database
from orders.customer_orders import repository
from orders.customer_orders.errors import (
    IdempotencyKeyReused,
    InventoryRefused,
    MixedCurrencies,
    OrderAbandoned,
    OrderNotFound,
    RequestInProgress,
    UnknownProducts,
)
from orders.customer_orders.schemas import OrderCreate, OrderPage, OrderPublic

__all__ = [
    "create_order",
    "get_order",
    "list_orders",
    "purge_expired_keys",
    "recover_abandoned",
    "release_reservation",
]

log = logging.getLogger(__name__)


def request_hash(order: OrderCreate) -> str:
    canonical = json.dumps(order.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def create_order(
    *,
    db: Database,
    catalog: Downstream,
    inventory: Downstream,
    user: str,
    key: str,
    order: OrderCreate,
    key_ttl_s: float = 86_400.0,
) -> tuple[OrderPublic, bool]:
    """The order and whether this call created it (False: a replay of the same key and body)."""
    fingerprint = request_hash(order)
    new_id = f"o-{uuid.uuid4().hex[:16]}"
    claim = await db.write(
        lambda conn: repository.claim_key(
            conn, user=user, key=key, request_hash=fingerprint, order_id=new_id, ttl_s=key_ttl_s
        )
    )
    if claim.state == "mismatch":
        raise IdempotencyKeyReused("This Idempotency-Key was used with a different request body.")
    if claim.state == "in_progress":
        raise RequestInProgress("A request with this Idempotency-Key is still being processed.")
    if claim.state == "done":
        return await get_order(db=db, user=user, order_id=claim.order_id), False

    order_id = claim.order_id
    try:
        lines, currency = await _price(catalog, order)
    except Exception:
        await _forget(db, order_id)
        raise
    try:
        await _reserve(inventory, order_id, order)
    except Exception:
        await _undo(db, inventory, order_id)
        raise
    try:
        row = await db.write(
            lambda conn: repository.insert_order(
                conn, order_id=order_id, user=user, currency=currency, lines=lines
            )
        )
    except Exception:
        await _undo(db, inventory, order_id)
        raise
    if row is None:  # abandoned while we waited; recovery releases its stock
        raise OrderAbandoned("The order took too long and was abandoned; retry.")
    log.info("order %s placed: %s line(s), %s %s", order_id, len(lines), row["total_cents"], currency)
    return OrderPublic(**row), True


async def _price(catalog: Downstream, order: OrderCreate) -> tuple[list[dict[str, Any]], str]:
    ids = [line.product_id for line in order.lines]
    found = await catalog.get_json("/products/batch", params=[("ids", pid) for pid in ids])
    products = {product["id"]: product for product in found["items"]}
    missing = [pid for pid in ids if pid not in products]
    if missing:
        raise UnknownProducts(
            f"Unknown products: {', '.join(missing)}.", extras={"unknown_products": missing}
        )
    currencies = {products[pid]["currency"] for pid in ids}
    if len(currencies) != 1:
        raise MixedCurrencies("Products priced in different currencies cannot share an order.")
    lines = [
        {
            "product_id": line.product_id,
            "name": products[line.product_id]["name"],
            "unit_price_cents": int(products[line.product_id]["price_cents"]),
            "quantity": line.quantity,
            "line_total_cents": int(products[line.product_id]["price_cents"]) * line.quantity,
        }
        for line in order.lines
    ]
    return lines, currencies.pop()


async def _reserve(inventory: Downstream, order_id: str, order: OrderCreate) -> None:
    body = {
        "order_id": order_id,
        "lines": [{"sku": line.product_id, "quantity": line.quantity} for line in order.lines],
    }
    response = await inventory.request("POST", "/reservations", json=body)
    if response.status_code in (200, 201):
        return
    problem = response.json() if response.headers.get("content-type", "").endswith("json") else {}
    extras = {name: problem[name] for name in ("insufficient", "unknown_skus") if name in problem}
    raise InventoryRefused(
        problem.get("detail") or "inventory refused the reservation",
        status=response.status_code, title=problem.get("title"), extras=extras,
    )  # fmt: skip


async def release_reservation(inventory: Downstream, order_id: str) -> None:
    response = await inventory.request("POST", f"/reservations/{path_segment(order_id)}/release")
    if response.status_code != 200:
        raise InventoryRefused(f"inventory answered {response.status_code} to a release")


async def _forget(db: Database, order_id: str) -> None:
    """Free the key of an attempt that holds no stock. If our store fails, recovery does it."""
    try:
        with deadline.suspended():  # a dropped request's cleanup runs however late it is
            await db.write(lambda conn: repository.drop_claim(conn, order_id))
    except Exception as exc:
        log.warning("order attempt %s left for recovery (%s)", order_id, type(exc).__name__)


async def _undo(db: Database, inventory: Downstream, order_id: str) -> None:
    """Release whatever the attempt may have reserved, then free its key; on failure the claim
    stays and ``recover_abandoned`` finishes the job."""
    try:
        with deadline.suspended():
            await release_reservation(inventory, order_id)
    except Exception as exc:
        log.warning(
            "reservation of %s not released yet, left for recovery (%s)", order_id, type(exc).__name__
        )
        return
    await _forget(db, order_id)


async def recover_abandoned(*, db: Database, inventory: Downstream, older_than_s: float) -> int:
    """Release the reservations of attempts that neither became orders nor cleaned up (crash,
    store or inventory failures during the undo). Returns how many were released."""
    released = 0
    for order_id in await db.read(lambda conn: repository.stale_claims(conn, older_than_s=older_than_s)):
        try:
            if not await db.write(functools.partial(repository.mark_releasing, order_id=order_id)):
                continue  # finished meanwhile
            await release_reservation(inventory, order_id)
            await db.write(functools.partial(repository.drop_claim, order_id=order_id, states=("releasing",)))
        except Exception as exc:
            log.warning("recovery of order attempt %s failed, will retry (%s)", order_id, type(exc).__name__)
            continue
        released += 1
        log.info("recovered abandoned order attempt %s: reservation released", order_id)
    return released


async def purge_expired_keys(*, db: Database, ttl_s: float) -> int:
    """Forget completed Idempotency-Keys older than ``ttl_s``; returns how many."""
    purged = await db.write(functools.partial(repository.purge_expired_keys, ttl_s=ttl_s))
    if purged:
        log.info("forgot %d expired idempotency key(s)", purged)
    return purged


async def get_order(*, db: Database, user: str, order_id: str) -> OrderPublic:
    row = await db.read(lambda conn: repository.fetch_order(conn, order_id, user=user))
    if row is None:  # someone else's order is as unknown as a missing one
        raise OrderNotFound(f"No order {order_id!r} for this user.")
    return OrderPublic(**row)


async def list_orders(*, db: Database, user: str, page: int, size: int) -> OrderPage:
    rows, total = await db.read(
        lambda conn: repository.page_for_user(conn, user, offset=(page - 1) * size, limit=size)
    )
    return OrderPage(items=[OrderPublic(**row) for row in rows], page=page, size=size, total=total)
