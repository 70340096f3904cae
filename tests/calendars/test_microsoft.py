"""Microsoft 365 calendars: the real msal and our Graph client (httpx2) against a loopback fake of Microsoft
identity and Microsoft Graph, with the real booking service on PostgreSQL."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qsl, urlsplit

import httpx2
import pytest
from sqlalchemy import select, update

from evals.fake_microsoft import FakeMicrosoft
from nextslot.calendars import connecting
from nextslot.calendars.providers import build_registry
from nextslot.calendars.sync import Synced, SyncFailed, sync_all, sync_calendar
from nextslot.calendars.tokens import TokenBox
from nextslot.settings import Settings
from nextslot.storage.tables import CalendarGrant, ExternalCalendar, Notification
from tests.calendars.test_google import calendar, grant_of, okafor
from tests.calendars.test_sync import MON, at, busy, okafor_starts
from tests.conftest import free_port

SECRET = "test-secret-key-for-microsoft-grants"


def settings_for(microsoft: FakeMicrosoft, **more) -> Settings:
    return Settings(**microsoft.settings(), secret_key=SECRET, allow_private_targets=True, **more)


@pytest.fixture
def registry(microsoft):
    return build_registry(settings_for(microsoft, calendar_push=False), SECRET)


@pytest.fixture
def clinic(make_business) -> int:
    return make_business("clinic")


def connect(microsoft, registry, session_factory, business_id: int, now) -> int:
    started = connecting.start(registry, SECRET, "microsoft", business_id, okafor(session_factory, business_id),
                               "http://127.0.0.1:9/console/calendars/callback", "session-1")
    back = microsoft.approve_url(started.url)
    done = connecting.finish(registry, SECRET, session_factory, started.sealed,
                             dict(parse_qsl(urlsplit(back).query)), "session-1", now)
    assert isinstance(done, tuple), done
    return done[0]


def test_connecting_with_msal_uses_pkce_and_keeps_the_tokens_encrypted(microsoft, registry, session_factory,
                                                                         clinic, clock):
    started = connecting.start(registry, SECRET, "microsoft", clinic, okafor(session_factory, clinic),
                               "http://127.0.0.1:9/cb", "session-1")
    asked = dict(parse_qsl(urlsplit(started.url).query))
    assert asked["code_challenge_method"] == "S256" and "offline_access" in asked["scope"]
    assert "Calendars.ReadWrite" in asked["scope"] and started.url.startswith(microsoft.url)
    calendar_id = connect(microsoft, registry, session_factory, clinic, clock())
    grant = grant_of(session_factory, calendar_id)
    assert grant.account == "okafor@clinic.example" and grant.provider == "microsoft"
    box = TokenBox(SECRET)
    assert box.open(grant.access_token) in microsoft.access_tokens
    assert box.open(grant.access_token) not in grant.access_token


def test_a_refused_consent_connects_nothing(microsoft, registry, session_factory, clinic, clock):
    started = connecting.start(registry, SECRET, "microsoft", clinic, okafor(session_factory, clinic),
                               "http://127.0.0.1:9/cb", "session-1")
    state = dict(parse_qsl(urlsplit(started.url).query))["state"]
    refused = connecting.finish(registry, SECRET, session_factory, started.sealed,
                                {"error": "access_denied", "state": state}, "session-1", clock())
    assert refused.code == "consent_refused"


def test_busy_time_follows_graph_events_series_all_day_free_tentative_cancelled_declined(
        microsoft, registry, service, session_factory, clinic, clock):
    microsoft.add("Dentist", at(11), at(12))
    microsoft.add_series("Stand-up", at(9, 30), at(10, 15), count=2)
    microsoft.add("Lunch", at(13), at(14), showAs="free")
    microsoft.add("Maybe", at(15), at(15, 30), showAs="tentative")
    microsoft.add("Called off", at(16), at(17), isCancelled=True)
    microsoft.add("Board", at(17), at(17, 30), responseStatus={"response": "declined"})
    microsoft.add_all_day("Holiday", "2026-11-25")
    calendar_id = connect(microsoft, registry, session_factory, clinic, clock())
    result = sync_calendar(session_factory, calendar_id, clock(), registry=registry)
    assert isinstance(result, Synced) and result.read == "window", result
    tue, wed, thu = MON + timedelta(days=1), MON + timedelta(days=2), MON + timedelta(days=3)
    assert busy(session_factory, calendar_id) == [
        (at(9, 30), at(10, 15)), (at(11), at(12)), (at(15), at(15, 30)), (at(9, 30, tue), at(10, 15, tue)),
        (wed, thu)]
    starts = okafor_starts(service, clinic)
    assert at(11) not in starts and at(13) in starts and at(16) in starts and at(17) in starts


def test_delta_links_bring_only_changes_and_an_expired_one_reads_the_window_again(
        microsoft, registry, session_factory, clinic, clock):
    dentist = microsoft.add("Dentist", at(11), at(12))
    calendar_id = connect(microsoft, registry, session_factory, clinic, clock())
    assert sync_calendar(session_factory, calendar_id, clock(), registry=registry).read == "window"
    assert sync_calendar(session_factory, calendar_id, clock(), registry=registry).read == "unchanged"
    microsoft.add("Physio", at(14), at(15))
    microsoft.remove(dentist)
    result = sync_calendar(session_factory, calendar_id, clock(), registry=registry)
    assert result.read == "changes" and result.fetched == 1
    assert busy(session_factory, calendar_id) == [(at(14), at(15))]
    microsoft.expire_delta_tokens()
    microsoft.add("Visit", at(16), at(17))
    result = sync_calendar(session_factory, calendar_id, clock(), registry=registry)
    assert result.read == "window" and busy(session_factory, calendar_id) == [(at(14), at(15)), (at(16), at(17))]


def test_many_pages_are_followed(microsoft, registry, session_factory, clinic, clock):
    for day in range(5):
        microsoft.add(f"Visit {day}", at(11, day=MON + timedelta(days=day)), at(12, day=MON + timedelta(days=day)),
                      push=False)
    microsoft.page_size = 2
    try:
        calendar_id = connect(microsoft, registry, session_factory, clinic, clock())
        assert isinstance(sync_calendar(session_factory, calendar_id, clock(), registry=registry), Synced)
    finally:
        microsoft.page_size = 200
    assert len(busy(session_factory, calendar_id)) == 5


def test_refresh_rotates_the_token_and_revocation_needs_reconnecting_once(
        microsoft, registry, session_factory, clinic, clock):
    microsoft.add("Dentist", at(11), at(12))
    calendar_id = connect(microsoft, registry, session_factory, clinic, clock())
    sync_calendar(session_factory, calendar_id, clock(), registry=registry)
    before = grant_of(session_factory, calendar_id)
    with session_factory() as s:
        s.execute(update(CalendarGrant).where(CalendarGrant.id == before.id).values(expires_at=clock()))
        s.commit()
    microsoft.token_requests.clear()
    assert isinstance(sync_calendar(session_factory, calendar_id, clock(), registry=registry), Synced)
    assert microsoft.token_requests == ["refresh_token"]
    after = grant_of(session_factory, calendar_id)
    box = TokenBox(SECRET)
    assert box.open(after.refresh_token) != box.open(before.refresh_token)  # Microsoft rotates it
    microsoft.revoke_all()
    assert isinstance(sync_calendar(session_factory, calendar_id, clock(), registry=registry), SyncFailed)
    result = sync_calendar(session_factory, calendar_id, clock(), registry=registry)
    assert isinstance(result, SyncFailed) and "invalid_grant" in result.error
    assert calendar(session_factory, calendar_id).status == "needs_reconnect"
    assert busy(session_factory, calendar_id) == [(at(11), at(12))]
    with session_factory() as s:
        assert len(s.scalars(select(Notification).where(Notification.business_id == clinic, Notification.kind ==
                                                        "business_calendar_reconnect")).all()) == 1


def test_an_outage_at_graph_keeps_the_busy_time(microsoft, registry, session_factory, clinic, clock):
    microsoft.add("Dentist", at(11), at(12))
    calendar_id = connect(microsoft, registry, session_factory, clinic, clock())
    sync_calendar(session_factory, calendar_id, clock(), registry=registry)
    microsoft.down = True
    result = sync_calendar(session_factory, calendar_id, clock(), registry=registry)
    assert isinstance(result, SyncFailed) and "503" in result.error
    assert busy(session_factory, calendar_id) == [(at(11), at(12))]


def test_subscriptions_are_validated_notifications_checked_and_renewed(microsoft, session_factory, clinic, clock,
                                                                       live_server):
    port = free_port()
    settings = settings_for(microsoft, public_url=f"http://127.0.0.1:{port}")
    registry = build_registry(settings, SECRET)
    hook = f"http://127.0.0.1:{port}/webhooks/calendars/microsoft"
    with live_server(frozen=True, settings=settings, port=port):
        calendar_id = connect(microsoft, registry, session_factory, clinic, clock())
        assert isinstance(sync_calendar(session_factory, calendar_id, clock(), registry=registry), Synced)
        [sub] = microsoft.subscriptions.values()  # made: our URL echoed Graph's validationToken
        assert sub["notificationUrl"] == hook and sub["resource"] == "me/events"
        row = calendar(session_factory, calendar_id)
        assert row.channel_id == sub["id"] and row.channel_secret_hash != sub["clientState"]

        assert microsoft.notify(client_state="guessed") == [403]
        assert microsoft.notify(subscription_id="not-ours") == [404]
        assert calendar(session_factory, calendar_id).pushed_at is None
        assert httpx2.post(hook, content=b"not json", timeout=10).status_code == 400

        microsoft.add("Dentist", at(11), at(12))  # notifies
        assert microsoft.notifications[-1] == 202
        results = sync_all(session_factory, clock(), registry=registry, pushed_only=True)
        assert [r.calendar_id for r in results] == [calendar_id]
        assert busy(session_factory, calendar_id) == [(at(11), at(12))]

        later = row.channel_expires_at - timedelta(hours=6)
        assert isinstance(sync_calendar(session_factory, calendar_id, later, registry=registry), Synced)
        renewed = calendar(session_factory, calendar_id)
        assert renewed.channel_id != row.channel_id and list(microsoft.subscriptions) == [renewed.channel_id]


def test_the_validation_handshake_echoes_the_token_as_plain_text(live_server):
    with live_server() as server:
        answer = httpx2.post(f"{server.url}/webhooks/calendars/microsoft?validationToken=Validation%3A+abc",
                             timeout=10)
    assert answer.status_code == 200 and answer.text == "Validation: abc"
    assert answer.headers["content-type"].startswith("text/plain")


def test_calendars_of_a_grant_are_read_with_it(session_factory, microsoft, registry, clinic, clock):
    calendar_id = connect(microsoft, registry, session_factory, clinic, clock())
    with session_factory() as s:
        row = s.get(ExternalCalendar, calendar_id)
        assert row.provider == "microsoft" and row.grant_id is not None and row.username is None
