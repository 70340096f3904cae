"""Round 11: calendar push notifications (Google watch channels, Graph subscriptions) sent by an attacker, OAuth
tokens kept out of the logs, grants and the server's own client secret, and /v1/calendars across businesses: the
real server on loopback (or in-process) and the fakes of Google and Graph."""
from __future__ import annotations

import io
import logging

import httpx2
import pytest
from sqlalchemy import func, select, update

from nextslot.calendars.providers import build_registry
from nextslot.calendars.sync import Synced, SyncFailed, sync_calendar
from nextslot.settings import Settings
from nextslot.storage.tables import CalendarGrant, ExternalCalendar, Notification, Resource
from nextslot.telemetry.logs import configure_logging
from tests.calendars import test_google, test_microsoft
from tests.conftest import free_port


@pytest.fixture
def clinic(make_business) -> int:
    return make_business("clinic")


@pytest.fixture
def debug_logs():
    """The server's own log set-up (plain text, here into a buffer) at DEBUG, the root logger restored after."""
    root = logging.getLogger()
    kept = (list(root.handlers), root.level)
    levels = {name: logger.level for name, logger in logging.root.manager.loggerDict.items()
              if isinstance(logger, logging.Logger)}
    configure_logging("DEBUG", "text")
    buffer = io.StringIO()
    root.handlers[0].setStream(buffer)
    try:
        yield buffer.getvalue
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in kept[0]:
            root.addHandler(handler)
        root.setLevel(kept[1])
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def test_no_google_token_reaches_the_logs_even_at_debug(google, session_factory, clinic, clock, debug_logs):
    registry = build_registry(test_google.settings_for(google, calendar_push=False), test_google.SECRET)
    google.add("Dentist", test_google.MON.replace(hour=11), test_google.MON.replace(hour=12))
    calendar_id = test_google.connect(google, registry, session_factory, clinic, clock())
    google.expire_access_tokens()  # the next sync is refused, then refreshes
    assert isinstance(sync_calendar(session_factory, calendar_id, clock(), registry=registry), SyncFailed)
    assert isinstance(sync_calendar(session_factory, calendar_id, clock(), registry=registry), Synced)
    google.revoke_all()
    sync_calendar(session_factory, calendar_id, clock(), registry=registry)
    sync_calendar(session_factory, calendar_id, clock(), registry=registry)
    logged = debug_logs()
    assert "refresh" in logged.lower() or "calendar" in logged  # the logs were captured
    secrets = [*google.refresh_tokens, *google.access_tokens]
    assert secrets and not [t for t in secrets if t in logged]


def test_no_microsoft_token_reaches_the_logs_even_at_debug(microsoft, session_factory, clinic, clock, debug_logs):
    registry = build_registry(test_microsoft.settings_for(microsoft, calendar_push=False), test_microsoft.SECRET)
    calendar_id = test_microsoft.connect(microsoft, registry, session_factory, clinic, clock())
    with session_factory() as s:  # due for a refresh
        s.execute(update(CalendarGrant).values(expires_at=clock()))
        s.commit()
    assert isinstance(sync_calendar(session_factory, calendar_id, clock(), registry=registry), Synced)
    secrets = [*microsoft.refresh_tokens, *microsoft.access_tokens]
    microsoft.revoke_all()
    with session_factory() as s:
        s.execute(update(CalendarGrant).values(expires_at=clock()))
        s.commit()
    assert isinstance(sync_calendar(session_factory, calendar_id, clock(), registry=registry), SyncFailed)
    logged = debug_logs()
    assert "calendar grant" in logged  # the logs were captured
    assert len(secrets) >= 3 and not [t for t in secrets if t in logged]


# --- push notifications from outside ---------------------------------------------------------------


def pushed(session_factory, calendar_id: int):
    with session_factory() as s:
        return s.get(ExternalCalendar, calendar_id).pushed_at


def test_another_businesss_channel_id_or_secret_wakes_no_calendar_and_says_nothing(
        google, microsoft, session_factory, make_business, clock, live_server):
    """Two clinics' Google calendars, and a Graph subscription: every mix of one's channel id with another's
    secret, or a channel id on the other provider's route, is refused, marks nothing, and names no business."""
    port = free_port()
    settings = Settings(**google.settings(), **microsoft.settings(), secret_key=test_google.SECRET,
                        allow_private_targets=True, public_url=f"http://127.0.0.1:{port}")
    registry = build_registry(settings, test_google.SECRET)
    ours, theirs = make_business("clinic"), make_business("clinic")
    base = f"http://127.0.0.1:{port}/webhooks/calendars"
    with live_server(frozen=True, settings=settings, port=port):
        mine = test_google.connect(google, registry, session_factory, ours, clock())
        assert isinstance(sync_calendar(session_factory, mine, clock(), registry=registry), Synced)
        other = test_google.connect(google, registry, session_factory, theirs, clock())
        assert isinstance(sync_calendar(session_factory, other, clock(), registry=registry), Synced)
        graph = test_microsoft.connect(microsoft, registry, session_factory, theirs, clock())
        assert isinstance(sync_calendar(session_factory, graph, clock(), registry=registry), Synced)
        channel = {c["id"]: c for c in google.channels.values()}
        with session_factory() as s:
            mine_id, other_id, graph_id = (s.get(ExternalCalendar, i).channel_id for i in (mine, other, graph))
        [subscription] = microsoft.subscriptions.values()

        def google_push(channel_id: str, token: str) -> httpx2.Response:
            return httpx2.post(f"{base}/google", timeout=10, headers={
                "X-Goog-Channel-ID": channel_id, "X-Goog-Channel-Token": token, "X-Goog-Resource-State": "exists"})

        answers = [
            google_push(mine_id, channel[other_id]["token"]),  # our channel, their secret
            google_push(other_id, channel[mine_id]["token"]),
            google_push(mine_id, ""),  # no secret at all
            google_push(graph_id, subscription["clientState"]),  # a Graph subscription on Google's route
            httpx2.post(f"{base}/microsoft", timeout=10, json={"value": [  # a Google channel on Graph's route
                {"subscriptionId": mine_id, "clientState": channel[mine_id]["token"]}]}),
            httpx2.post(f"{base}/microsoft", timeout=10, json={"value": [
                {"subscriptionId": graph_id, "clientState": channel[other_id]["token"]},
                {"subscriptionId": graph_id}, {"subscriptionId": graph_id, "clientState": None},
                {"subscriptionId": [graph_id], "clientState": subscription["clientState"]}]}),
        ]
        assert [a.status_code for a in answers] == [403, 403, 403, 404, 404, 404]  # any unknown one: 404
        for answer in answers:
            assert str(ours) not in answer.text and str(theirs) not in answer.text and "clinic" not in answer.text
        assert [pushed(session_factory, i) for i in (mine, other, graph)] == [None, None, None]

        assert google_push(mine_id, channel[mine_id]["token"]).status_code == 200  # the real one, for contrast
        assert pushed(session_factory, mine) is not None and pushed(session_factory, other) is None


def test_odd_graph_bodies_are_refused_without_an_error_page(session_factory, live_server):
    hook = "/webhooks/calendars/microsoft"
    deep = b"[" * 100_000 + b"]" * 100_000
    bodies = [b"", b"null", b"[]", b'{"value": {}}', b'{"value": "x"}', b"\xff\xfe", deep, b'{"value": 1e999999}',
              b'{"value": [' + b"9" * 5000 + b"]}"]
    with live_server() as server:
        answers = [httpx2.post(server.url + hook, content=body, timeout=10) for body in bodies]
        big = httpx2.post(server.url + hook, timeout=10, json={"value": [{"subscriptionId": "x" * 100,
                                                                           "clientState": "y"}] * 20_000})
        many = httpx2.post(server.url + hook, timeout=10, json={"value": [1, "a", None, []]})
    assert [a.status_code for a in answers] == [400] * len(bodies)
    assert all(a.json()["error"]["code"] == "invalid_notification" for a in answers)
    assert big.status_code in (404, 413)  # unknown subscriptions, or the body limit: never a 500
    assert many.status_code == 202  # nothing to act on: Graph is not asked to retry


def test_a_channel_of_a_disconnected_calendar_is_unknown(google, session_factory, clinic, clock, live_server):
    from nextslot.calendars.connections import disconnect

    port = free_port()
    settings = test_google.settings_for(google, public_url=f"http://127.0.0.1:{port}")
    registry = build_registry(settings, test_google.SECRET)
    with live_server(frozen=True, settings=settings, port=port):
        calendar_id = test_google.connect(google, registry, session_factory, clinic, clock())
        assert isinstance(sync_calendar(session_factory, calendar_id, clock(), registry=registry), Synced)
        [kept] = [dict(c) for c in google.channels.values()]
        assert isinstance(disconnect(session_factory, registry, clinic, calendar_id, True, "", clock()), str)
        assert google.channels == {}  # stopped at Google
        google.channels[kept["id"]] = kept  # a late call from Google, or a replay
        assert google.notify() == [404]


# --- grants: the server's own client credentials ---------------------------------------------------


def notices(session_factory, business_id: int) -> int:
    with session_factory() as s:
        return s.scalar(select(func.count()).select_from(Notification).where(
            Notification.business_id == business_id, Notification.kind == "business_calendar_reconnect"))


@pytest.mark.parametrize("provider", ["google", "microsoft"])
def test_a_wrong_or_expired_client_secret_on_the_server_does_not_make_every_grant_need_reconnecting(
        provider, google, microsoft, session_factory, clinic, clock):
    """The operator mistypes NEXTSLOT_*_CLIENT_SECRET, or the Entra ID app's secret expires (they last two years
    at most): the token endpoint answers `invalid_client` to every refresh. That is the server's fault, not the
    staff member's grant: before the fix every calendar of every business turned "needs reconnecting" (and every
    business was told), so every staff member had to connect again once the secret was fixed."""
    module, fake = (test_google, google) if provider == "google" else (test_microsoft, microsoft)
    good = build_registry(module.settings_for(fake, calendar_push=False), module.SECRET)
    calendar_id = module.connect(fake, good, session_factory, clinic, clock())
    mistyped = module.settings_for(fake, calendar_push=False).model_copy(
        update={f"{provider}_client_secret": "a-mistyped-secret"})
    wrong = build_registry(mistyped, module.SECRET)
    with session_factory() as s:  # the access token is due for a refresh
        s.execute(update(CalendarGrant).values(expires_at=clock()))
        s.commit()
    result = sync_calendar(session_factory, calendar_id, clock(), registry=wrong)
    assert isinstance(result, SyncFailed) and "invalid_client" in result.error, result
    assert test_google.calendar(session_factory, calendar_id).status == "active"
    assert test_google.grant_of(session_factory, calendar_id).status == "active"
    assert notices(session_factory, clinic) == 0
    assert isinstance(sync_calendar(session_factory, calendar_id, clock(), registry=good), Synced)  # fixed


# --- /v1/calendars ---------------------------------------------------------------------------------


def test_every_calendar_the_api_connects_is_listed_and_no_other_businesss(service, make_business, api_key):
    """The API takes "the staff member's (or room's) key", and README says GET lists every calendar with its state:
    before the fix a room's calendar (or that of a staff member made inactive, still read and still blocking)
    was connected and synced but never listed, so it could not be seen, nor found to be disconnected."""
    from fastapi.testclient import TestClient

    from nextslot.server.app import create_app

    clinic, other = make_business("clinic"), make_business("clinic")
    ours, theirs = ({"Authorization": f"Bearer {api_key(b)}"} for b in (clinic, other))
    with TestClient(create_app(Settings(secret_key="staff-api-tests"), service=service)) as client:
        made = {key: client.post("/v1/calendars", headers=ours,
                                 json={"resource": key, "url": f"https://caldav.example/{key}/"})
                for key in ("room-1", "dr-okafor")}
        assert {k: m.status_code for k, m in made.items()} == {"room-1": 201, "dr-okafor": 201}
        listed = client.get("/v1/calendars", headers=ours).json()
        assert sorted((c["resource"], c["id"]) for c in listed) == sorted(
            (k, m.json()["id"]) for k, m in made.items())
        with service.session_factory() as s:  # Dr Okafor leaves; the calendar stays connected until disconnected
            s.execute(update(Resource).where(Resource.business_id == clinic, Resource.key == "dr-okafor")
                      .values(active=False))
            s.commit()
        assert len(client.get("/v1/calendars", headers=ours).json()) == 2
        room = made["room-1"].json()["id"]
        assert client.get("/v1/calendars", headers=theirs).json() == []
        assert client.delete(f"/v1/calendars/{room}", headers=theirs).status_code == 404
        assert client.delete(f"/v1/calendars/{room}", headers=ours).status_code == 204
