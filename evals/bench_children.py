"""Concurrent bookers: forked processes, each with its own engine and connection, released together.

Each child warms up (connection, compiled statements), reports ready, then sleeps until one
release instant on the shared clock, books, and reports its outcomes as plain data.
"""
from __future__ import annotations

import gc
import multiprocessing
import queue
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from time import perf_counter, process_time, sleep
from typing import Any

import psycopg

from evals.bench_bare import BareBooking, book_bare
from evals.bench_figures import BenchFailure
from nextslot.core.results import Booked
from nextslot.core.service import BookingService
from nextslot.schemas.commands import BookingCreate
from nextslot.storage.engine import build_session_factory, engine_for, libpq_dsn

READY_TIMEOUT = 180  # seconds for every child to connect and warm up, or to finish
RELEASE_AHEAD = 0.25  # seconds from the last child being ready to the release: all are asleep by then

Task = BookingCreate | BareBooking  # a booking through the core, or the same in bare SQL
Workload = tuple[list[Task], list[Task]]  # (warm-up, timed)


@dataclass(frozen=True)
class ChildReport:
    started: float  # perf_counter is system-wide on Linux: comparable across processes
    finished: float
    outcomes: list[tuple[str, float]]  # result type and seconds, per timed booking
    cpu: float  # seconds of this process's CPU over the timed bookings (its database backend's not included)


@dataclass(frozen=True)
class Release:
    """When the children go: one instant on the shared clock, set once every child is ready.

    A barrier hands its lock from waiter to waiter, so with 100 processes on a few cores the last
    ones wake long after the first have started; a start instant a little ahead lets every child
    sleep until the same moment instead.
    """

    instant: float
    children: list[ChildReport]

    @property
    def wall(self) -> float:
        """From the release until the last child had its last answer."""
        return max(c.finished for c in self.children) - self.instant

    @property
    def late(self) -> float:
        """How long after the release the last child actually started."""
        return max(c.started for c in self.children) - self.instant


def booker(url: str, business_id: int, go: Any, messages: Any, index: int, work: Workload) -> None:
    """A child process: its own engine and connection; warm up, report ready, book at the release."""
    engine = None
    conn = None
    try:
        engine = engine_for(url, pool_size=1)
        svc = BookingService(build_session_factory(engine))
        warm_up, timed = work
        if any(isinstance(task, BareBooking) for task in warm_up + timed):
            conn = psycopg.connect(libpq_dsn(url), autocommit=True, options="-c timezone=UTC")

        def book(task: Task) -> object:
            if isinstance(task, BareBooking):
                assert conn is not None
                book_bare(conn, task)
                return Booked  # bare_book raises when the slot was taken
            return svc.book(business_id, task)

        for task in warm_up:  # compiled statements and the connection are ready before the race
            if not isinstance(result := book(task), Booked) and result is not Booked:
                raise BenchFailure(f"warm-up booking answered {result}")
        messages.put(("ready", index, None))
        instant = wait_for_release(go)
        if instant is None:
            return
        sleep(max(0.0, instant - perf_counter()))
        started, cpu = perf_counter(), process_time()
        outcomes = []
        for task in timed:
            t0 = perf_counter()
            result = book(task)
            outcomes.append(("Booked" if result is Booked else type(result).__name__, perf_counter() - t0))
        messages.put(("done", index, ChildReport(started, perf_counter(), outcomes, process_time() - cpu)))
    except BaseException:
        messages.put(("error", index, traceback.format_exc()))
    finally:
        if conn is not None:
            conn.close()
        if engine is not None:
            engine.dispose()


def wait_for_release(go: Any) -> float | None:
    """The release instant, or None when the parent called the run off."""
    deadline = perf_counter() + READY_TIMEOUT
    while (instant := go.value) == 0.0:
        if perf_counter() > deadline:
            raise TimeoutError("no release from the parent")
        sleep(0.005)
    return instant if instant > 0 else None


def run_children(url: str, business_id: int, work: Sequence[Workload]) -> Release:
    """Fork one child per workload; once all are warm, release them at one instant."""
    ctx = multiprocessing.get_context("fork")
    go, messages = ctx.Value("d", 0.0, lock=False), ctx.Queue()
    processes = [ctx.Process(target=booker, args=(url, business_id, go, messages, i, w), daemon=True)
                 for i, w in enumerate(work)]
    # what the parent built stays out of the children's garbage collections: no full passes over
    # it and no copy-on-write of its pages (as the gc module docs advise before forking)
    gc.freeze()
    try:
        for p in processes:
            p.start()
    finally:
        gc.unfreeze()
    reports: dict[int, ChildReport] = {}
    try:
        for _ in processes:
            next_message(messages, "before the release")
        go.value = instant = perf_counter() + RELEASE_AHEAD
        while len(reports) < len(processes):
            index, report = next_message(messages, "after the release")
            reports[index] = report
    finally:
        if go.value == 0.0:
            go.value = -1.0  # call the run off: waiting children leave without booking
        for p in processes:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
    return Release(instant, [reports[i] for i in range(len(processes))])


def next_message(messages: Any, when: str) -> tuple[int, Any]:
    try:
        kind, index, payload = messages.get(timeout=READY_TIMEOUT)
    except queue.Empty:
        raise BenchFailure(f"a child process went silent {when} (no word in {READY_TIMEOUT} s)") from None
    if kind == "error":
        raise BenchFailure(f"child {index} failed {when}:\n{payload}")
    return index, payload


def free_connections(dsn: str) -> int:
    """Connections the server can still accept from us (this one included, as it closes first)."""
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "select current_setting('max_connections')::int - count(*) + 1"
            " - case when (select rolsuper from pg_roles where rolname = current_user) then 0"
            " else current_setting('superuser_reserved_connections')::int end"
            " from pg_stat_activity where backend_type = 'client backend'"
        ).fetchone()[0]


