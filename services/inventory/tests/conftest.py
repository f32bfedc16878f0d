"""inventory tests: the real app in-process, a real SQLite file in tmp_path, real Redis."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from jwt.algorithms import RSAAlgorithm

from chassis.auth import AuthSettings, JwtVerifier
from inventory.main import create
from inventory.settings import Settings


class TokenIssuer:
    """Signs RS256 access tokens the way auth-service does, and serves them to an app's verifier
    as its JWKS (the test stands in for auth-service; the chassis verification code is the real one)."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        self.jwks = {"keys": [{**jwk, "kid": "test-key", "use": "sig", "alg": "RS256"}]}
        self.settings = AuthSettings()

    def token(self, sub: str, scope: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self.settings.issuer, "aud": self.settings.audience, "sub": sub, "scope": scope,
            "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex, "client_id": "web",
        }  # fmt: skip
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "test-key"})

    def headers(self, sub: str, scope: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(sub, scope)}"}

    def install(self, app: FastAPI) -> None:
        async def fetch() -> dict[str, Any]:
            return self.jwks

        app.state.jwt_verifier = JwtVerifier(fetch_jwks=fetch, settings=self.settings)


@pytest.fixture(scope="session")
def issuer() -> TokenIssuer:
    return TokenIssuer()


@pytest.fixture
def inventory_app(tmp_path: Path, redis_url: str, issuer: TokenIssuer) -> FastAPI:
    settings = Settings(
        data_dir=tmp_path / "inventory", redis_url=redis_url, zipkin_endpoint=None, env="test"
    )
    app = create(settings)
    issuer.install(app)
    return app


@pytest.fixture
async def inventory(inventory_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with inventory_app.router.lifespan_context(inventory_app):
        transport = httpx.ASGITransport(app=inventory_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://inventory") as client:
            yield client
