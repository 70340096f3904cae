"""/v1/calendar: a resource's day shows its working time after time off, its bookings with their buffers,
live holds and busy time from its own calendar."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.dialects.postgresql import Range

from nextslot.calendars.connections import add_calendar
from nextslot.core.results import Held
from nextslot.schemas.commands import HoldCreate
from nextslot.storage.tables import ExternalBusy, Resource
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.server.staff_api.conftest import TUESDAY, at, phone


def span(start: str, end: str) -> dict[str, str]:
    return {"starts_at": f"{TUESDAY}T{start}:00Z", "ends_at": f"{TUESDAY}T{end}:00Z"}


def test_a_day_with_a_booking_a_hold_a_buffer_time_off_and_outside_busy_time(api, clinic, service, session_factory):
    http = api(clinic)
    code = http.post("/v1/bookings", json={"service": "consultation", "starts_at": at("09:00"),
                                           "resources": ["dr-patel"],
                                           "customer": {"name": "Ann Lee", "phone": phone(40)}}).json()["code"]
    held = service.hold(clinic, HoldCreate(service="ultrasound", starts_at=datetime.fromisoformat(at("10:00")),
                                           resources=["dr-patel"]))
    assert isinstance(held, Held), held
    http.post("/v1/resources/dr-patel/exceptions", json={"kind": "closed", "date": TUESDAY,
                                                         "hours": ["14:00-16:00"], "reason": "Training"})
    calendar_id = add_calendar(SqlAlchemyUnitOfWork(session_factory), clinic, "dr-patel", "https://dav.example/p/")
    with session_factory() as s:
        patel = s.query(Resource.id).filter_by(business_id=clinic, key="dr-patel").scalar()
        s.add(ExternalBusy(business_id=clinic, resource_id=patel, calendar_id=calendar_id,
                           during=Range(datetime.fromisoformat(at("11:00")), datetime.fromisoformat(at("11:30")))))
        s.commit()

    answer = http.get("/v1/calendar", params={"date": TUESDAY, "resource": "dr-patel"})
    assert answer.status_code == 200, answer.text
    day = answer.json()
    assert (day["date"], day["days"], day["timezone"]) == (TUESDAY, 1, "Europe/London")
    [patel_day] = day["resources"]
    assert patel_day["key"] == "dr-patel"
    assert patel_day["working"] == [span("08:30", "12:30"), span("13:30", "14:00"), span("16:00", "18:00")]
    assert patel_day["time_off"] == [{**span("14:00", "16:00"), "reason": "Training", "business_wide": False}]
    [booking] = patel_day["bookings"]
    assert booking == {**span("09:00", "09:20"), "code": code, "status": "booked", "service": "consultation",
                       "service_name": "GP consultation", "customer_name": "Ann Lee",
                       "occupied": span("09:00", "09:25")}  # the 5-minute buffer after
    [hold] = patel_day["holds"]
    assert hold["id"] == held.hold.id and hold["service"] == "ultrasound"
    assert hold["occupied"] == span("09:50", "10:40") and hold["expires_at"] == "2026-11-23T08:05:00Z"
    assert patel_day["external_busy"] == [span("11:00", "11:30")]

    everyone = http.get("/v1/calendar", params={"date": TUESDAY, "days": 2}).json()["resources"]
    assert [r["key"] for r in everyone] == ["dr-patel", "dr-okafor", "room-1", "room-2", "scanner"]
    rooms = {r["key"]: r for r in everyone}
    assert [b["code"] for b in rooms["room-1"]["bookings"]] == [code]
    assert rooms["scanner"]["holds"] and rooms["dr-okafor"]["working"] == [
        {"starts_at": "2026-11-25T10:00:00Z", "ends_at": "2026-11-25T18:00:00Z"}]  # off Tuesdays, in Wednesday


def test_a_closure_shows_as_business_wide_time_off_and_bad_days_are_refused(api, clinic):
    http = api(clinic)
    christmas = http.get("/v1/calendar", params={"date": "2026-12-25", "resource": "room-1"}).json()
    [room] = christmas["resources"]
    assert room["working"] == [] and room["time_off"][0]["business_wide"] is True
    assert room["time_off"][0]["reason"] == "Christmas"
    assert http.get("/v1/calendar", params={"date": TUESDAY, "days": 8}).status_code == 422
    assert http.get("/v1/calendar", params={"date": "9999-12-31"}).status_code == 422
    assert http.get("/v1/calendar", params={"date": TUESDAY, "resource": "nobody"}).status_code == 404
