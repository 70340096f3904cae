"""Places shared fairly between parties (a process's tenants), so one tenant's burst cannot shut out another.

Two rules. A party holds at most `most` of the `size` places, so with `most < size` another party's work always
finds one. And a place that comes free goes to the waiting party that holds the fewest, then to whichever of its
waiters came first: a tenant with one request in line goes before a tenant with a hundred, after at most one place
comes free. When only one party is busy, it gets its `most` places in arrival order, as a plain queue would.

`FairShare` is bookkeeping only, not thread-safe: the request admission (the event loop) wraps it in its own lock
and way of waiting; `ThreadShare` does so for threads (the database gate, slot searches).
"""
from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count


@dataclass(eq=False)
class Waiter:
    party: str
    seq: int
    wake: Callable[[], None]  # called once, with the place already taken for it
    granted: bool = field(default=False)


class FairShare:
    def __init__(self, size: int, most: int):
        if size < 1 or not 1 <= most <= size:
            raise ValueError(f"{size} places with at most {most} for one party cannot be shared")
        self.size, self.most, self.free = size, most, size
        self.held: Counter[str] = Counter()
        self._lines: dict[str, deque[Waiter]] = {}  # each waiting party's waiters, in arrival order
        self._seq = count()
        self.waiting = 0

    @property
    def busy(self) -> int:
        return self.size - self.free

    def take(self, party: str) -> bool:
        """A place now, if one is free and the party holds fewer than its most. No waiter is passed over: one only
        waits while nothing is free or its own party holds its most."""
        if self.free and self.held[party] < self.most:
            self._grant(party)
            return True
        return False

    def join(self, party: str, wake: Callable[[], None]) -> Waiter:
        waiter = Waiter(party, next(self._seq), wake)
        self._lines.setdefault(party, deque()).append(waiter)
        self.waiting += 1
        return waiter

    def leave_line(self, waiter: Waiter) -> None:
        """A waiter that gave up (a timeout, a client gone). One already granted holds its place: `give_back`."""
        if waiter.granted:
            return
        line = self._lines[waiter.party]
        line.remove(waiter)
        self.waiting -= 1
        if not line:
            del self._lines[waiter.party]

    def give_back(self, party: str) -> None:
        self.held[party] -= 1
        if self.held[party] <= 0:
            del self.held[party]
        self.free += 1
        while self.free and (waiter := self._next()) is not None:
            waiter.granted = True
            self._grant(waiter.party)
            waiter.wake()

    def _next(self) -> Waiter | None:
        """The first waiter of the waiting party holding the fewest places (below its most); None when none may."""
        ready = [line for party, line in self._lines.items() if self.held[party] < self.most]
        if not ready:
            return None
        line = min(ready, key=lambda line: (self.held[line[0].party], line[0].seq))
        waiter = line.popleft()
        self.waiting -= 1
        if not line:
            del self._lines[waiter.party]
        return waiter

    def _grant(self, party: str) -> None:
        self.free -= 1
        self.held[party] += 1


class ThreadShare:
    """A FairShare for threads: `take` blocks until the party has a place, or gives up after `timeout`."""

    def __init__(self, size: int, most: int):
        self._share = FairShare(size, most)
        self._lock = threading.Lock()

    @property
    def busy(self) -> int:
        return self._share.busy

    @property
    def waiting(self) -> int:
        return self._share.waiting

    @property
    def most(self) -> int:
        return self._share.most

    def take(self, party: str, timeout: float, waited: Callable[[float], None] | None = None) -> bool:
        """A place for the party; False if none came within `timeout`. `waited(seconds)` hears any wait."""
        with self._lock:  # a place, or a place in line: at once, so no place can come free in between
            if self._share.take(party):
                return True
            came = threading.Event()
            waiter = self._share.join(party, came.set)
        started = time.perf_counter()
        try:
            came.wait(timeout)
        finally:
            if waited is not None:
                waited(time.perf_counter() - started)
            with self._lock:
                granted = waiter.granted
                self._share.leave_line(waiter)
        return granted

    def give_back(self, party: str) -> None:
        with self._lock:
            self._share.give_back(party)
