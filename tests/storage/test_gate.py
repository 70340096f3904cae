"""The database gate: no more of a process's units of work at the database at once than it has places, a nested
one shares its thread's place, and a place always comes back, whatever ends the block; a wait too long is the
pool's timeout, which every channel answers as "busy, send it again"."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from nextslot.settings import Settings
from nextslot.storage.engine import build_session_factory, engine_for
from nextslot.storage.gate import PARTY, DatabaseGate
from nextslot.storage.outage import database_unreachable
from nextslot.storage.uow import SqlAlchemyUnitOfWork

pytestmark = pytest.mark.storage


def test_one_party_has_all_places_but_one_at_the_database_at_once(session_factory):
    gate = DatabaseGate(3)
    lock, inside, most, backends = threading.Lock(), [0], [0], set()

    def work() -> None:
        with SqlAlchemyUnitOfWork(session_factory, gate=gate) as uow:
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            backends.add(uow.session.execute(text("select pg_backend_pid() from pg_sleep(0.05)")).scalar())
            with lock:
                inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert most[0] == 2 and inside[0] == 0
    assert 1 <= len(backends) <= 8  # every one of the eight ran its statement
    with SqlAlchemyUnitOfWork(session_factory, gate=DatabaseGate(2, timeout=0.1)):
        pass  # nothing waits on an idle gate


def test_a_unit_of_work_inside_another_shares_its_place(session_factory):
    gate = DatabaseGate(1, timeout=0.5)
    with SqlAlchemyUnitOfWork(session_factory, gate=gate) as outer:
        with SqlAlchemyUnitOfWork(session_factory, statements_alone=True, gate=gate) as inner:
            assert inner.session.execute(text("select 1")).scalar() == 1
        assert outer.session.execute(text("select 2")).scalar() == 2
    held = threading.Event()
    done = threading.Event()

    def hold() -> None:
        with SqlAlchemyUnitOfWork(session_factory, gate=gate):
            held.set()
            done.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(5)
    try:  # the place came back after the nested blocks: another thread holds it now, so this one waits
        with pytest.raises(PoolTimeout) as waited:
            with SqlAlchemyUnitOfWork(session_factory, gate=gate):
                pass
        assert database_unreachable(waited.value)  # answered 503 / temporarily_unavailable: send it again
    finally:
        done.set()
        holder.join(5)
    with SqlAlchemyUnitOfWork(session_factory, gate=gate):
        pass


def test_a_place_comes_back_after_an_error_inside_the_block_or_at_its_start(session_factory):
    gate = DatabaseGate(1, timeout=0.2)
    with pytest.raises(ZeroDivisionError):
        with SqlAlchemyUnitOfWork(session_factory, gate=gate):
            _ = 1 / 0
    with pytest.raises(ProgrammingError):
        with SqlAlchemyUnitOfWork(session_factory, gate=gate) as uow:
            uow.session.execute(text("select * from no_such_table"))
    unreachable = engine_for("postgresql+psycopg://postgres@127.0.0.1:1/nowhere", pool_size=1)
    try:
        with pytest.raises(OperationalError):  # a replica's unit of work connects as it opens: refused here
            with SqlAlchemyUnitOfWork(build_session_factory(unreachable), statements_alone=True, gate=gate):
                pass
    finally:
        unreachable.dispose()
    # every earlier block gave its place back: with the gate's one place lost, this would raise PoolTimeout
    with SqlAlchemyUnitOfWork(session_factory, gate=gate) as uow:
        assert uow.session.execute(text("select 1")).scalar() == 1


def test_another_party_finds_a_place_while_one_party_holds_its_most_and_goes_before_its_line(session_factory):
    """A tenant's units of work stuck at the database (here on a row lock) never keep another tenant's out: one
    place is kept, and the next free place goes to the party holding the fewest, before the busy party's line."""
    gate = DatabaseGate(4, timeout=10)
    order: list[str] = []
    locked = SqlAlchemyUnitOfWork(session_factory)
    with locked:
        locked.session.execute(text("select pg_advisory_xact_lock(4711)"))  # what the busy party's work waits on
        stuck = [party_thread(session_factory, gate, "busy", lambda s: s.execute(text("select pg_advisory_xact_lock(4711)")), order)
                 for _ in range(5)]  # 3 at the database (its most), 2 in line
        wait_until(lambda: gate.busy == 3 and gate.waiting == 2)
        other = party_thread(session_factory, gate, "other", lambda s: s.execute(text("select 1")), order)  # the kept place
        other.join(5)
        assert order == ["other"]
        hogs = [party_thread(session_factory, gate, "other", lambda s: s.execute(text("select pg_sleep(0.3)")), order)]
        wait_until(lambda: gate.busy == 4)
        late = party_thread(session_factory, gate, "other", lambda s: s.execute(text("select 1")), order)  # after "busy"'s two
        wait_until(lambda: gate.waiting == 3)
        hogs[0].join(5)  # "other" gives back its place: "busy" holds 3 (its most), so the late one takes it
        late.join(5)
        assert order == ["other", "other", "other"]
    for thread in stuck:
        thread.join(5)
    assert order[3:] == ["busy"] * 5 and (gate.busy, gate.waiting) == (0, 0)


def party_thread(session_factory, gate: DatabaseGate, party: str, statement, order: list[str]) -> threading.Thread:
    def work() -> None:
        PARTY.set(party)  # as the server's admission sets it for each request
        with SqlAlchemyUnitOfWork(session_factory, gate=gate) as uow:
            statement(uow.session)
            order.append(party)

    thread = threading.Thread(target=work)
    thread.start()
    return thread


def wait_until(condition, seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the gate never got there"
        time.sleep(0.005)


def test_a_gate_has_at_least_one_place():
    with pytest.raises(ValueError):
        DatabaseGate(0)


def test_a_unit_of_work_on_an_event_loop_never_parks_the_loop(session_factory):
    gate = DatabaseGate(1, timeout=0.2)
    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        with SqlAlchemyUnitOfWork(session_factory, gate=gate):
            held.set()
            done.wait(5)

    async def on_the_loop() -> int:
        with SqlAlchemyUnitOfWork(session_factory, gate=gate) as uow:  # blocking, but never waiting for a place
            return int(uow.session.execute(text("select 1")).scalar_one())

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(5)
    try:
        assert asyncio.run(on_the_loop()) == 1
    finally:
        done.set()
        holder.join(5)
    with SqlAlchemyUnitOfWork(session_factory, gate=gate):  # the holder's place came back, none was taken twice
        pass


def test_the_default_places_are_twice_the_cores_and_one_more_at_most_the_pool_and_a_setting_wins(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert Settings(pool_size=10).database_places() == 5  # 2 cores: 4 for one tenant, 1 kept for the others
    assert Settings(pool_size=3).database_places() == 3
    assert Settings(pool_size=10, database_concurrency=7).database_places() == 8
    with pytest.raises(ValidationError):
        Settings(database_concurrency=0)
