"""Waking the scheduler at once: NOTIFY is delivered when the transaction commits (never for a rolled-back one),
the listener calls its wake-up for each, and concurrent wake-ups of one job never run it twice at once."""
from __future__ import annotations

import threading
import time

from nextslot.storage import wakeups
from nextslot.storage.engine import libpq_dsn


def wait_for(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_committed_notify_wakes_the_listener_and_a_rolled_back_one_does_not(session_factory, database_url):
    woke: list[float] = []
    stop = wakeups.start_listening(libpq_dsn(database_url), "nextslot_test_wakeups", lambda: woke.append(1))
    try:
        assert wait_for(lambda: len(woke) == 1)  # the catch-up call once listening
        with session_factory() as s:
            wakeups.notify(s, "nextslot_test_wakeups")
            s.rollback()
        with session_factory() as s:
            wakeups.notify(s, "nextslot_test_wakeups")
            time.sleep(0.3)
            assert len(woke) == 1  # not before the commit
            s.commit()
        assert wait_for(lambda: len(woke) == 2)
        time.sleep(0.5)
        assert len(woke) == 2  # the rolled-back one never came
    finally:
        stop.set()


def test_wake_ups_during_a_run_cost_one_more_run_and_runs_never_overlap():
    running, overlaps, runs = threading.Lock(), [], []
    release = threading.Event()

    def work() -> None:
        if not running.acquire(blocking=False):
            overlaps.append(1)
            return
        try:
            runs.append(1)
            if len(runs) == 1:
                release.wait(5)  # the first run is slow: wake-ups arrive meanwhile
        finally:
            running.release()

    job = wakeups.Coalesced(work)
    first = threading.Thread(target=job)
    first.start()
    assert wait_for(lambda: len(runs) == 1)
    others = [threading.Thread(target=job) for _ in range(5)]
    for t in others:
        t.start()
    for t in others:
        t.join(5)
    assert len(runs) == 1  # they returned at once: the run in progress will look again
    release.set()
    first.join(5)
    assert runs == [1, 1] and overlaps == []  # one more run for all five, none at the same time
