"""ops-dashboard: Live circuit-breaker dashboard and error-log alerts."""
