"""Round 12: bookings written into staff calendars while the provider refuses writes but reads fine (Google's write
quota, Graph's throttling): retried on their own schedule, never before a Retry-After, never by two schedulers at
once, and never bringing back a booking cancelled or moved meanwhile. Real PostgreSQL, the booking service, and the
loopback fakes of Google and Graph (through the real client libraries)."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from caldav.lib import error as caldav_error
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from evals.fake_google import FakeGoogle
from evals.fake_microsoft import FakeMicrosoft
from nextslot.calendars.caldav import CalDav
from nextslot.calendars.connections import add_calendar
from nextslot.calendars.provider import LONGEST_WAIT, BookingEvent, Throttled, retry_after
from nextslot.calendars.providers import Registry, build_registry
from nextslot.calendars.sync import Synced, sync_calendar
from nextslot.calendars.writes import GIVE_UP_AFTER, RETRY_FAILED, CalendarWriter
from nextslot.core.results import Booked
from nextslot.schemas.commands import BookingChange, BookingReschedule
from nextslot.storage.engine import engine_for
from nextslot.storage.migrate import alembic_config, upgrade
from nextslot.storage.tables import CalendarWrite, ExternalCalendar
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.calendars import test_google, test_microsoft
from tests.calendars.test_round11_followups import WED, booked, by_key, drain, key_of, rows
from tests.calendars.test_sync import at


class QuotaGoogle(FakeGoogle):
    """The fake Google, which can refuse event inserts for its write quota (403 rateLimitExceeded, as Google does
    under its calendar usage limits) while every read goes on working."""

    refusals = 0  # inserts still to refuse

    async def _insert(self, request: Request) -> Response:
        if self.refusals:
            if (refused := self._authorized(request)) is not None:
                return refused
            self.refusals -= 1
            return JSONResponse({"error": {"code": 403, "message": "Rate Limit Exceeded", "errors": [
                {"domain": "usageLimits", "reason": "rateLimitExceeded", "message": "Rate Limit Exceeded"}]}},
                status_code=403)
        return await super()._insert(request)


class ThrottlingGraph(FakeMicrosoft):
    """The fake Graph, which can throttle event creation (429 with Retry-After) while reads go on working."""

    throttled = 0  # creations still to throttle
    retry_after = "600"

    async def _create(self, request: Request) -> Response:
        if self.throttled:
            if (refused := self._authorized(request)) is not None:
                return refused
            self.throttled -= 1
            return JSONResponse({"error": {"code": "ApplicationThrottled", "message": "Application is over its "
                                           "MailboxConcurrency limit."}}, status_code=429,
                                headers={"Retry-After": self.retry_after})
        return await super()._create(request)


@pytest.fixture(scope="module")
def google_server() -> Iterator[QuotaGoogle]:  # the conftest's `google` empties it before each test
    with QuotaGoogle() as fake:
        yield fake


@pytest.fixture(scope="module")
def microsoft_server() -> Iterator[ThrottlingGraph]:
    with ThrottlingGraph() as fake:
        yield fake


@pytest.fixture
def quota_google(google) -> Iterator[QuotaGoogle]:
    yield google
    google.refusals = 0


@pytest.fixture
def graph(microsoft) -> Iterator[ThrottlingGraph]:
    yield microsoft
    microsoft.throttled, microsoft.retry_after = 0, "600"


@pytest.fixture
def graph_registry(microsoft):
    return build_registry(test_microsoft.settings_for(microsoft, calendar_push=False), test_microsoft.SECRET)


def row_of(session_factory, calendar_id: int, booking_id: int) -> CalendarWrite:
    return rows(session_factory, calendar_id)[booking_id]


def synced(session_factory, calendar_id: int, clock, registry) -> None:
    assert isinstance(sync_calendar(session_factory, calendar_id, clock(), registry=registry), Synced)


def try_until_given_up(writer: CalendarWriter, session_factory, calendar_id: int, booking_id: int, clock,
                       registry) -> CalendarWrite:
    """Try the booking's write at each of its backoff times, the calendar syncing fine in between, until it fails."""
    for _ in range(GIVE_UP_AFTER + 1):
        drain(writer)
        synced(session_factory, calendar_id, clock, registry)
        row = row_of(session_factory, calendar_id, booking_id)
        if row.status != "pending":
            return row
        clock.now = max(clock.now, row.due_at)
    raise AssertionError("the write was never given up on")


# --- a write the provider refuses while reads work ------------------------------------------------------


def test_round12_a_google_write_refused_for_its_quota_while_syncs_succeed_is_tried_again_on_its_own(
        quota_google, google_registry, service, session_factory, clinic, clock):
    """Google refuses the insert (403 rateLimitExceeded) for longer than the writer's ten tries, while every sync
    succeeds. Before the fix the row then stayed failed until a sync failed or the calendar was connected again: the
    booking never reached the staff member's calendar. Now a failed write is tried again every few hours while its
    booking is to come."""
    calendar_id = test_google.connect(quota_google, google_registry, session_factory, clinic, clock())
    synced(session_factory, calendar_id, clock, google_registry)
    _, booking_id = booked(service, clinic, at(15, day=WED))
    quota_google.refusals = GIVE_UP_AFTER  # the eleventh try goes through
    writer = CalendarWriter(session_factory, google_registry, clock)
    given_up = try_until_given_up(writer, session_factory, calendar_id, booking_id, clock, google_registry)
    assert given_up.status == "failed" and "HTTP 403" in given_up.last_error
    assert given_up.locked_until == clock() + RETRY_FAILED  # its next try
    assert quota_google.live() == []
    drain(writer)  # not before its time
    assert quota_google.live() == []

    clock.now = given_up.locked_until
    drain(writer)
    assert by_key(quota_google) == {key_of(session_factory, booking_id): at(15, day=WED).isoformat()}
    assert row_of(session_factory, calendar_id, booking_id).status == "done"
    with session_factory() as s:
        assert s.get(ExternalCalendar, calendar_id).last_error is None  # no sync ever failed


def test_round12_a_write_given_up_on_is_not_tried_again_once_its_booking_is_over(
        quota_google, google_registry, service, session_factory, clinic, clock):
    calendar_id = test_google.connect(quota_google, google_registry, session_factory, clinic, clock())
    _, booking_id = booked(service, clinic, at(10))  # this morning: over long before ten tries are
    quota_google.refusals = 100
    writer = CalendarWriter(session_factory, google_registry, clock)
    given_up = try_until_given_up(writer, session_factory, calendar_id, booking_id, clock, google_registry)
    assert given_up.status == "failed" and given_up.locked_until is None
    clock.now += timedelta(days=1)
    assert writer.write_due() == 0


def test_round12_a_failed_write_due_again_is_taken_by_one_scheduler_only(
        quota_google, google_registry, service, session_factory, clinic, clock):
    """Several scheduler processes drain the queue: the retry of a failed write is claimed in the database (the
    queue's lease, SKIP LOCKED), so while one writes it, another finds nothing to do."""
    calendar_id = test_google.connect(quota_google, google_registry, session_factory, clinic, clock())
    _, booking_id = booked(service, clinic, at(15, day=WED))
    quota_google.refusals = GIVE_UP_AFTER
    first, second = (CalendarWriter(session_factory, google_registry, clock) for _ in range(2))
    given_up = try_until_given_up(first, session_factory, calendar_id, booking_id, clock, google_registry)
    clock.now = given_up.locked_until
    provider = google_registry.providers["google"]
    real_put, seen = provider.put, []

    def put_while_the_other_scheduler_runs(connection, source, event, remote_id):
        seen.append(second.write_due())  # the other process's turn, while this one is writing
        return real_put(connection, source, event, remote_id)

    provider.put = put_while_the_other_scheduler_runs
    try:
        assert first.write_due() == 1
    finally:
        del provider.put
    assert seen == [0]
    inserts = [r for r in quota_google.requests if r == ("POST", "/calendar/v3/calendars/primary/events")]
    assert len(inserts) == GIVE_UP_AFTER + 1 and len(quota_google.live()) == 1


# --- Retry-After -------------------------------------------------------------------------------------------


def test_round12_a_graph_429_holds_every_write_into_that_calendar_until_its_retry_after(
        graph, graph_registry, service, session_factory, clinic, clock):
    """Before the fix each write of the batch asked Graph again (prolonging its throttling) and each came back
    after our own 30 seconds, whatever Graph's Retry-After said."""
    calendar_id = test_microsoft.connect(graph, graph_registry, session_factory, clinic, clock())
    synced(session_factory, calendar_id, clock, graph_registry)
    bookings = [booked(service, clinic, at(hour, day=WED))[1] for hour in (10, 12, 14)]
    graph.throttled, graph.retry_after = 1, "600"
    graph.requests.clear()
    writer = CalendarWriter(session_factory, graph_registry, clock)
    assert writer.write_due() == 3
    assert [r for r in graph.requests if r[0] == "POST"] == [("POST", "/v1.0/me/events")]  # asked once
    held = rows(session_factory, calendar_id)
    assert {held[b].due_at for b in bookings} == {clock() + timedelta(seconds=600)}
    assert {held[b].status for b in bookings} == {"pending"}
    assert sorted(held[b].attempts for b in bookings) == [0, 0, 1]  # the two held back were not tries
    clock.now += timedelta(seconds=599)
    assert writer.write_due() == 0
    clock.now += timedelta(seconds=1)
    drain(writer)
    assert len(graph.live()) == 3
    assert {r.status for r in rows(session_factory, calendar_id).values()} == {"done"}


def test_round12_a_retry_after_past_a_day_is_read_as_a_day(
        graph, graph_registry, service, session_factory, clinic, clock):
    calendar_id = test_microsoft.connect(graph, graph_registry, session_factory, clinic, clock())
    _, booking_id = booked(service, clinic, at(10, day=WED))
    graph.throttled, graph.retry_after = 1, str(10 ** 12)  # a broken or hostile answer: not years
    writer = CalendarWriter(session_factory, graph_registry, clock)
    assert writer.write_due() == 1
    assert row_of(session_factory, calendar_id, booking_id).due_at == clock() + timedelta(days=1)


@pytest.mark.parametrize("change", ["cancelled", "moved to a colleague"])
def test_round12_a_booking_changed_while_its_write_is_held_back_is_never_written_back(
        graph, graph_registry, service, session_factory, clinic, clock, change):
    """The booking is cancelled (or moved to Dr Patel) while its first write waits out Graph's throttling, the
    change arriving during the throttled call itself: its next write takes it out (finds nothing to take out), never
    creates it, and still waits for the Retry-After."""
    calendar_id = test_microsoft.connect(graph, graph_registry, session_factory, clinic, clock())
    code, booking_id = booked(service, clinic, at(10, day=WED))
    graph.throttled = 1
    provider = graph_registry.providers["microsoft"]
    real_put = provider.put

    def put_as_the_booking_changes(connection, source, event, remote_id):
        if change == "cancelled":
            service.cancel(clinic, BookingChange(code=code))
        else:
            moved = service.reschedule(clinic, BookingReschedule(code=code, starts_at=at(10, day=WED),
                                                                 resources=["dr-patel"]))
            assert isinstance(moved, Booked), moved
        return real_put(connection, source, event, remote_id)  # throttled

    provider.put = put_as_the_booking_changes
    try:
        assert CalendarWriter(session_factory, graph_registry, clock).write_due() == 1
    finally:
        del provider.put
    row = row_of(session_factory, calendar_id, booking_id)
    assert row.status == "pending" and row.version == 2 and row.due_at == clock() + timedelta(seconds=600)
    clock.now = row.due_at
    drain(CalendarWriter(session_factory, graph_registry, clock))
    assert graph.live() == []
    assert row_of(session_factory, calendar_id, booking_id).status == "done"


def test_round12_retry_after_is_read_as_seconds_or_an_http_date_and_nothing_else():
    now = datetime(2026, 11, 23, 8, tzinfo=UTC)
    assert retry_after("120", now) == timedelta(minutes=2)
    assert retry_after("Mon, 23 Nov 2026 08:05:00 GMT", now) == timedelta(minutes=5)
    assert retry_after("Mon, 23 Nov 2026 07:00:00 GMT", now) == timedelta(0)  # already past
    assert retry_after("9" * 40, now) == LONGEST_WAIT
    for unreadable in (None, "", "soon", "-5", "1.5", "²", "Mon, 23 Nov 2026 08:05:00"):  # the last: no zone
        assert retry_after(unreadable, now) is None


def test_round12_a_caldav_servers_429_is_a_throttle_with_its_retry_after():
    class Refusing:
        def put(self, name, ics):
            raise caldav_error.RateLimitError(url="https://dav.example/cal/", reason="Too Many Requests",
                                              retry_after="90", retry_after_seconds=90.0, status=429)

    event = BookingEvent("nextslot-1-1-abc", "GP consultation", "", at(10), at(11), "Europe/London")
    with pytest.raises(Throttled) as raised:
        CalDav().put(Refusing(), None, event, None)
    assert raised.value.retry_after == timedelta(seconds=90)


# --- the upgrade ---------------------------------------------------------------------------------------------


def test_round12_writes_given_up_before_the_upgrade_are_tried_again_for_bookings_to_come(database_at):
    url = database_at("0031_booking_contact_name")
    old = engine_for(url)
    try:
        with old.begin() as conn:  # rows as the code before left them (their other parents are not needed)
            conn.execute(text("set local session_replication_role = replica"))
            conn.execute(text(
                "insert into bookings (id, business_id, code, service_id, customer_id, status, starts_at, ends_at, "
                "source, intake, notes, created_at, updated_at) values "
                "(1, 1, 'AAAAAA', 1, 1, 'booked', now() + interval '1 day', now() + interval '25 hours', 'mcp', "
                "'{}', '', now(), now()), "
                "(2, 1, 'BBBBBB', 1, 1, 'booked', now() - interval '2 days', now() - interval '47 hours', 'mcp', "
                "'{}', '', now(), now())"))
            conn.execute(text(
                "insert into calendar_writes (business_id, calendar_id, booking_id, status, attempts, due_at) "
                "values (1, 1, 1, 'failed', 10, now()), (1, 1, 2, 'failed', 10, now()), "
                "(1, 2, 1, 'done', 1, now())"))
        upgrade(url)
        with old.connect() as conn:
            retried = dict(conn.execute(text(
                "select booking_id, locked_until is not null from calendar_writes where status = 'failed'")).all())
            assert retried == {1: True, 2: False}
        command.downgrade(alembic_config(url), "0031_booking_contact_name")
        with old.connect() as conn:
            assert conn.execute(text("select count(*) from calendar_writes where locked_until is not null")) \
                .scalar() == 0
    finally:
        old.dispose()



# --- a booking moved between two staff members' calendars ----------------------------------------------------


def test_round12_a_booking_moved_to_a_colleague_leaves_one_calendar_for_the_others(
        radicale, service, session_factory, clinic, clock):
    """Each staff member's own CalDAV calendar: the move takes the event out of Dr Okafor's and writes it into
    Dr Patel's, each once."""
    calendars = {}
    for key in ("dr-okafor", "dr-patel"):
        work = radicale.calendar(key, f"work-{uuid.uuid4().hex[:8]}")
        calendars[key] = (work, add_calendar(SqlAlchemyUnitOfWork(session_factory), clinic, key, str(work.url),
                                             allow_private=True, now=clock()))
    writer = CalendarWriter(session_factory, Registry({"caldav": CalDav()}, allow_private=True), clock)
    code, _ = booked(service, clinic, at(10, day=WED))
    drain(writer)
    assert [len(work.events()) for work, _ in calendars.values()] == [1, 0]
    moved = service.reschedule(clinic, BookingReschedule(code=code, starts_at=at(10, day=WED),
                                                         resources=["dr-patel"]))
    assert isinstance(moved, Booked), moved
    drain(writer)
    assert [len(work.events()) for work, _ in calendars.values()] == [0, 1]
    [event] = calendars["dr-patel"][0].events()
    assert event.icalendar_component["DTSTART"].dt == at(10, day=WED)
