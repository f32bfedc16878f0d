"""Demo stock for the demo catalog's products (inventory keeps its own copy of the SKUs)."""

from __future__ import annotations

__all__ = ["DEMO_STOCK"]

# A few products are sold out or nearly so, so the views have something to show.
_SOLD_OUT = {"p-1012", "p-1027"}
_LOW = {"p-1006": 2, "p-1011": 3, "p-1018": 1}

DEMO_STOCK: dict[str, int] = {
    f"p-{n}": 0 if f"p-{n}" in _SOLD_OUT else _LOW.get(f"p-{n}", 20 + (n * 37) % 180)
    for n in range(1001, 1033)
}
