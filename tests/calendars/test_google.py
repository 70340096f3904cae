"""Google Calendar: the real Google client libraries (google-auth-oauthlib, google-auth, google-api-python-client)
against a loopback fake of Google's OAuth endpoints and Calendar API, with the real booking service on PostgreSQL.
"""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import httpx2
import pytest
from sqlalchemy import select, update

from evals.fake_google import FakeGoogle
from nextslot.calendars import connecting
from nextslot.calendars.grants import GrantRefused, access_token, needs_reconnect
from nextslot.calendars.providers import build_registry
from nextslot.calendars.sync import Synced, SyncFailed, sync_all, sync_calendar
from nextslot.calendars.tokens import TokenBox
from nextslot.settings import Settings
from nextslot.storage.tables import CalendarGrant, ExternalCalendar, Notification, Resource
from tests.calendars.test_sync import MON, at, busy, okafor_starts
from tests.conftest import free_port

SECRET = "test-secret-key-for-calendar-grants"


def settings_for(google: FakeGoogle, **more) -> Settings:
    return Settings(**google.settings(), secret_key=SECRET, allow_private_targets=True, **more)


@pytest.fixture
def registry(google):
    return build_registry(settings_for(google, calendar_push=False), SECRET)


@pytest.fixture
def clinic(make_business) -> int:
    return make_business("clinic")


def okafor(session_factory, business_id: int) -> int:
    with session_factory() as s:
        return s.scalar(select(Resource.id).where(Resource.business_id == business_id, Resource.key == "dr-okafor"))


def connect(google, registry, session_factory, business_id: int, now: datetime) -> int:
    """Connect Dr Okafor's Google calendar as the console does, the consent page's Allow pressed over HTTP."""
    resource_id = okafor(session_factory, business_id)
    started = connecting.start(registry, SECRET, "google", business_id, resource_id,
                               "http://127.0.0.1:9/console/calendars/callback", "session-1")
    back = google.approve_url(started.url)
    done = connecting.finish(registry, SECRET, session_factory, started.sealed, dict(parse_qsl(urlsplit(back).query)),
                             "session-1", now)
    assert isinstance(done, tuple), done
    return done[0]


def grant_of(session_factory, calendar_id: int) -> CalendarGrant:
    with session_factory() as s:
        return s.get(CalendarGrant, s.get(ExternalCalendar, calendar_id).grant_id)


def calendar(session_factory, calendar_id: int) -> ExternalCalendar:
    with session_factory() as s:
        return s.get(ExternalCalendar, calendar_id)


def test_connecting_stores_the_tokens_encrypted_and_asks_for_offline_access_with_pkce(
        google, registry, session_factory, clinic, clock):
    started = connecting.start(registry, SECRET, "google", clinic, okafor(session_factory, clinic),
                               "http://127.0.0.1:9/cb", "session-1")
    asked = dict(parse_qsl(urlsplit(started.url).query))
    assert asked["access_type"] == "offline" and asked["code_challenge_method"] == "S256"
    assert asked["scope"] == "https://www.googleapis.com/auth/calendar.events"  # the one scope that works
    calendar_id = connect(google, registry, session_factory, clinic, clock())
    grant = grant_of(session_factory, calendar_id)
    assert grant.account == "okafor@example.com" and grant.status == "active"
    live_refresh = next(t for t, ok in google.refresh_tokens.items() if ok)
    for token in [*google.access_tokens, live_refresh]:
        assert token not in grant.access_token and token not in (grant.refresh_token or "")
    box = TokenBox(SECRET)
    assert box.open(grant.refresh_token) in google.refresh_tokens
    assert box.open(grant.access_token) in google.access_tokens
    with pytest.raises(Exception):  # another server's key opens nothing
        TokenBox("another-secret").open(grant.refresh_token)


def test_the_answer_for_another_session_or_state_is_refused(google, registry, session_factory, clinic, clock):
    started = connecting.start(registry, SECRET, "google", clinic, okafor(session_factory, clinic),
                               "http://127.0.0.1:9/cb", "session-1")
    query = dict(parse_qsl(urlsplit(google.approve_url(started.url)).query))
    other = connecting.finish(registry, SECRET, session_factory, started.sealed, query, "session-2", clock())
    assert other.code == "connect_mismatch"
    forged = connecting.finish(registry, SECRET, session_factory, started.sealed, {**query, "state": "x"},
                               "session-1", clock())
    assert forged.code == "connect_mismatch"
    tampered = connecting.finish(registry, SECRET, session_factory, started.sealed[:-4] + "AAAA", query,
                                 "session-1", clock())
    assert tampered.code == "connect_expired"


def test_busy_time_follows_googles_events_recurring_all_day_free_tentative_cancelled_declined(
        google, registry, service, session_factory, clinic, clock):
    google.add("Dentist", at(11), at(12))
    google.add("Stand-up", at(9, 30), at(10, 15), recurrence=["RRULE:FREQ=DAILY;COUNT=3"])
    google.add("Lunch (free)", at(13), at(14), transparency="transparent")
    google.add("Maybe", at(15), at(15, 30), status="tentative")
    gone = google.add("Called off", at(16), at(17))
    google.cancel(gone)
    google.add("Team meeting", at(17), at(17, 30), attendees=[{"email": "okafor@example.com", "self": True,
                                                                "responseStatus": "declined"}])
    google.add("Holiday", "2026-11-25", "2026-11-26")  # all-day Wednesday
    calendar_id = connect(google, registry, session_factory, clinic, clock())
    result = sync_calendar(session_factory, calendar_id, clock(), registry=registry)
    assert isinstance(result, Synced) and result.read == "window", result
    tue, wed, thu = MON + timedelta(days=1), MON + timedelta(days=2), MON + timedelta(days=3)
    assert busy(session_factory, calendar_id) == [
        (at(9, 30), at(10, 15)), (at(11), at(12)), (at(15), at(15, 30)),
        (at(9, 30, tue), at(10, 15, tue)), (wed, thu),  # the third stand-up is inside the holiday
    ]
    starts = okafor_starts(service, clinic)
    assert at(11) not in starts and at(10) not in starts and at(15) not in starts
    assert at(13) in starts and at(16) in starts and at(17) in starts
    assert okafor_starts(service, clinic, wed) == set()


def test_a_later_sync_asks_only_what_changed_and_a_410_reads_the_window_again(
        google, registry, session_factory, clinic, clock):
    google.add("Dentist", at(11), at(12))
    calendar_id = connect(google, registry, session_factory, clinic, clock())
    assert sync_calendar(session_factory, calendar_id, clock(), registry=registry).read == "window"
    google.requests.clear()
    assert sync_calendar(session_factory, calendar_id, clock(), registry=registry).read == "unchanged"
    assert google.requests == [("GET", "/calendar/v3/calendars/primary/events")]  # one request
    moved = google.add("Physio", at(14), at(15))
    result = sync_calendar(session_factory, calendar_id, clock(), registry=registry)
    assert result.read == "changes" and result.fetched == 1
    assert busy(session_factory, calendar_id) == [(at(11), at(12)), (at(14), at(15))]
    google.change(moved, start=at(16), end=at(17))
    google.expire_sync_tokens()
    result = sync_calendar(session_factory, calendar_id, clock(), registry=registry)
    assert isinstance(result, Synced) and result.read == "window"
    assert busy(session_factory, calendar_id) == [(at(11), at(12)), (at(16), at(17))]


def test_an_access_token_about_to_expire_is_refreshed_first(google, registry, session_factory, clinic, clock):
    calendar_id = connect(google, registry, session_factory, clinic, clock())
    grant = grant_of(session_factory, calendar_id)
    with session_factory() as s:
        s.execute(update(CalendarGrant).where(CalendarGrant.id == grant.id).values(expires_at=clock() + timedelta(
            minutes=2)))
        s.commit()
    google.token_requests.clear()
    assert isinstance(sync_calendar(session_factory, calendar_id, clock(), registry=registry), Synced)
    assert google.token_requests == [{"grant_type": "refresh_token"}]
    after = grant_of(session_factory, calendar_id)
    assert after.access_token != grant.access_token and after.expires_at > clock() + timedelta(minutes=30)
    assert after.refresh_token == grant.refresh_token  # Google keeps it


def test_a_revoked_grant_needs_reconnecting_tells_the_business_once_and_keeps_the_busy_time(
        google, registry, service, session_factory, clinic, clock):
    google.add("Dentist", at(11), at(12))
    calendar_id = connect(google, registry, session_factory, clinic, clock())
    assert isinstance(sync_calendar(session_factory, calendar_id, clock(), registry=registry), Synced)
    google.revoke_all()  # the staff member removed nextslot's access in their Google account
    google.cancel(next(e["id"] for e in google.live()))  # and the dentist is off: unseen now
    result = sync_calendar(session_factory, calendar_id, clock(), registry=registry)
    assert isinstance(result, SyncFailed)  # the access token was refused, so the next use refreshes
    result = sync_calendar(session_factory, calendar_id, clock(), registry=registry)
    assert isinstance(result, SyncFailed) and "invalid_grant" in result.error
    assert calendar(session_factory, calendar_id).status == "needs_reconnect"
    assert busy(session_factory, calendar_id) == [(at(11), at(12))]  # stale never unblocks
    assert at(11) not in okafor_starts(service, clinic)
    later = clock() + timedelta(hours=1)
    assert [r for r in sync_all(session_factory, later, registry=registry) if r.calendar_id == calendar_id] == []
    grant = grant_of(session_factory, calendar_id)
    assert needs_reconnect(session_factory, grant.id, "invalid_grant", later) is False  # told already
    with pytest.raises(GrantRefused):
        access_token(session_factory, registry.box, grant.id, registry.providers["google"].oauth.refresh, later)
    with session_factory() as s:
        notices = s.scalars(select(Notification).where(Notification.business_id == clinic,
                                                       Notification.kind == "business_calendar_reconnect")).all()
    assert len(notices) == 1 and notices[0].payload["staff"] == "Dr Femi Okafor"
    assert notices[0].payload["account"] == "okafor@example.com"
    # connecting again resumes from where the calendar was: the grant is active and the sync frees the time
    assert connect(google, registry, session_factory, clinic, clock()) == calendar_id
    assert isinstance(sync_calendar(session_factory, calendar_id, clock(), registry=registry), Synced)
    assert busy(session_factory, calendar_id) == []


def test_an_outage_at_google_keeps_the_busy_time(google, registry, session_factory, clinic, clock):
    google.add("Dentist", at(11), at(12))
    calendar_id = connect(google, registry, session_factory, clinic, clock())
    assert isinstance(sync_calendar(session_factory, calendar_id, clock(), registry=registry), Synced)
    google.down = True
    result = sync_calendar(session_factory, calendar_id, clock(), registry=registry)
    assert isinstance(result, SyncFailed) and "503" in result.error
    assert busy(session_factory, calendar_id) == [(at(11), at(12))]
    assert calendar(session_factory, calendar_id).status == "active"  # an outage is not a refusal
    google.down = False
    assert isinstance(sync_calendar(session_factory, calendar_id, clock(), registry=registry), Synced)


def test_pages_of_events_are_all_read(google, registry, session_factory, clinic, clock):
    for day in range(5):
        google.add(f"Visit {day}", at(11, day=MON + timedelta(days=day)), at(12, day=MON + timedelta(days=day)))
    google.page_size = 2
    try:
        calendar_id = connect(google, registry, session_factory, clinic, clock())
        assert isinstance(sync_calendar(session_factory, calendar_id, clock(), registry=registry), Synced)
    finally:
        google.page_size = 2500
    assert len(busy(session_factory, calendar_id)) == 5


def test_a_new_server_key_makes_the_grant_need_reconnecting(google, session_factory, clinic, clock):
    first = build_registry(settings_for(google, calendar_push=False), SECRET)
    calendar_id = connect(google, first, session_factory, clinic, clock())
    with session_factory() as s:  # force a refresh: the stored refresh token must be opened
        s.execute(update(CalendarGrant).values(expires_at=clock()).where(
            CalendarGrant.id == s.get(ExternalCalendar, calendar_id).grant_id))
        s.commit()
    other = build_registry(settings_for(google, calendar_push=False), "a-different-secret")
    result = sync_calendar(session_factory, calendar_id, clock(), registry=other)
    assert isinstance(result, SyncFailed) and "undecryptable" in result.error
    assert calendar(session_factory, calendar_id).status == "needs_reconnect"


def test_google_times_are_read_as_instants(google, registry, session_factory, clinic, clock):
    """An event given in another zone lands on the right instant."""
    google.add("Call", {"dateTime": "2026-11-23T12:00:00+01:00", "timeZone": "Europe/Paris"},
               {"dateTime": "2026-11-23T13:00:00+01:00", "timeZone": "Europe/Paris"})
    calendar_id = connect(google, registry, session_factory, clinic, clock())
    sync_calendar(session_factory, calendar_id, clock(), registry=registry)
    assert busy(session_factory, calendar_id) == [(datetime(2026, 11, 23, 11, tzinfo=UTC),
                                                   datetime(2026, 11, 23, 12, tzinfo=UTC))]


# --- push: watch channels -------------------------------------------------------------------------


def test_a_push_makes_the_calendar_due_at_once_and_forged_or_unknown_ones_are_refused(
        google, session_factory, clinic, clock, live_server):
    port = free_port()
    settings = settings_for(google, public_url=f"http://127.0.0.1:{port}")
    registry = build_registry(settings, SECRET)
    with live_server(frozen=True, settings=settings, port=port):
        calendar_id = connect(google, registry, session_factory, clinic, clock())
        assert isinstance(sync_calendar(session_factory, calendar_id, clock(), registry=registry), Synced)
        [channel] = google.channels.values()
        assert channel["address"] == f"http://127.0.0.1:{port}/webhooks/calendars/google"
        row = calendar(session_factory, calendar_id)
        assert row.channel_id == channel["id"] and row.channel_secret_hash != channel["token"]  # a hash only
        assert sync_all(session_factory, clock(), registry=registry, pushed_only=True) == []  # nothing pushed yet

        assert google.notify(state="sync") == [200]  # Google confirming the new channel: nothing changed
        assert calendar(session_factory, calendar_id).pushed_at is None
        assert google.notify(token="not-the-channel-token") == [403]
        assert calendar(session_factory, calendar_id).pushed_at is None
        unknown = httpx2.post(f"http://127.0.0.1:{port}/webhooks/calendars/google", timeout=10,
                              headers={"X-Goog-Channel-ID": "someone-elses", "X-Goog-Channel-Token": "x",
                                       "X-Goog-Resource-State": "exists"})
        assert unknown.status_code == 404

        google.add("Dentist", at(11), at(12))  # pushes
        assert google.notifications[-1] == 200
        assert calendar(session_factory, calendar_id).pushed_at is not None
        results = sync_all(session_factory, clock(), registry=registry, pushed_only=True)
        assert [r.calendar_id for r in results] == [calendar_id] and results[0].read == "changes"
        assert busy(session_factory, calendar_id) == [(at(11), at(12))]
        assert calendar(session_factory, calendar_id).pushed_at is None


def test_a_channel_about_to_run_out_is_renewed_and_the_old_one_stopped(google, session_factory, clinic, clock):
    registry = build_registry(settings_for(google, public_url="https://nextslot.example"), SECRET)
    calendar_id = connect(google, registry, session_factory, clinic, clock())
    sync_calendar(session_factory, calendar_id, clock(), registry=registry)
    first = calendar(session_factory, calendar_id)
    assert first.channel_id in google.channels
    sync_calendar(session_factory, calendar_id, clock(), registry=registry)
    assert calendar(session_factory, calendar_id).channel_id == first.channel_id  # a week left: kept
    later = first.channel_expires_at - timedelta(hours=12)
    assert isinstance(sync_calendar(session_factory, calendar_id, later, registry=registry), Synced)
    renewed = calendar(session_factory, calendar_id)
    assert renewed.channel_id != first.channel_id and list(google.channels) == [renewed.channel_id]
    assert renewed.channel_expires_at > first.channel_expires_at


def test_a_pushed_change_blocks_the_slot_within_seconds_through_the_schedulers_job(
        google, session_factory, service, clinic, clock, live_server):
    """The scheduler's pushed-calendars job at its default interval (2 s) against the live webhook: from the
    moment Google calls us to the slot being gone from find_slots."""
    import threading
    import time

    from nextslot.reminders.scheduler import sync_calendars

    port = free_port()
    settings = settings_for(google, public_url=f"http://127.0.0.1:{port}")
    registry = build_registry(settings, SECRET)
    with live_server(frozen=True, settings=settings, port=port):
        calendar_id = connect(google, registry, session_factory, clinic, clock())
        assert isinstance(sync_calendar(session_factory, calendar_id, clock(), registry=registry), Synced)
        stop = threading.Event()

        def job() -> None:  # what APScheduler runs every dispatch_interval_seconds
            while not stop.wait(settings.dispatch_interval_seconds):
                sync_calendars(service, timedelta(minutes=5), registry, pushed_only=True)

        worker = threading.Thread(target=job, daemon=True)
        worker.start()
        try:
            pushed = time.monotonic()
            google.add("Dentist", at(11), at(12))
            while at(11) in okafor_starts(service, clinic):
                assert time.monotonic() - pushed < 20, "the pushed change was not read"
                time.sleep(0.1)
            blocked_after = time.monotonic() - pushed
        finally:
            stop.set()
            worker.join(10)
    print(f"pushed change blocked the slot after {blocked_after:.2f} s")
    assert blocked_after < settings.dispatch_interval_seconds + 5


def test_the_scheduler_reads_pushed_calendars_and_writes_bookings_at_the_dispatch_interval(service):
    from nextslot.reminders.scheduler import build_scheduler

    class Idle:
        def give_up_waiting(self) -> None: ...

        def dispatch_due(self) -> int:
            return 0

    scheduler = build_scheduler(Settings(dispatch_interval_seconds=2), service, Idle())
    pushed, writes = scheduler.get_job("pushed_calendars"), scheduler.get_job("calendar_writes")
    assert pushed.trigger.interval == writes.trigger.interval == timedelta(seconds=2)
    assert pushed.args[3] is True  # pushed calendars only: the minute job reads the rest


def test_the_business_is_emailed_once_that_a_calendar_needs_reconnecting(
        google, registry, session_factory, make_business, clock):
    from nextslot.reminders.dispatcher import Dispatcher
    from nextslot.reminders.scheduler import drain as drain_all
    from tests.reminders.test_dispatcher import ScriptedChannel

    inbox = f"frontdesk-{uuid.uuid4().hex[:8]}@riverside-clinic.example"  # other tests' notices share the outbox
    clinic = make_business("clinic", email=inbox)
    calendar_id = connect(google, registry, session_factory, clinic, clock())
    grant = grant_of(session_factory, calendar_id)
    assert needs_reconnect(session_factory, grant.id, "invalid_grant", clock()) is True
    assert needs_reconnect(session_factory, grant.id, "invalid_grant", clock()) is False
    email = ScriptedChannel("email")
    drain_all(Dispatcher(session_factory, {"email": email}, clock=clock).dispatch_due)
    [message] = [m for m in email.sent if m.to == inbox]
    assert message.subject == "A staff calendar needs reconnecting - Riverside Clinic"
    assert "Dr Femi Okafor's Google calendar (okafor@example.com) refused" in message.body
    assert "invalid_grant" in message.body and "still blocks bookings" in message.body
    assert all(t not in message.body for t in google.refresh_tokens)  # no token in the message


def test_two_workers_refreshing_one_grant_at_once_both_get_a_working_token(
        google, registry, session_factory, clinic, clock):
    from concurrent.futures import ThreadPoolExecutor

    calendar_id = connect(google, registry, session_factory, clinic, clock())
    grant = grant_of(session_factory, calendar_id)
    with session_factory() as s:
        s.execute(update(CalendarGrant).where(CalendarGrant.id == grant.id).values(expires_at=clock()))
        s.commit()
    refresh = registry.providers["google"].oauth.refresh
    with ThreadPoolExecutor(2) as pool:
        tokens = list(pool.map(lambda _: access_token(session_factory, registry.box, grant.id, refresh, clock()),
                               range(2)))
    assert all(t in google.access_tokens for t in tokens)  # each caller got a token Google takes
    stored = TokenBox(SECRET).open(grant_of(session_factory, calendar_id).access_token)
    assert stored in tokens and grant_of(session_factory, calendar_id).status == "active"
