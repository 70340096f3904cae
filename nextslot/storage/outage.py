"""Which errors mean the database was out of reach for a moment (a dropped connection, a restart, a failover),
so the request itself is fine and may be sent again: with its idempotency key, a retry never writes twice."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import psycopg
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)
T = TypeVar("T")


def database_unreachable(error: BaseException) -> bool:
    """True for a lost or refused connection and the server's own operational trouble; False for a bug or bad
    data, which a retry would only repeat."""
    if not isinstance(error, DBAPIError):
        return False
    # psycopg's OperationalError covers what is "not under the control of the programmer": disconnects,
    # an administrator's shutdown, a refused connection
    return error.connection_invalidated or isinstance(error.orig, (psycopg.OperationalError, psycopg.InterfaceError))


def on_fresh_connection(write: Callable[[], T], tries: int = 5) -> T:
    """Run a short transaction, again if the database connection dropped under it (the pool's pre-ping gives
    the next try a new connection): 0.2, 0.4, 0.8 and 1.6 s apart, then the error stands. For writes that must
    not be lost and are safe to repeat."""
    for attempt in range(tries - 1):
        try:
            return write()
        except Exception as exc:
            if not database_unreachable(exc):
                raise
            log.warning("the database connection dropped (%s); trying again",
                        type(getattr(exc, "orig", exc)).__name__)
            time.sleep(0.2 * 2 ** attempt)
    return write()
