"""Demo order history (status delivered: their stock left the warehouse long ago, so inventory
holds no reservation for them)."""

from __future__ import annotations

__all__ = ["DEMO_ORDERS"]

# (order id, user, created_at, [(product_id, name, unit_price_cents, quantity)])
DEMO_ORDERS: list[tuple[str, str, str, list[tuple[str, str, int, int]]]] = [
    ("o-demo-0001", "alice", "2026-03-14T10:12:00+00:00",
     [("p-1001", "Trail Running Shoe", 12900, 1), ("p-1010", "Hiking Socks (3 pack)", 2900, 2)]),
    ("o-demo-0002", "alice", "2026-06-02T18:40:00+00:00", [("p-1026", "Headlamp 400", 4500, 1)]),
    ("o-demo-0003", "bob", "2026-05-21T08:05:00+00:00",
     [("p-1011", "Two-Person Tent", 34900, 1), ("p-1013", "Inflatable Sleeping Pad", 12900, 2)]),
]  # fmt: skip
