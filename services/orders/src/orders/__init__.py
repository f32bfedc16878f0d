"""orders: Orders, created idempotently, priced by catalog, reserved in inventory."""
