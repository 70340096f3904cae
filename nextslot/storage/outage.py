"""Which errors mean the database was out of reach for a moment (a dropped connection, a restart, a failover, every
connection busy past the wait), so the request itself is fine and may be sent again: with its idempotency key, a
retry never writes twice."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import psycopg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

log = logging.getLogger(__name__)
T = TypeVar("T")


def database_unreachable(error: BaseException) -> bool:
    """True for a lost or refused connection and the server's own operational trouble; False for a bug or bad
    data, which a retry would only repeat."""
    if isinstance(error, PoolTimeout):  # every connection (or place at the gate) stayed busy: nothing was done
        return True
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated:  # SQLAlchemy saw the connection closed or broken under the statement
        return True
    cause = error.orig
    if not isinstance(cause, (psycopg.OperationalError, psycopg.InterfaceError)):
        return False
    # not every OperationalError is an outage: psycopg also raises it for a statement it cannot send (more
    # than 65535 parameters, from a huge input), which a retry would only repeat
    if cause.sqlstate:
        return cause.sqlstate.startswith("08") or cause.sqlstate in SERVER_GOING_AWAY | TOO_BUSY
    return cause.pgconn is not None and cause.pgconn.status != psycopg.pq.ConnStatus.OK  # a refused connect


def connection_lost(error: BaseException) -> bool:
    """`database_unreachable`, but not a statement the database only turned down for now: inside a savepoint that
    is one row's trouble, and the transaction goes on with the next."""
    cause = getattr(error, "orig", None)
    return database_unreachable(error) and getattr(cause, "sqlstate", None) not in TOO_BUSY


# admin shutdown, crash shutdown, starting up or shutting down, too many connections
SERVER_GOING_AWAY = frozenset({"57P01", "57P02", "57P03", "53300"})
# too busy for now: a lock or a statement past its timeout (a deployment's lock_timeout, statement_timeout), a
# deadlock or a serialization failure the database broke. Nothing was done, and the same request may come again.
TOO_BUSY = frozenset({"55P03", "57014", "40P01", "40001"})


def on_fresh_connection(write: Callable[[], T], tries: int = 9) -> T:
    """Run a short transaction, again if the database connection dropped under it (the pool's check at
    checkout, `engine.closed_while_pooled`, gives the next try a new connection): 0.2, 0.4, 0.8 s apart and so on,
    for 51 s in all (a failover's time, within the 2-minute lease of the work recorded), then the error stands. For
    writes that must not be lost and are safe to repeat: a message a provider took, recorded too late, would be
    sent again once its lease ran out."""
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
