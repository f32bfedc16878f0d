"""inventory: Stock per SKU, reservations idempotent by order id."""
