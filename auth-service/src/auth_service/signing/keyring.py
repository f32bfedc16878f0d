"""The RS256 signing keys: the active one signs, retired ones stay published until their tokens expire.

Where the active key comes from, first match wins: ``JWT_PRIVATE_KEY_PEM``, ``JWT_PRIVATE_KEY_FILE``,
the development key under ``DATA_DIR`` (generated on first start, refused in production). Which
keys were published, and since when retired, is kept in ``DATA_DIR/jwks-state.json``, so a key
swapped by the operator keeps verifying the tokens it signed for one access-token lifetime.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from auth_service.settings import Settings

__all__ = ["KeyRing", "PublishedKey", "SigningKey", "load_keyring", "rotate_dev_key"]

log = logging.getLogger(__name__)

DEV_KEY_FILE = "signing-key.pem"
STATE_FILE = "jwks-state.json"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey


@dataclass(frozen=True)
class PublishedKey:
    kid: str
    jwk: dict[str, Any]
    retired_at: float | None = None


class KeyRing:
    """The active signing key plus every public key still published in the JWKS."""

    def __init__(self, active: SigningKey, published: list[PublishedKey], *, keep_retired_s: float) -> None:
        self.active = active
        self._published = {key.kid: key for key in published}
        self._keep_retired_s = keep_retired_s
        self._public = {kid: RSAAlgorithm.from_jwk(key.jwk) for kid, key in self._published.items()}

    def published(self, now: float | None = None) -> list[PublishedKey]:
        now = time.time() if now is None else now
        return [
            key
            for key in self._published.values()
            if key.retired_at is None or now < key.retired_at + self._keep_retired_s
        ]

    def jwks(self, now: float | None = None) -> dict[str, Any]:
        return {"keys": [key.jwk for key in self.published(now)]}

    def public_key(self, kid: str, now: float | None = None) -> Any | None:
        """The verification key of ``kid`` while it is published, else None."""
        if not any(key.kid == kid for key in self.published(now)):
            return None
        return self._public.get(kid)


def thumbprint(public_key: rsa.RSAPublicKey) -> str:
    """RFC 7638 JWK thumbprint: a kid that is the same wherever the key is loaded."""
    jwk = RSAAlgorithm.to_jwk(public_key, as_dict=True)
    canonical = json.dumps(
        {"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}, separators=(",", ":"), sort_keys=True
    )
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def public_jwk(key: SigningKey) -> dict[str, Any]:
    jwk: dict[str, Any] = RSAAlgorithm.to_jwk(key.private_key.public_key(), as_dict=True)
    return {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": key.kid, "n": jwk["n"], "e": jwk["e"]}


def load_keyring(settings: Settings, *, now: float | None = None) -> KeyRing:
    """Build the ring at start-up (blocking file I/O, before the service answers)."""
    now = time.time() if now is None else now
    active = _signing_key(_active_pem(settings))
    return _publish(settings, active, now)


def rotate_dev_key(settings: Settings, *, now: float | None = None) -> KeyRing:
    """Replace the development key; the old one stays published for one token lifetime."""
    if settings.env == "production" or settings.jwt_private_key_pem or settings.jwt_private_key_file:
        raise RuntimeError("only the generated development key rotates here; rotate a provided key outside")
    now = time.time() if now is None else now
    pem = _generate_pem()
    _write_private(settings.data_dir / DEV_KEY_FILE, pem)
    return _publish(settings, _signing_key(pem), now)


def _publish(settings: Settings, active: SigningKey, now: float) -> KeyRing:
    keep = float(settings.access_token_ttl_s + settings.auth.leeway_s)
    state_path = settings.data_dir / STATE_FILE
    previous = _read_state(state_path)
    published: list[PublishedKey] = []
    for key in previous:
        if key.kid == active.kid:
            continue
        retired_at = key.retired_at if key.retired_at is not None else now
        if now < retired_at + keep:
            published.append(PublishedKey(key.kid, key.jwk, retired_at))
    published.insert(0, PublishedKey(active.kid, public_jwk(active), None))
    _write_state(state_path, published)
    retired = [key.kid for key in published if key.retired_at is not None]
    log.info("signing key %s active; %d retired key(s) still published", active.kid, len(retired))
    return KeyRing(active, published, keep_retired_s=keep)


def _active_pem(settings: Settings) -> bytes:
    if settings.jwt_private_key_pem is not None:
        return settings.jwt_private_key_pem.get_secret_value().encode()
    if settings.jwt_private_key_file is not None:
        return settings.jwt_private_key_file.read_bytes()
    path = settings.data_dir / DEV_KEY_FILE
    if path.exists():
        return path.read_bytes()
    if settings.env == "production":  # settings refuse this already; never generate in production
        raise RuntimeError("no signing key provided")
    log.warning("no signing key provided: generated a development key under %s", settings.data_dir)
    pem = _generate_pem()
    _write_private(path, pem)
    return pem


def _signing_key(pem: bytes) -> SigningKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 2048:
        raise ValueError("the signing key must be an RSA private key of at least 2048 bits")
    return SigningKey(kid=thumbprint(key.public_key()), private_key=key)


def _generate_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_private(path: Path, pem: bytes) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    os.replace(tmp, path)


def _read_state(path: Path) -> list[PublishedKey]:
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError):
        log.warning("ignoring unreadable %s", path)
        return []
    keys = []
    for entry in raw.get("keys", []):
        try:
            keys.append(PublishedKey(str(entry["kid"]), dict(entry["jwk"]), entry.get("retired_at")))
        except (KeyError, TypeError):
            continue
    return keys


def _write_state(path: Path, keys: list[PublishedKey]) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    body = {"keys": [{"kid": k.kid, "jwk": k.jwk, "retired_at": k.retired_at} for k in keys]}
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(body, indent=2))
    os.replace(tmp, path)
