"""The signature nextslot puts on what it posts (event webhooks, the local checkout's payment webhook).

`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`: the timestamp is signed too, so an old request
cannot be replayed with a fresh time.
"""
from __future__ import annotations

import hashlib
import hmac


def signature(secret: str, timestamp: int, body: str) -> str:
    """The signature header's value for a body sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def refusal(secret: str, header: str, body: str, now: float, tolerance: float, name: str) -> str | None:
    """Why a request signed in header `name` with this value is refused, or None if the signature holds."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        stamp = int(parts.get("t", ""))
    except ValueError:
        return f"missing or malformed {name} header"
    if not hmac.compare_digest(signature(secret, stamp, body).encode(),
                               f"t={stamp},v1={parts.get('v1', '')}".encode()):
        return "signature does not match"
    if abs(now - stamp) > tolerance:
        return "signature timestamp is too old"
    return None
