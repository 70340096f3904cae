"""Encryption at rest for calendar credentials (OAuth tokens, push channel secrets' twins, connect flows).

The key is derived from the server's secret key (`NEXTSLOT_SECRET_KEY`) with HKDF-SHA256 and a purpose label,
so it is never the secret itself and never the key that signs links; Fernet (AES-128-CBC + HMAC-SHA256, with a
timestamp) does the encryption. A value that does not decrypt (another key, tampered) raises `Undecryptable`:
its grant needs reconnecting, as if the provider had refused it.
"""
from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

TOKENS = b"nextslot calendar tokens v1"
CONNECT = b"nextslot calendar connect flow v1"


class Undecryptable(Exception):
    """The stored value was encrypted with another key, or changed."""


def derived_key(secret_key: str, purpose: bytes) -> bytes:
    """A Fernet key for one purpose, derived from the server's secret."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret_key.encode())
    return base64.urlsafe_b64encode(raw)


class TokenBox:
    """Encrypts and decrypts text with a key derived from the secret key for one purpose."""

    def __init__(self, secret_key: str, purpose: bytes = TOKENS):
        self._fernet = Fernet(derived_key(secret_key, purpose))

    def seal(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode()

    def open(self, sealed: str, max_age_seconds: int | None = None) -> str:
        try:
            return self._fernet.decrypt(sealed.encode(), ttl=max_age_seconds).decode()
        except InvalidToken as error:
            raise Undecryptable("the stored value does not decrypt with this server's key") from error


SEALED = "enc:v1:"  # a stored secret that starts so is encrypted; older rows may hold one in the clear


def seal_secret(box: TokenBox, plain: str) -> str:
    return SEALED + box.seal(plain)


def open_secret(box: TokenBox | None, stored: str) -> str:
    """A stored secret in the clear: opened if sealed (raises Undecryptable without the right box)."""
    if not stored.startswith(SEALED):
        return stored
    if box is None:
        raise Undecryptable("this process has no key to open the stored secret with")
    return box.open(stored[len(SEALED):])


def secret_hash(secret: str) -> str:
    """What is kept of a push channel's secret: enough to check one, useless to forge one."""
    return hashlib.sha256(secret.encode()).hexdigest()
