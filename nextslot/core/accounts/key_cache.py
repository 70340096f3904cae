"""This process's memory of live API keys, so a tool call or a /v1 request does not ask the database who holds
its key (a round trip and a worker thread: about 1 ms of a 10 ms call).

A key is remembered for `seconds` after the database last said it was live; a key revoked in the meantime (by
any process) is refused once that time is up, and at once when its `revoked_at` was already set (a revocation
scheduled ahead). Unknown and revoked keys are never remembered: each is asked about every time, so a key just
created works at once and a flood of made-up keys cannot fill the memory.
"""
from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime
from threading import Lock
from time import monotonic

from nextslot.core.accounts.api_keys import hash_key
from nextslot.core.accounts.key_holders import KeyHolder, LiveKey, live_key
from nextslot.storage.uow import SqlAlchemyUnitOfWork


class ApiKeyCache:
    """Live keys by hash, each with the moment the database last vouched for it; `seconds=0` remembers nothing."""

    def __init__(self, seconds: float, size: int = 1024):
        self.seconds, self.size = seconds, size
        self._keys: OrderedDict[str, tuple[float, LiveKey]] = OrderedDict()
        self._lock = Lock()

    def remembered(self, key: str) -> KeyHolder | None:
        """The key's holder if it was live a moment ago and is still; None means: ask the database (`look_up`)."""
        digest = hash_key(key)
        with self._lock:
            found = self._keys.get(digest)
            if found is None:
                return None
            checked_at, live = found
            if monotonic() - checked_at >= self.seconds or live.revoked_by(datetime.now(UTC)):
                del self._keys[digest]
                return None
            self._keys.move_to_end(digest)
            return live.holder

    def look_up(self, uow: SqlAlchemyUnitOfWork, key: str) -> KeyHolder | None:
        """Ask the database (one query), and remember the answer when the key is live."""
        checked_at = monotonic()
        live = live_key(uow, key)
        if live is None:
            return None
        if self.seconds > 0:
            with self._lock:
                self._keys[hash_key(key)] = (checked_at, live)
                self._keys.move_to_end(hash_key(key))
                while len(self._keys) > self.size:
                    self._keys.popitem(last=False)
        return live.holder

    def holder(self, uow: SqlAlchemyUnitOfWork, key: str) -> KeyHolder | None:
        """The holder of a live key, from memory or the database; None for an unknown or revoked one."""
        return self.remembered(key) or self.look_up(uow, key)
