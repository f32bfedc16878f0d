"""reviews tests: the real app in-process, a real SQLite file in tmp_path, real Redis."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from jwt.algorithms import RSAAlgorithm

from chassis.auth import AuthSettings, JwtVerifier
from reviews.main import create
from reviews.settings import Settings


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
def reviews_data_dir(tmp_path: Path) -> Path:
    return tmp_path / "reviews"


@pytest.fixture
def reviews_app(reviews_data_dir: Path, redis_url: str, issuer: TokenIssuer) -> FastAPI:
    app = create(Settings(data_dir=reviews_data_dir, redis_url=redis_url, zipkin_endpoint=None, env="test"))
    issuer.install(app)
    return app


@pytest.fixture
async def reviews(reviews_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with reviews_app.router.lifespan_context(reviews_app):
        transport = httpx.ASGITransport(app=reviews_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://reviews") as client:
            yield client


@pytest.fixture
def user_headers(issuer: TokenIssuer) -> Callable[[str], dict[str, str]]:
    def make(sub: str) -> dict[str, str]:
        return issuer.headers(sub, "reviews:read reviews:write orders:write")

    return make
