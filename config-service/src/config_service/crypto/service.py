"""The ``{cipher}`` scheme: AES-256-GCM, hex encoded (Spring's values are hex too).

``HEX( 0x01 | nonce[12] | ciphertext | tag[16] )`` with the key derived once from ``ENCRYPT_KEY``
by PBKDF2-HMAC-SHA256 (fixed salt, 200 000 rounds) and ``b"msa-config"`` as associated data.
GCM authenticates: a wrong key or an altered value fails instead of giving garbage.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from chassis.settings import DEV_DEFAULT_MARK

__all__ = ["CIPHER_PREFIX", "Cipher", "CipherError"]

CIPHER_PREFIX = "{cipher}"
_VERSION = b"\x01"
_SALT = b"msa-platform/config-service/v1"
_AAD = b"msa-config"
_ROUNDS = 200_000


class CipherError(ValueError):
    """A value that cannot be decrypted with this key (never carries the value)."""


class Cipher:
    def __init__(self, key: str) -> None:
        if not key:
            raise ValueError("ENCRYPT_KEY is empty")
        kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=_SALT, iterations=_ROUNDS)
        self._aead = AESGCM(kdf.derive(key.encode()))
        self.dev_key = DEV_DEFAULT_MARK in key

    def encrypt(self, plaintext: str) -> str:
        nonce = os.urandom(12)
        return (_VERSION + nonce + self._aead.encrypt(nonce, plaintext.encode(), _AAD)).hex()

    def decrypt(self, text: str) -> str:
        text = text.strip().removeprefix(CIPHER_PREFIX)
        try:
            raw = bytes.fromhex(text)
        except ValueError as exc:
            raise CipherError("not hex") from exc
        if len(raw) < 1 + 12 + 16 or raw[:1] != _VERSION:
            raise CipherError("not a value of this scheme")
        try:
            plain = self._aead.decrypt(raw[1:13], raw[13:], _AAD)
        except InvalidTag as exc:
            raise CipherError("wrong key or altered value") from exc
        try:
            return plain.decode()
        except UnicodeDecodeError as exc:
            raise CipherError("not UTF-8") from exc
