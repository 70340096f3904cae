"""How many of a process's units of work are at the database at once, shared fairly between tenants.

PostgreSQL gets the most done with about twice its cores' worth of busy connections. Beyond that, each one more
adds lock waits, process switching and, past the pool's size, connections opened and closed again. 50 clients
racing for one slot cost this project's 2-core machine 340 ms of CPU with up to 20 connections at work, and 215 ms
with 4. So a unit of work waits here for one of `size` places before it takes a connection, and costs nothing
while it waits.

The places are shared by party (`PARTY`, the tenant the request is for, set by the server's admission): one party
holds all but one of them at most, and a place that comes free goes to the waiting party that holds the fewest
(`nextslot.fair_share`). A burst of one tenant's bookings waiting on each other's row locks therefore never keeps
another tenant's unit of work from the database. Work with no party (the scheduler, the CLI) is one party.

A unit of work opened inside another on the same thread takes no place of its own: nesting cannot deadlock. One on
a thread running an event loop takes none either: waiting there would stop every request of the process.
"""
from __future__ import annotations

import asyncio
import threading
from contextvars import ContextVar

from sqlalchemy.exc import TimeoutError as PoolTimeout

from nextslot.fair_share import ThreadShare
from nextslot.telemetry import metrics

PARTY: ContextVar[str] = ContextVar("nextslot_database_party", default="")


class DatabaseGate(ThreadShare):
    """Fair places at the database (`busy` and `waiting` are this process's gauges), taken once per thread."""

    def __init__(self, size: int, timeout: float = 30.0):
        if size < 1:
            raise ValueError("a database gate needs at least one place")
        super().__init__(size, max(1, size - 1))
        self.size = size
        self._timeout = timeout  # as long as the pool waits for a free connection
        self._held = threading.local()  # this thread's nesting depth, and the party its place was taken for

    def enter(self) -> None:
        """Take a place, or share this thread's: raises the pool's TimeoutError (answered 503, send again) when
        none came free in time."""
        depth = getattr(self._held, "depth", 0)
        if depth == 0 and not on_event_loop():
            party = PARTY.get()
            if not self.take(party, self._timeout, metrics.DATABASE_WAITS.observe):
                raise PoolTimeout(f"no database place came free within {self._timeout:g} s "
                                  f"({self.size} units of work at the database)")
            self._held.party = party
        self._held.depth = depth + 1

    def leave(self) -> None:
        self._held.depth -= 1
        if self._held.depth == 0 and not on_event_loop():
            self.give_back(self._held.party)


def on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
