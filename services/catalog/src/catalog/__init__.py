"""catalog: The product catalog."""
