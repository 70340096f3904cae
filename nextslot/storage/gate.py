"""How many of a process's units of work are at the database at once.

PostgreSQL gets the most done with about twice its cores' worth of busy connections. Beyond that, each one more
adds lock waits, process switching and, past the pool's size, connections opened and closed again. 50 clients
racing for one slot cost this project's 2-core machine 340 ms of CPU with up to 20 connections at work, and 215 ms
with 4. So a unit of work waits here for one of `size` places before it takes a connection. The others wait in
line, in the order they came, and cost nothing while they wait.

A unit of work opened inside another on the same thread takes no place of its own: nesting cannot deadlock. One on
a thread running an event loop takes none either: waiting there would stop every request of the process.
"""
from __future__ import annotations

import asyncio
import threading
from time import perf_counter

from sqlalchemy.exc import TimeoutError as PoolTimeout

from nextslot.telemetry import metrics


class DatabaseGate:
    def __init__(self, size: int, timeout: float = 30.0):
        if size < 1:
            raise ValueError("a database gate needs at least one place")
        self.size = size
        self._places = threading.BoundedSemaphore(size)
        self._timeout = timeout  # as long as the pool waits for a free connection
        self._depth = threading.local()
        self._counts = threading.Lock()
        self.busy = 0  # places taken, and units of work waiting for one: this process's gauges
        self.waiting = 0

    def enter(self) -> None:
        """Take a place, or share this thread's: raises the pool's TimeoutError (answered 503, send again) when
        none came free in time."""
        depth = getattr(self._depth, "n", 0)
        if depth == 0 and not on_event_loop():
            if not self._places.acquire(blocking=False):
                self._wait()
            with self._counts:
                self.busy += 1
        self._depth.n = depth + 1

    def _wait(self) -> None:
        with self._counts:
            self.waiting += 1
        started = perf_counter()
        try:
            if not self._places.acquire(timeout=self._timeout):
                raise PoolTimeout(f"no database place came free within {self._timeout:g} s "
                                  f"({self.size} units of work at the database)")
        finally:
            metrics.DATABASE_WAITS.observe(perf_counter() - started)
            with self._counts:
                self.waiting -= 1

    def leave(self) -> None:
        self._depth.n -= 1
        if self._depth.n == 0 and not on_event_loop():
            with self._counts:
                self.busy -= 1
            self._places.release()


def on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
