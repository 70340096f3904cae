"""Round 13: two staff members connected to one calendar (one Google calendar, one Microsoft 365 mailbox, one CalDAV
collection): each booking keeps an event per staff member it has there, whatever the order its writes and removals
reach the calendar in, retries of writes given up included; a party booking of two of them has two events and
cancelling takes out both. Real PostgreSQL, the booking service, Radicale, and the loopback fakes of Google and Graph
(through the real client libraries)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from alembic import command
from sqlalchemy import select, text, update

from nextslot.calendars import connecting, writes
from nextslot.calendars.busy_time import OURS
from nextslot.calendars.caldav import CalDav
from nextslot.calendars.connections import add_calendar
from nextslot.calendars.providers import Registry, build_registry
from nextslot.calendars.writes import GIVE_UP_AFTER, CalendarWriter
from nextslot.core.results import Booked
from nextslot.schemas.commands import BookingChange, BookingCreate, BookingReschedule, CustomerIn
from nextslot.storage.engine import engine_for
from nextslot.storage.migrate import alembic_config, upgrade
from nextslot.storage.tables import Booking, CalendarWrite, Resource
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.calendars import test_google, test_microsoft
from tests.calendars.test_round11_followups import WED, drain
from tests.calendars.test_sync import at
from tests.conftest import example


@pytest.fixture
def clinic(make_business) -> int:
    """The example clinic with two nurses and a health check that needs a doctor and a nurse at once."""
    data = example("clinic")
    data["resources"] += [{"key": "nurse-lee", "name": "Nurse Kim Lee", "kind": "staff"},
                          {"key": "nurse-ng", "name": "Nurse Jo Ng", "kind": "staff"}]
    data["services"].append({"key": "check-up", "name": "Health check", "description": "A doctor and a nurse.",
                             "duration": 30, "step": 15, "min_notice": 60, "horizon_days": 60, "requires": [
                                 {"label": "doctor", "one_of": ["dr-okafor", "dr-patel"]},
                                 {"label": "nurse", "one_of": ["nurse-lee", "nurse-ng"]}]})
    return make_business(data)


@dataclass
class Shared:
    """One calendar that several staff members connect: what is in it, as the provider holds it."""

    provider: str
    registry: Registry
    server: Any  # the fake Google, the fake Graph, or the Radicale collection
    clinic: int
    session_factory: Any
    clock: Any

    def connect(self, resource_key: str) -> int:
        if self.provider == "caldav":
            made = add_calendar(SqlAlchemyUnitOfWork(self.session_factory), self.clinic, resource_key,
                                str(self.server.url), allow_private=True, now=self.clock())
            assert isinstance(made, int), made
            return made
        secret = test_google.SECRET if self.provider == "google" else test_microsoft.SECRET
        started = connecting.start(self.registry, secret, self.provider, self.clinic,
                                   resource_id(self.session_factory, self.clinic, resource_key),
                                   "http://127.0.0.1:9/console/calendars/callback", "session-1")
        back = self.server.approve_url(started.url)
        done = connecting.finish(self.registry, secret, self.session_factory, started.sealed,
                                 dict(parse_qsl(urlsplit(back).query)), "session-1", self.clock())
        assert isinstance(done, tuple), done
        return done[0]

    def events(self) -> list[tuple[datetime, str]]:
        """(start, our key) of each event in the calendar, in order."""
        if self.provider == "google":
            found = [(datetime.fromisoformat(e["start"]["dateTime"]), e["extendedProperties"]["private"][
                "nextslotBooking"]) for e in self.server.live()]
        elif self.provider == "microsoft":
            found = [(datetime.fromisoformat(e["start"]["dateTime"][:19]).replace(tzinfo=UTC),
                      e["singleValueExtendedProperties"][0]["value"]) for e in self.server.live()]
        else:
            found = [(e.icalendar_component["DTSTART"].dt, str(e.icalendar_component[OURS]))
                     for e in self.server.events()]
        return sorted((start.astimezone(UTC), key) for start, key in found)

    def starts(self) -> list[datetime]:
        return [start for start, _ in self.events()]

    def descriptions(self) -> dict[str, str]:
        """Our key -> the event's description."""
        if self.provider == "google":
            return {e["extendedProperties"]["private"]["nextslotBooking"]: e["description"] for e in self.server.live()}
        if self.provider == "microsoft":
            return {e["singleValueExtendedProperties"][0]["value"]: e["body"]["content"] for e in self.server.live()}
        return {str(e.icalendar_component[OURS]): str(e.icalendar_component["DESCRIPTION"])
                for e in self.server.events()}


@pytest.fixture(params=["google", "microsoft", "caldav"])
def shared(request, clinic, session_factory, clock) -> Shared:
    if request.param == "google":
        server = request.getfixturevalue("google")
        registry = build_registry(test_google.settings_for(server, calendar_push=False), test_google.SECRET)
    elif request.param == "microsoft":
        server = request.getfixturevalue("microsoft")
        registry = build_registry(test_microsoft.settings_for(server, calendar_push=False), test_microsoft.SECRET)
    else:
        server = request.getfixturevalue("radicale").calendar("frontdesk", f"shared-{uuid.uuid4().hex[:8]}")
        registry = Registry({"caldav": CalDav()}, allow_private=True)
    return Shared(request.param, registry, server, clinic, session_factory, clock)


def resource_id(session_factory, clinic: int, key: str) -> int:
    with session_factory() as s:
        return s.scalar(select(Resource.id).where(Resource.business_id == clinic, Resource.key == key))


def book(service, clinic: int, start: datetime, *staff: str, what: str = "consultation") -> tuple[str, int]:
    result = service.book(clinic, BookingCreate(service=what, starts_at=start, resources=list(staff),
                                                customer=CustomerIn(name="Ada", phone="+447911123456")))
    assert isinstance(result, Booked), result
    with service.session_factory() as s:
        return result.booking.code, s.scalar(select(Booking.id).where(Booking.business_id == clinic,
                                                                     Booking.code == result.booking.code))


def move(service, clinic: int, code: str, start: datetime, *staff: str) -> None:
    moved = service.reschedule(clinic, BookingReschedule(code=code, starts_at=start, resources=list(staff)))
    assert isinstance(moved, Booked), moved


def key_for(shared: Shared, booking_id: int, staff: str) -> str:
    """The key of the booking's event for this staff member."""
    with shared.session_factory() as s:
        return writes.event_key(s.get(Booking, booking_id), resource_id(shared.session_factory, shared.clinic, staff))


def row(session_factory, calendar_id: int, booking_id: int) -> CalendarWrite:
    with session_factory() as s:
        return s.scalars(select(CalendarWrite).where(CalendarWrite.calendar_id == calendar_id,
                                                     CalendarWrite.booking_id == booking_id)).one()


def write_in_order(shared: Shared, calendars: list[int], booking_id: int) -> None:
    """Write the booking's rows for these calendars one at a time, in this order (the queue takes the row due
    first)."""
    now = shared.clock()
    with shared.session_factory() as s:
        for n, calendar_id in enumerate(calendars):
            s.execute(update(CalendarWrite).where(CalendarWrite.calendar_id == calendar_id,
                                                  CalendarWrite.booking_id == booking_id)
                      .values(due_at=now - timedelta(seconds=len(calendars) - n)))
        s.commit()
    writer = CalendarWriter(shared.session_factory, shared.registry, shared.clock, batch=1)
    for calendar_id in calendars:
        assert writer.write_due() == 1
        assert row(shared.session_factory, calendar_id, booking_id).status == "done"


class Refusing:
    """Makes the provider's `put` or `remove` fail (as a write quota or an outage would) while `on`, for every event
    or only the one with key `only`."""

    def __init__(self, shared: Shared, call: str, only: str | None = None):
        self.provider, self.call, self.on = shared.registry.providers[shared.provider], call, True
        real = getattr(self.provider, call)

        def refusing(connection: Any, source: Any, event: Any, remote_id: str | None) -> Any:
            key = event if call == "remove" else event.key
            if self.on and only in (None, key):
                raise RuntimeError("the provider refused the write")
            return real(connection, source, event, remote_id)

        setattr(self.provider, call, refusing)

    def __enter__(self) -> Refusing:
        return self

    def __exit__(self, *exc: object) -> None:
        delattr(self.provider, self.call)


def until_given_up(shared: Shared, writer: CalendarWriter, calendar_id: int, booking_id: int) -> CalendarWrite:
    """Try the row at each of its backoff times until the writer gives up on it."""
    for _ in range(GIVE_UP_AFTER + 1):
        drain(writer)
        found = row(shared.session_factory, calendar_id, booking_id)
        if found.status == "failed":
            return found
        shared.clock.now = max(shared.clock.now, found.due_at)
    raise AssertionError("the write was never given up on")


# --- a booking moved between two staff members who share a calendar ------------------------------------------


@pytest.mark.parametrize("order", ["the colleague's write first", "the removal first", "one batch"])
def test_a_booking_moved_to_a_colleague_sharing_the_calendar_stays_in_it_whatever_the_order(
        shared, service, clinic, session_factory, clock, order):
    """Dr Okafor and Dr Patel both connect the front desk's calendar. Before the fix both wrote the booking under
    one event (its id came from the booking alone): when Dr Patel's write landed before Dr Okafor's removal, the
    removal deleted the event Dr Patel had just written, and the moved booking vanished from the calendar."""
    okafor, patel = shared.connect("dr-okafor"), shared.connect("dr-patel")
    code, booking_id = book(service, clinic, at(10, day=WED), "dr-okafor")
    drain(CalendarWriter(session_factory, shared.registry, clock))
    assert shared.starts() == [at(10, day=WED)]

    move(service, clinic, code, at(11, day=WED), "dr-patel")
    if order == "one batch":
        drain(CalendarWriter(session_factory, shared.registry, clock))
    else:
        write_in_order(shared, [patel, okafor] if order == "the colleague's write first" else [okafor, patel],
                       booking_id)
    assert shared.starts() == [at(11, day=WED)]
    assert shared.events() == [(at(11, day=WED), key_for(shared, booking_id, "dr-patel"))]


def test_a_booking_moved_to_a_colleague_and_back_stays_in_the_shared_calendar(
        shared, service, clinic, session_factory, clock):
    """The plain queue order (rows in the order they were made) was enough to lose it before the fix: moved back,
    Dr Okafor's older row writes the event and Dr Patel's newer one then takes it out."""
    shared.connect("dr-okafor")
    shared.connect("dr-patel")
    writer = CalendarWriter(session_factory, shared.registry, clock)
    code, booking_id = book(service, clinic, at(10, day=WED), "dr-okafor")
    drain(writer)
    move(service, clinic, code, at(11, day=WED), "dr-patel")
    drain(writer)
    assert shared.starts() == [at(11, day=WED)]
    move(service, clinic, code, at(12, day=WED), "dr-okafor")
    drain(writer)
    assert shared.starts() == [at(12, day=WED)]
    assert shared.events() == [(at(12, day=WED), key_for(shared, booking_id, "dr-okafor"))]


def test_a_removal_given_up_and_retried_hours_later_leaves_the_colleagues_event(
        shared, service, clinic, session_factory, clock):
    """Dr Okafor's removal fails until it is given up on (Dr Patel's write went through meanwhile) and is tried
    again by the 3-hourly retry: it takes out Dr Okafor's event only."""
    okafor, _ = shared.connect("dr-okafor"), shared.connect("dr-patel")
    writer = CalendarWriter(session_factory, shared.registry, clock)
    code, booking_id = book(service, clinic, at(10, day=WED), "dr-okafor")
    drain(writer)
    with Refusing(shared, "remove"):
        move(service, clinic, code, at(11, day=WED), "dr-patel")
        given_up = until_given_up(shared, writer, okafor, booking_id)
        assert given_up.locked_until is not None  # tried again later
        assert len(shared.starts()) == 2  # Dr Okafor's old event still stands, beside Dr Patel's
    clock.now = given_up.locked_until
    drain(writer)
    assert shared.events() == [(at(11, day=WED), key_for(shared, booking_id, "dr-patel"))]
    assert row(session_factory, okafor, booking_id).status == "done"


def test_a_write_given_up_and_retried_after_the_removal_brings_the_booking_back(
        shared, service, clinic, session_factory, clock):
    _, patel = shared.connect("dr-okafor"), shared.connect("dr-patel")
    writer = CalendarWriter(session_factory, shared.registry, clock)
    code, booking_id = book(service, clinic, at(10, day=WED), "dr-okafor")
    drain(writer)
    with Refusing(shared, "put"):
        move(service, clinic, code, at(11, day=WED), "dr-patel")
        given_up = until_given_up(shared, writer, patel, booking_id)
        assert shared.starts() == []  # Dr Okafor's went; Dr Patel's could not be written yet
    clock.now = given_up.locked_until
    drain(writer)
    assert shared.events() == [(at(11, day=WED), key_for(shared, booking_id, "dr-patel"))]


# --- a party booking of two staff members who share a calendar -------------------------------------------------


def test_a_health_check_with_a_doctor_and_a_nurse_sharing_a_calendar_has_an_event_for_each_and_cancelling_takes_both(
        shared, service, clinic, session_factory, clock):
    shared.connect("dr-okafor")
    lee = shared.connect("nurse-lee")
    writer = CalendarWriter(session_factory, shared.registry, clock)
    code, booking_id = book(service, clinic, at(10, day=WED), "dr-okafor", "nurse-lee", what="check-up")
    drain(writer)
    assert shared.events() == sorted([(at(10, day=WED), key_for(shared, booking_id, "dr-okafor")),
                                      (at(10, day=WED), key_for(shared, booking_id, "nurse-lee"))])
    described = shared.descriptions()  # whose each one is, as the front desk reads the calendar
    assert "Dr Femi Okafor" in described[key_for(shared, booking_id, "dr-okafor")]
    assert "Nurse Kim Lee" in described[key_for(shared, booking_id, "nurse-lee")]

    nurses = key_for(shared, booking_id, "nurse-lee")
    with Refusing(shared, "remove", only=nurses):  # the nurse's removal fails once; none is left behind after
        service.cancel(clinic, BookingChange(code=code))
        drain(writer)
        assert row(session_factory, lee, booking_id).status == "pending"
        assert shared.events() == [(at(10, day=WED), nurses)]  # the doctor's went alone
    clock.now = row(session_factory, lee, booking_id).due_at
    drain(writer)
    assert shared.events() == []


@pytest.mark.parametrize("order", ["the doctor's write first", "the nurse's removal first"])
def test_a_health_check_whose_nurse_is_replaced_keeps_the_doctors_event_in_the_shared_calendar(
        shared, service, clinic, session_factory, clock, order):
    """Nurse Lee is replaced by Nurse Ng (no calendar connected): before the fix Nurse Lee's removal took out the
    one event the doctor and she shared, when it came after the doctor's write."""
    okafor, lee = shared.connect("dr-okafor"), shared.connect("nurse-lee")
    code, booking_id = book(service, clinic, at(10, day=WED), "dr-okafor", "nurse-lee", what="check-up")
    drain(CalendarWriter(session_factory, shared.registry, clock))
    move(service, clinic, code, at(14, day=WED), "dr-okafor", "nurse-ng")
    write_in_order(shared, [okafor, lee] if order == "the doctor's write first" else [lee, okafor], booking_id)
    assert shared.starts() == [at(14, day=WED)]
    assert shared.events() == [(at(14, day=WED), key_for(shared, booking_id, "dr-okafor"))]


# --- events written before the upgrade, under the booking's own key ---------------------------------------------


def written_as_before_the_upgrade(shared: Shared, monkeypatch, booking) -> int:
    """Book and write as the code before 0033 did (the event under the booking's key alone; the rows flagged as
    the upgrade flags them); return the booking's id."""
    with monkeypatch.context() as before:
        before.setattr(writes, "event_key", lambda booking, resource_id: writes.booking_key(booking))
        code, booking_id = booking()
        drain(CalendarWriter(shared.session_factory, shared.registry, shared.clock))
    with shared.session_factory() as s:
        s.execute(update(CalendarWrite).where(CalendarWrite.booking_id == booking_id).values(legacy_key=True))
        s.commit()
        old_key = writes.booking_key(s.get(Booking, booking_id))
    assert {key for _, key in shared.events()} == {old_key}
    return booking_id


@pytest.mark.parametrize("order", ["the colleague's write first", "the removal first"])
def test_a_booking_written_before_the_upgrade_and_moved_to_a_colleague_sharing_the_calendar_stays_once(
        shared, service, clinic, session_factory, clock, monkeypatch, order):
    okafor, patel = shared.connect("dr-okafor"), shared.connect("dr-patel")
    made: list[str] = []

    def booking() -> tuple[str, int]:
        made.append((found := book(service, clinic, at(10, day=WED), "dr-okafor"))[0])
        return found

    booking_id = written_as_before_the_upgrade(shared, monkeypatch, booking)
    move(service, clinic, made[0], at(11, day=WED), "dr-patel")
    write_in_order(shared, [patel, okafor] if order == "the colleague's write first" else [okafor, patel],
                   booking_id)
    assert shared.events() == [(at(11, day=WED), key_for(shared, booking_id, "dr-patel"))]
    assert not row(session_factory, okafor, booking_id).legacy_key


def test_one_event_a_doctor_and_a_nurse_shared_before_the_upgrade_becomes_one_each_when_either_is_written(
        shared, service, clinic, session_factory, clock, monkeypatch):
    """Before the upgrade the doctor's and the nurse's rows wrote one event. Only the doctor's row is written again
    (its 3-hourly retry, say): it puts the doctor's own event and takes the shared one out, which showed the nurse
    too, so the nurse's row is made due and puts hers: none is lost, none is left on the old key."""
    okafor, lee = shared.connect("dr-okafor"), shared.connect("nurse-lee")
    booking_id = written_as_before_the_upgrade(
        shared, monkeypatch, lambda: book(service, clinic, at(10, day=WED), "dr-okafor", "nurse-lee", what="check-up"))
    with session_factory() as s:
        s.execute(update(CalendarWrite).where(CalendarWrite.calendar_id == okafor,
                                              CalendarWrite.booking_id == booking_id)
                  .values(status="failed", locked_until=clock()))
        s.commit()
    writer = CalendarWriter(session_factory, shared.registry, clock)
    assert writer.write_due() == 1  # the doctor's alone
    assert row(session_factory, lee, booking_id).status == "pending"
    drain(writer)
    assert shared.events() == sorted([(at(10, day=WED), key_for(shared, booking_id, "dr-okafor")),
                                      (at(10, day=WED), key_for(shared, booking_id, "nurse-lee"))])
    assert not row(session_factory, okafor, booking_id).legacy_key and not row(session_factory, lee,
                                                                                booking_id).legacy_key


def test_the_upgrade_flags_the_rows_written_before_it_and_no_later_one(database_at):
    url = database_at("0032_calendar_write_retries")
    old = engine_for(url)
    try:
        with old.begin() as conn:  # rows as the code before left them (their parents are not needed)
            conn.execute(text("set local session_replication_role = replica"))
            conn.execute(text(
                "insert into calendar_writes (business_id, calendar_id, booking_id, status, attempts, due_at) "
                "values (1, 1, 1, 'done', 1, now()), (1, 2, 1, 'failed', 10, now())"))
        upgrade(url)
        with old.begin() as conn:
            conn.execute(text("set local session_replication_role = replica"))
            conn.execute(text("insert into calendar_writes (business_id, calendar_id, booking_id, due_at) "
                              "values (1, 3, 1, now())"))
            flagged = dict(conn.execute(text("select calendar_id, legacy_key from calendar_writes")).all())
        assert flagged == {1: True, 2: True, 3: False}
        command.downgrade(alembic_config(url), "0032_calendar_write_retries")
        with old.connect() as conn:
            assert conn.execute(text("select count(*) from information_schema.columns where table_name = "
                                     "'calendar_writes' and column_name = 'legacy_key'")).scalar() == 0
    finally:
        old.dispose()
