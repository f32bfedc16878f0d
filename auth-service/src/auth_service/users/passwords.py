"""scrypt password hashes (stdlib ``hashlib.scrypt``): ``scrypt$N$r$p$salt$hash``, base64url parts.

Print a hash for the ``USERS`` setting: ``python -m auth_service.users.passwords``.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import hmac
import os

__all__ = ["hash_password", "verify_password"]

# ~30-60 ms and 16 MiB per check on a laptop core: slow for guessing, fine for a login.
N, R, P, DKLEN = 2**14, 8, 1, 32
_MAXMEM = 64 * 1024 * 1024


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, dklen=DKLEN, maxmem=_MAXMEM)
    return f"scrypt${N}${R}${P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """Constant-time comparison; a malformed hash never matches."""
    try:
        scheme, n, r, p, salt, expected = encoded.split("$")
        if scheme != "scrypt":
            return False
        want = _unb64(expected)
        digest = hashlib.scrypt(
            password.encode(),
            salt=_unb64(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(want),
            maxmem=_MAXMEM,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, want)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# Checked against when the user does not exist, so both cases cost the same time.
DUMMY_HASH = hash_password("not a password", salt=b"\0" * 16)

if __name__ == "__main__":  # pragma: no cover - a helper for operators
    print(hash_password(getpass.getpass("password: ")))  # noqa: T201
