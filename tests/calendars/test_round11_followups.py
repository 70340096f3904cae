"""Round 11 follow-ups: bookings whose calendar writes were given up during a long outage reach the calendar once
it works again; Graph notifications cost a bounded amount of database work however many a request carries; a
Google series deleted as a whole frees its occurrences. Real PostgreSQL, the booking service, and the loopback
fakes of Google and Graph (through the real client libraries)."""
from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import timedelta

import httpx2
import pytest
from sqlalchemy import event, select, update
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from evals.fake_google import FakeGoogle
from nextslot.calendars.connections import staff_calendars
from nextslot.calendars.providers import build_registry
from nextslot.calendars.sync import Synced, SyncFailed, sync_calendar
from nextslot.calendars.writes import GIVE_UP_AFTER, CalendarWriter, event_key
from nextslot.core.results import Booked
from nextslot.schemas.commands import BookingChange, BookingReschedule
from nextslot.settings import Settings
from nextslot.storage.tables import Booking, CalendarGrant, CalendarWrite, ExternalCalendar
from tests.calendars import test_google, test_microsoft
from tests.calendars.test_sync import MON, at, book_okafor, busy
from tests.conftest import free_port

WED = MON + timedelta(days=2)  # Dr Okafor works Mondays, Wednesdays and Fridays


# --- 1. writes given up during an outage ------------------------------------------------------------


def booked(service, clinic: int, start) -> tuple[str, int]:
    result = book_okafor(service, clinic, start)
    assert isinstance(result, Booked), result
    with service.session_factory() as s:
        return result.booking.code, s.scalar(select(Booking.id).where(Booking.business_id == clinic,
                                                                     Booking.code == result.booking.code))


def rows(session_factory, calendar_id: int) -> dict[int, CalendarWrite]:
    with session_factory() as s:
        found = s.scalars(select(CalendarWrite).where(CalendarWrite.calendar_id == calendar_id))
        return {r.booking_id: r for r in found}


def drain(writer: CalendarWriter) -> None:
    while writer.write_due():
        pass


def write_until_given_up(writer: CalendarWriter, session_factory, calendar_id: int, clock) -> None:
    """Let the writer try every row of the calendar at each of its backoff times until it gives up on them all."""
    for _ in range(GIVE_UP_AFTER + 2):
        drain(writer)
        waiting = [r.due_at for r in rows(session_factory, calendar_id).values() if r.status == "pending"]
        if not waiting:
            break
        clock.now = max(clock.now, max(waiting))
    assert {r.status for r in rows(session_factory, calendar_id).values()} == {"failed"}


def counts(session_factory, clinic: int) -> tuple[int, int]:
    """(waiting, failed) as the console's calendar page shows them."""
    [person] = [p for p in staff_calendars(session_factory, clinic, True, "") if p.calendars]
    [calendar] = person.calendars
    return calendar.writes_waiting, calendar.writes_failed


def by_key(google: FakeGoogle) -> dict[str, str]:
    return {e["extendedProperties"]["private"]["nextslotBooking"]: e["start"]["dateTime"] for e in google.live()}


def key_of(session_factory, booking_id: int) -> str:
    """Our key of the booking's event in Dr Okafor's calendar."""
    with session_factory() as s:
        booking = s.get(Booking, booking_id)
        return event_key(booking, test_google.okafor(session_factory, booking.business_id))


def test_round11_writes_given_up_in_a_google_outage_are_written_once_the_calendar_syncs_again(
        google, google_registry, service, session_factory, clinic, clock):
    """Google is down for longer than the writer's ~7 hours of retries: a booking made then, a move and a
    cancellation of bookings written before are all given up. Before the fix they stayed failed for ever: the new
    booking never reached the staff member's calendar, the moved one stood at its old time, the cancelled one
    stayed. Now the first successful sync after the outage queues them again (bookings still to come only), and
    each is written once, by its booking's key."""
    calendar_id = test_google.connect(google, google_registry, session_factory, clinic, clock())
    writer = CalendarWriter(session_factory, google_registry, clock)
    moved_code, moved = booked(service, clinic, at(10, day=WED))
    cancelled_code, cancelled = booked(service, clinic, at(16, day=WED))
    drain(writer)
    assert len(google.live()) == 2

    google.down = True
    _, new = booked(service, clinic, at(14, day=WED))
    _, over = booked(service, clinic, at(10))  # this morning: over before Google is back
    assert isinstance(service.reschedule(clinic, BookingReschedule(code=moved_code, starts_at=at(11, day=WED),
                                                                   resources=["dr-okafor"])), Booked)
    service.cancel(clinic, BookingChange(code=cancelled_code))
    assert isinstance(sync_calendar(session_factory, calendar_id, clock(), registry=google_registry), SyncFailed)
    write_until_given_up(writer, session_factory, calendar_id, clock)
    assert clock() > at(11)  # the outage outlasted this morning's booking
    assert counts(session_factory, clinic) == (0, 4)  # what staff see meanwhile

    google.down = False
    assert isinstance(sync_calendar(session_factory, calendar_id, clock(), registry=google_registry), Synced)
    assert counts(session_factory, clinic) == (3, 1)  # queued again: all but the booking already over
    provider, written = google_registry.providers["google"], []
    real_put, real_remove = provider.put, provider.remove
    provider.put = lambda c, source, booking, remote_id: written.append(booking.key) or real_put(c, source, booking,
                                                                                                  remote_id)
    provider.remove = lambda c, source, key, remote_id: written.append(key) or real_remove(c, source, key, remote_id)
    try:
        drain(writer)
    finally:
        del provider.put, provider.remove
    in_order = sorted((r.id, b) for b, r in rows(session_factory, calendar_id).items() if b != over)
    assert written == [key_of(session_factory, b) for _, b in in_order]  # in order, each once
    assert by_key(google) == {key_of(session_factory, moved): at(11, day=WED).isoformat(),
                              key_of(session_factory, new): at(14, day=WED).isoformat()}
    after = rows(session_factory, calendar_id)
    assert {b: r.status for b, r in after.items()} == {moved: "done", cancelled: "done", new: "done", over: "failed"}
    assert counts(session_factory, clinic) == (0, 1)
    assert busy(session_factory, calendar_id) == []  # our own events, read back, are still no busy time


def test_round11_writes_given_up_while_the_servers_client_secret_was_wrong_are_written_once_it_is_fixed(
        google, service, session_factory, clinic, clock):
    """`invalid_client` (the operator's mistyped or expired client secret) fails every refresh but leaves the
    grants standing: the writes of those hours are given up; once the setting is fixed, the next sync queues
    them again."""
    good = build_registry(test_google.settings_for(google, calendar_push=False), test_google.SECRET)
    calendar_id = test_google.connect(google, good, session_factory, clinic, clock())
    mistyped = build_registry(test_google.settings_for(google, calendar_push=False).model_copy(
        update={"google_client_secret": "a-mistyped-secret"}), test_google.SECRET)
    with session_factory() as s:  # the access token is due for a refresh
        s.execute(update(CalendarGrant).values(expires_at=clock()))
        s.commit()
    _, booking_id = booked(service, clinic, at(15, day=WED))
    assert isinstance(sync_calendar(session_factory, calendar_id, clock(), registry=mistyped), SyncFailed)
    write_until_given_up(CalendarWriter(session_factory, mistyped, clock), session_factory, calendar_id, clock)
    assert google.live() == []

    assert isinstance(sync_calendar(session_factory, calendar_id, clock(), registry=good), Synced)
    drain(CalendarWriter(session_factory, good, clock))
    assert by_key(google) == {key_of(session_factory, booking_id): at(15, day=WED).isoformat()}
    assert rows(session_factory, calendar_id)[booking_id].status == "done"


def test_round11_writes_given_up_before_a_calendar_is_connected_again_are_written_after_it(
        google, google_registry, service, session_factory, clinic, clock):
    """The outage ends with the staff member connecting the calendar again (e.g. after the grant was revoked):
    reconnecting queues the given-up writes too."""
    calendar_id = test_google.connect(google, google_registry, session_factory, clinic, clock())
    writer = CalendarWriter(session_factory, google_registry, clock)
    google.down = True
    _, booking_id = booked(service, clinic, at(12, day=WED))
    write_until_given_up(writer, session_factory, calendar_id, clock)
    google.down = False
    assert test_google.connect(google, google_registry, session_factory, clinic, clock()) == calendar_id
    drain(writer)
    assert by_key(google) == {key_of(session_factory, booking_id): at(12, day=WED).isoformat()}


def test_round11_a_sync_that_follows_a_good_one_does_not_retry_writes_given_up_for_their_own_reasons(
        google, google_registry, service, session_factory, clinic, clock):
    """Only a calendar coming back from failing queues its given-up writes: a write Google refuses for its own
    reason while the calendar reads fine is not retried at every sync (every five minutes) for ever."""
    calendar_id = test_google.connect(google, google_registry, session_factory, clinic, clock())
    assert isinstance(sync_calendar(session_factory, calendar_id, clock(), registry=google_registry), Synced)
    provider = google_registry.providers["google"]

    def refused(*args, **kwargs):
        raise RuntimeError("Google Calendar answered HTTP 403")

    provider.put = refused
    try:
        _, booking_id = booked(service, clinic, at(12, day=WED))
        write_until_given_up(CalendarWriter(session_factory, google_registry, clock), session_factory, calendar_id,
                             clock)
    finally:
        del provider.put
    assert isinstance(sync_calendar(session_factory, calendar_id, clock(), registry=google_registry), Synced)
    assert rows(session_factory, calendar_id)[booking_id].status == "failed"


# --- 2. Graph notifications: bounded work per request -----------------------------------------------


@pytest.fixture
def calendar_statements(engine) -> Iterator[list[str]]:
    """Every SQL statement about external calendars run through the engine (the live server's too) meanwhile."""
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if "external_calendars" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    yield seen
    event.remove(engine, "before_cursor_execute", count)


def pushed(session_factory, calendar_id: int):
    with session_factory() as s:
        return s.get(ExternalCalendar, calendar_id).pushed_at


def test_round11_graph_notifications_cost_a_bounded_number_of_queries_and_real_batches_still_work(
        microsoft, session_factory, make_business, clock, live_server, calendar_statements):
    """Anyone can POST to the notification URL. Before the fix each notification in the body (up to 100) was its
    own database lookup, so one request of 100 made-up subscription ids cost 100 queries. Now a request costs at
    most two (one lookup for all its subscriptions, one update), while a genuine Graph batch (several
    notifications, for one subscription or several) still marks each calendar."""
    port = free_port()
    settings = Settings(**microsoft.settings(), secret_key=test_microsoft.SECRET, allow_private_targets=True,
                        public_url=f"http://127.0.0.1:{port}")
    registry = build_registry(settings, test_microsoft.SECRET)
    hook = f"http://127.0.0.1:{port}/webhooks/calendars/microsoft"
    with live_server(frozen=True, settings=settings, port=port):
        calendars = []
        for _ in range(2):
            calendar_id = test_microsoft.connect(microsoft, registry, session_factory, make_business("clinic"),
                                                 clock())
            assert isinstance(sync_calendar(session_factory, calendar_id, clock(), registry=registry), Synced)
            calendars.append(calendar_id)
        subscriptions = list(microsoft.subscriptions.values())
        assert len(subscriptions) == 2

        def post(items: list[dict]) -> int:
            calendar_statements.clear()
            return httpx2.post(hook, json={"value": items}, timeout=30).status_code

        made_up = [{"subscriptionId": secrets.token_hex(16), "clientState": secrets.token_urlsafe(32)}
                   for _ in range(100)]
        assert post(made_up) == 404
        assert len(calendar_statements) <= 2, len(calendar_statements)
        guessed = [{"subscriptionId": subscriptions[0]["id"], "clientState": secrets.token_urlsafe(32)}
                   for _ in range(100)]
        assert post(guessed) == 403
        assert len(calendar_statements) <= 2, len(calendar_statements)
        assert [pushed(session_factory, c) for c in calendars] == [None, None]

        genuine = [{"subscriptionId": sub["id"], "clientState": sub["clientState"], "changeType": change,
                    "resource": "me/events", "tenantId": "fake-tenant"}
                   for sub in subscriptions for change in ("created", "updated", "deleted")]
        assert post([*made_up[:10], *genuine]) == 202
        assert len(calendar_statements) <= 2, len(calendar_statements)
        assert all(pushed(session_factory, c) is not None for c in calendars)


# --- 3. Google: a recurring series deleted as a whole --------------------------------------------------


class SeriesGoogle(FakeGoogle):
    """The fake Google answering an incremental listing the way Google guarantees no more than: a deleted
    series comes back as one cancelled item carrying only the series' own id ("deleted events are only
    guaranteed to have the id field populated"), not as each of its occurrences."""

    async def _list(self, request: Request) -> Response:
        answer = await super()._list(request)
        if not request.query_params.get("syncToken") or answer.status_code != 200:
            return answer
        page = json.loads(answer.body)
        items, series = [], set()
        for item in page["items"]:
            if item.get("status") == "cancelled" and item.get("recurringEventId"):
                if item["recurringEventId"] not in series:
                    series.add(item["recurringEventId"])
                    items.append({"kind": "calendar#event", "id": item["recurringEventId"], "status": "cancelled"})
            else:
                items.append(item)
        return JSONResponse({**page, "items": items})


@pytest.fixture(scope="module")
def google_server() -> Iterator[SeriesGoogle]:  # the conftest's `google` empties it before each test
    with SeriesGoogle() as fake:
        yield fake


def test_round11_a_google_series_deleted_as_a_whole_frees_every_occurrence_at_the_next_sync(
        google, google_registry, session_factory, clinic, clock):
    """Before the fix only ids already stored were dropped: the series' own id never is (occurrences are stored
    by theirs), so a deleted weekly meeting kept blocking its times until the next day's full read."""
    series = google.add("Weekly review", at(11), at(12), recurrence=["RRULE:FREQ=DAILY;COUNT=3"])
    google.add("Dentist", at(15), at(16))
    calendar_id = test_google.connect(google, google_registry, session_factory, clinic, clock())
    assert isinstance(sync_calendar(session_factory, calendar_id, clock(), registry=google_registry), Synced)
    tue, wed = MON + timedelta(days=1), MON + timedelta(days=2)
    assert busy(session_factory, calendar_id) == [(at(11), at(12)), (at(15), at(16)), (at(11, day=tue),
                                                  at(12, day=tue)), (at(11, day=wed), at(12, day=wed))]
    google.cancel(series)
    result = sync_calendar(session_factory, calendar_id, clock(), registry=google_registry)
    assert isinstance(result, Synced) and result.read == "changes", result
    assert busy(session_factory, calendar_id) == [(at(15), at(16))]
