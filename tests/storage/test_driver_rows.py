"""The hot reads psycopg runs itself (`driver_rows`) answer as SQLAlchemy would, inside the session's transaction,
and go through SQLAlchemy while a tracer listens, so each keeps its span; their failures are SQLAlchemy's errors,
a lost connection invalidated."""
from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from sqlalchemy import event, select, text
from sqlalchemy.exc import DBAPIError

from nextslot.core.results import Booked
from nextslot.schemas.commands import BookingCreate, CustomerIn
from nextslot.storage import queries
from nextslot.storage.engine import build_session_factory, engine_for, libpq_dsn
from nextslot.storage.outage import database_unreachable
from nextslot.storage.tables import Resource
from tests.storage.test_pooled_races import MON_10
from tests.storage.test_races import phone

pytestmark = pytest.mark.storage


def test_a_calendar_read_answers_alike_traced_or_not(make_business, service, session_factory, engine):
    clinic = make_business("clinic")
    made = service.book(clinic, BookingCreate(service="consultation", starts_at=MON_10,
                                              customer=CustomerIn(name="Driver Caller", phone=phone(900))))
    assert isinstance(made, Booked)
    window = (MON_10 - timedelta(hours=2), MON_10 + timedelta(hours=2))
    seen: list[str] = []

    def note(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)

    with session_factory() as session:
        ids = list(session.scalars(select(Resource.id).where(Resource.business_id == clinic)))
        untraced = queries.calendar_for(session, clinic, ids, window, MON_10)
        assert not seen
        event.listen(engine, "before_cursor_execute", note)
        try:
            traced = queries.calendar_for(session, clinic, ids, window, MON_10)
        finally:
            event.remove(engine, "before_cursor_execute", note)
    assert any("from claims" in statement for statement in seen)  # the traced read went through SQLAlchemy
    assert untraced == traced
    busy = [span for spans in untraced[1].values() for span in spans]
    assert busy and all(lower.tzinfo is not None and lower < upper for lower, upper in busy), untraced
    assert MON_10 in [lower for lower, _ in busy]  # the booking just made


def test_a_hot_read_sees_its_own_transactions_writes(make_business, session_factory):
    clinic = make_business("clinic")
    with session_factory() as session:
        before = queries.config_version(session, clinic)
        session.execute(text("update businesses set config_version = config_version + 1 where id = :b"), {"b": clinic})
        assert queries.config_version(session, clinic) == before + 1  # same connection, same transaction
        session.rollback()
        assert queries.config_version(session, clinic) == before
        assert queries.config_version(session, -1) is None


def test_a_connection_lost_under_a_hot_read_fails_as_an_outage(make_business, database_url):
    """Raised as SQLAlchemy's error, the connection invalidated: a request answers 503 and the pool drops it."""
    clinic = make_business("clinic")
    engine = engine_for(database_url, pool_size=1)
    try:
        factory = build_session_factory(engine)
        with factory() as session:
            pid = session.execute(text("select pg_backend_pid()")).scalar()
            with psycopg.connect(libpq_dsn(database_url), autocommit=True) as admin:
                admin.execute("select pg_terminate_backend(%s)", (pid,))
            with pytest.raises(DBAPIError) as raised:
                queries.config_version(session, clinic)
        assert raised.value.connection_invalidated and database_unreachable(raised.value)
        with factory() as session:  # the pool hands out a live connection
            assert queries.config_version(session, clinic) is not None
    finally:
        engine.dispose()


def test_a_failing_hot_read_raises_sqlalchemys_error(session_factory):
    with session_factory() as session, pytest.raises(DBAPIError) as raised:
        queries.driver_rows(session, "select 1 / %(zero)s", {"zero": 0})
    assert not raised.value.connection_invalidated and not database_unreachable(raised.value)


def test_a_failing_statements_values_stay_out_of_its_error(session_factory):
    # the customer upsert and the booking's statement run here too: a phone or a name must not reach a log
    with session_factory() as session, pytest.raises(DBAPIError) as raised:
        queries.driver_rows(session, "select cast(%(phone)s as text), 1 / 0", {"phone": "+447911123456"})
    assert "+447911123456" not in str(raised.value) and "hidden" in str(raised.value)
