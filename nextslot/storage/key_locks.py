"""The advisory lock named after an idempotency key: its taker holds it until its transaction ends (storage/
idempotency.py), and a booking that found its time taken asks in its check's read whether anyone does
(storage/queries.py, `calendar_for`), so it can be refused without taking the key."""
from __future__ import annotations

import hashlib

KEY_LOCKS = 0x1DE0  # the advisory locks' first number: a key's holder, for as long as its transaction runs


def key_lock(business_id: int, key: str) -> dict[str, int]:
    """The advisory lock a key's taker holds (a hash: two keys sharing one only make a request take the slow path)."""
    digest = hashlib.blake2b(f"{business_id}:{key}".encode(), digest_size=4).digest()
    return {"locks": KEY_LOCKS, "lock": int.from_bytes(digest, "big", signed=True)}
