"""Waking the scheduler processes the moment work arrives (PostgreSQL LISTEN/NOTIFY), so a customer's message is
answered without waiting for the next poll. The poll stays as the fallback: a notification missed while a listener
reconnects costs one poll interval, never the message (the rows are the truth; a wake-up only says "look now")."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy import text
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)
CONVERSATIONS = "nextslot_conversations"  # a message waits to be answered


def notify(session: Session, channel: str) -> None:
    """Wake the listeners when the session's transaction commits (PostgreSQL delivers NOTIFY on commit only)."""
    session.execute(text("select pg_notify(:channel, '')"), {"channel": channel})


class Coalesced:
    """Run `work` now, or, if it is running already, once more right after it: wake-ups that arrive together
    cost one run, and none that comes during a run is lost."""

    def __init__(self, work: Callable[[], object]):
        self._work = work
        self._running = threading.Lock()
        self._again = threading.Event()

    def __call__(self) -> None:
        self._again.set()
        while self._again.is_set():
            if not self._running.acquire(blocking=False):
                return  # the run in progress looks again when it ends
            try:
                self._again.clear()
                self._work()
            finally:
                self._running.release()


def listen(dsn: str, channel: str, wake: Callable[[], object], stop: threading.Event, retry: float = 1.0) -> None:
    """Call `wake` on every notification on `channel` until `stop` is set; reconnect after a lost connection."""
    while not stop.is_set():
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f"LISTEN {channel}")  # our own constant, not input
                wake()  # anything that came while no one listened
                while not stop.is_set():
                    for _ in conn.notifies(timeout=1.0, stop_after=1):
                        wake()
        except psycopg.Error as error:
            log.warning("listening for %s failed (%s); polling until it is back", channel, type(error).__name__)
            stop.wait(retry)
        except Exception:  # noqa: BLE001 - a failing wake-up must not end the listener; the poll covers it
            log.exception("a wake-up on %s failed", channel)
            stop.wait(retry)


def start_listening(dsn: str, channel: str, wake: Callable[[], object]) -> threading.Event:
    """Listen in a daemon thread; set the returned event to stop it."""
    stop = threading.Event()
    threading.Thread(target=listen, args=(dsn, channel, wake, stop), name=f"listen-{channel}", daemon=True).start()
    return stop
