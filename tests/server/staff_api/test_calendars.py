"""/v1/calendars: connect a CalDAV calendar, list calendars (no password ever answered back), disconnect."""
from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from nextslot.calendars.providers import build_registry
from nextslot.calendars.sync import opened, source_of
from nextslot.calendars.tokens import Undecryptable
from nextslot.settings import Settings
from nextslot.storage.tables import ExternalCalendar


def test_staff_connect_a_caldav_calendar_list_it_and_disconnect_it(api, clinic, make_business, session_factory):
    client = api(clinic)
    made = client.post("/v1/calendars", json={"resource": "dr-okafor", "url": "https://caldav.example/okafor/work/",
                                              "username": "okafor", "password": "app-password-1",
                                              "write_back": False})
    assert made.status_code == 201, made.text
    calendar_id = made.json()["id"]
    listed = client.get("/v1/calendars")
    assert "app-password-1" not in listed.text
    [row] = listed.json()
    assert row | {"last_synced_at": None} == {
        "id": calendar_id, "resource": "dr-okafor", "provider": "caldav", "account": "okafor", "status": "active",
        "last_synced_at": None, "last_error": None, "writes_waiting": 0, "writes_failed": 0, "push": False}
    with session_factory() as s:
        row = s.get(ExternalCalendar, calendar_id)
        assert row.write_back is False
        assert row.password.startswith("enc:v1:") and "app-password-1" not in row.password  # encrypted at rest
        source = source_of(s, row, ZoneInfo("UTC"))
    registry = build_registry(Settings(secret_key="staff-api-tests"), "staff-api-tests")
    assert opened(session_factory, registry, source, datetime.now(UTC)).password == "app-password-1"
    with pytest.raises(Undecryptable):  # another server's key opens nothing
        opened(session_factory, build_registry(Settings(), "another-key"), source, datetime.now(UTC))

    other = api(make_business("clinic"))
    assert other.get("/v1/calendars").json() == []
    assert other.delete(f"/v1/calendars/{calendar_id}").status_code == 404
    assert client.delete(f"/v1/calendars/{calendar_id}").status_code == 204
    assert client.delete(f"/v1/calendars/{calendar_id}").status_code == 404
    with session_factory() as s:
        assert s.scalars(select(ExternalCalendar).where(ExternalCalendar.business_id == clinic)).all() == []


def test_a_calendar_for_an_unknown_resource_or_on_an_internal_address_is_refused(api, clinic):
    client = api(clinic)
    unknown = client.post("/v1/calendars", json={"resource": "dr-nobody", "url": "https://caldav.example/x/"})
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_resource"
    internal = client.post("/v1/calendars", json={"resource": "dr-okafor", "url": "http://169.254.169.254/cal/"})
    assert internal.status_code == 422 and internal.json()["error"]["code"] == "invalid_url"
