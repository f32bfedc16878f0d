"""auth-service: Users, login, RS256 JWT + JWKS, refresh-token sessions, introspection."""
