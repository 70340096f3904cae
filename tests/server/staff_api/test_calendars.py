"""/v1/calendars: connect a CalDAV calendar, list calendars (no password ever answered back), disconnect."""
from __future__ import annotations

from sqlalchemy import select

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
        assert s.get(ExternalCalendar, calendar_id).write_back is False

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
