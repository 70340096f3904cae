"""The hot reads psycopg runs itself (`driver_rows`) answer as SQLAlchemy would, inside the session's transaction,
and go through SQLAlchemy while a tracer listens, so each keeps its span."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, select, text

from nextslot.core.results import Booked
from nextslot.schemas.commands import BookingCreate, CustomerIn
from nextslot.storage import queries
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
