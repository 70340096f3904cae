"""Reads before the first write run each on its own (no BEGIN, no ROLLBACK), and every write still commits or
rolls back with the rest of its transaction; no connection goes back to the pool running statements on their own."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import OperationalError

from nextslot.core.booking.writing import OneStatementBooking
from nextslot.core.results import Booked, Slots, SlotTaken
from nextslot.schemas.commands import BookingCreate, CustomerIn, SlotQuery
from nextslot.storage.engine import build_session_factory, engine_for, libpq_dsn
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.storage.test_pooled_races import MON_10
from tests.storage.test_races import phone

pytestmark = pytest.mark.storage


@contextmanager
def in_transaction(engine: Engine) -> Iterator[list[tuple[str, bool]]]:
    """Each statement sent, with whether it ran in a transaction (psycopg sends BEGIN first only then)."""
    sent: list[tuple[str, bool]] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append((" ".join(statement.split())[:50], not conn.connection.dbapi_connection.autocommit))

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", note)


def booking(n: int, hours: int = 0, key: str | None = None) -> BookingCreate:
    return BookingCreate(service="consultation", starts_at=MON_10 + timedelta(hours=hours), idempotency_key=key,
                         customer=CustomerIn(name=f"Caller {n}", phone=phone(500 + n)))


def test_a_booking_that_finds_its_time_taken_opens_no_transaction(make_business, service, engine):
    clinic = make_business("clinic")
    for n in (1, 2):  # both doctors: the time is full
        assert isinstance(service.book(clinic, booking(n)), Booked)
    with in_transaction(engine) as sent:
        lost = service.book(clinic, booking(3))
    assert isinstance(lost, SlotTaken) and lost.alternatives
    assert sent and not any(transaction for _, transaction in sent), sent


def test_a_booking_reads_on_its_own_and_writes_in_one_transaction(make_business, service, engine):
    clinic = make_business("clinic")  # its no-show policy counts no customer's no-shows: none has any yet
    service.book(clinic, booking(10, hours=3))  # the plan built and kept
    with in_transaction(engine) as sent:
        assert isinstance(service.book(clinic, booking(11, hours=1)), Booked)
    assert [transaction for _, transaction in sent] == [False, False, True, True], sent  # version, calendar | writes
    with in_transaction(engine) as sent:
        assert isinstance(service.book(clinic, booking(12, hours=2, key="key-12")), Booked)
    # the time is checked on its own, then the key is taken in the transaction that writes: a retry waits for it
    assert [transaction for _, transaction in sent] == [False, False, True, True, True], sent


def test_a_write_that_fails_after_the_customer_takes_the_customer_back(make_business, service, engine, monkeypatch):
    clinic = make_business("clinic")

    def fail(*args: Any) -> None:
        raise RuntimeError("the database went away mid-booking")

    monkeypatch.setattr(OneStatementBooking, "place", fail)
    with pytest.raises(RuntimeError):
        service.book(clinic, booking(20))
    with engine.connect() as conn:
        assert conn.scalar(text("select count(*) from customers where business_id = :b"), {"b": clinic}) == 0


def test_a_slot_search_sends_no_transaction(make_business, service, engine):
    clinic = make_business("clinic")
    with in_transaction(engine) as sent:
        found = service.find_slots(clinic, SlotQuery(service="consultation", starts_from=MON_10))
    assert isinstance(found, Slots) and found.slots
    assert sent and not any(transaction for _, transaction in sent), sent


def test_no_connection_goes_back_to_the_pool_running_statements_on_their_own(database_url):
    engine = engine_for(database_url, pool_size=1)  # one connection, handed out again and again
    try:
        with pytest.raises(RuntimeError), SqlAlchemyUnitOfWork(build_session_factory(engine)) as uow:
            uow.reads_first()
            uow.session.execute(text("select 1"))
            raise RuntimeError("cut short")
        with engine.connect() as conn:
            assert conn.connection.dbapi_connection.autocommit is False
            conn.connection.dbapi_connection.autocommit = True  # as if a block had been cut short unrestored
        with engine.connect() as conn:
            assert conn.connection.dbapi_connection.autocommit is False
    finally:
        engine.dispose()


def test_reads_first_after_a_write_keeps_the_transaction(session_factory, make_business, engine):
    clinic = make_business("clinic")
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        uow.session.execute(text("update businesses set name = name where id = :b"), {"b": clinic})
        uow.reads_first()  # too late: something is written, so it is not let go of
        assert uow.session.connection().connection.dbapi_connection.autocommit is False
        uow.session.execute(text("update businesses set name = 'Renamed' where id = :b"), {"b": clinic})
    with engine.connect() as conn:  # left without a commit: both updates rolled back
        assert conn.scalar(text("select name from businesses where id = :b"), {"b": clinic}) != "Renamed"


def test_a_connection_lost_while_reading_on_its_own_fails_as_an_outage(database_url):
    """The error is the database's (which callers answer as "try again"), not one from leaving the block."""
    engine = engine_for(database_url, pool_size=1)
    try:
        with pytest.raises(OperationalError), SqlAlchemyUnitOfWork(build_session_factory(engine)) as uow:
            uow.reads_first()
            pid = uow.session.execute(text("select pg_backend_pid()")).scalar()
            with psycopg.connect(libpq_dsn(database_url), autocommit=True) as admin:
                admin.execute("select pg_terminate_backend(%s)", (pid,))
            uow.session.execute(text("select 1"))
        with SqlAlchemyUnitOfWork(build_session_factory(engine)) as uow:  # the pool hands out a live connection
            assert uow.session.execute(text("select 1")).scalar() == 1
            assert uow.session.connection().connection.dbapi_connection.autocommit is False
    finally:
        engine.dispose()
