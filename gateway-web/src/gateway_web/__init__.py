"""gateway-web: BFF for browsers: rich aggregated views."""
