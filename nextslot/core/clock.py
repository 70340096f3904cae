"""The one clock: every instant is tz-aware UTC; tests pass their own clock where a `Clock` is taken."""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)
