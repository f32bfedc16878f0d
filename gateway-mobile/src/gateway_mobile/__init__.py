"""gateway-mobile: BFF for mobile apps: compact payloads."""
