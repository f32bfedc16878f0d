"""config-service: Git-backed configuration server with a Spring Cloud Config-compatible API."""
