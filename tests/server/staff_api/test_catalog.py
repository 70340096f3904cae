"""The catalog through /v1: resources, hours, exceptions, closures, services and the whole config, every edit
through `apply_config`, and what availability then offers."""
from __future__ import annotations

from datetime import datetime

from nextslot.core.results import Booked, Rejected
from nextslot.schemas.commands import BookingCreate, CustomerIn, SlotQuery
from tests.server.staff_api.conftest import TUESDAY, at


def starts(service, business: int, day: str, *resources: str, kind: str = "consultation") -> list[str]:
    """Open start times on a day (London is on UTC in November)."""
    found = service.find_slots(business, SlotQuery(service=kind, starts_from=datetime.fromisoformat(at("00:00", day)),
                                                   until=datetime.fromisoformat(at("23:59", day)),
                                                   resources=list(resources)))
    assert not isinstance(found, Rejected), found
    return [s.starts_at.utc.strftime("%H:%M") for s in found.slots]


def editable(entry: dict) -> dict:
    """What GET answered, as a PUT body."""
    return {k: v for k, v in entry.items() if k != "active"}


def test_resources_come_back_as_in_the_config_file_and_a_put_creates_then_replaces(api, clinic):
    http = api(clinic)
    listed = http.get("/v1/resources").json()["resources"]
    assert [r["key"] for r in listed] == ["dr-patel", "dr-okafor", "room-1", "room-2", "scanner"]
    okafor = http.get("/v1/resources/dr-okafor").json()
    assert okafor["hours"]["sat"] == ["09:00-13:00"] and okafor["active"] is True
    [leave] = http.get("/v1/resources/dr-okafor/exceptions").json()["exceptions"]  # five days: one period
    assert (leave["kind"], leave["reason"]) == ("closed", "Annual leave")  # dates: wall times, without an offset
    assert (leave["starts_at"], leave["ends_at"]) == ("2026-12-14T00:00:00", "2026-12-19T00:00:00")

    nurse = {"key": "nurse-kim", "name": "Nurse Kim", "kind": "staff", "hours": {"tue": ["09:00-12:00"]}}
    created = http.put("/v1/resources/nurse-kim", json=nurse)
    assert created.status_code == 201 and created.json()["hours"] == {"tue": ["09:00-12:00"]}
    renamed = http.put("/v1/resources/nurse-kim", json={"key": "nurse-kim", "name": "Nurse Jo Kim", "kind": "staff"})
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Nurse Jo Kim" and renamed.json()["hours"] == {"tue": ["09:00-12:00"]}  # kept
    mismatch = http.put("/v1/resources/nurse-kim", json={**nurse, "key": "nurse-lee"})
    assert mismatch.status_code == 422 and mismatch.json()["error"]["code"] == "key_mismatch"


def test_hours_time_off_and_closures_change_what_availability_offers(api, clinic, service):
    http = api(clinic)
    assert starts(service, clinic, TUESDAY, "dr-patel")[:2] == ["08:30", "08:45"]
    hours = http.put("/v1/resources/dr-patel/hours", json={"hours": {"tue": ["14:00-16:00"]}})
    assert hours.status_code == 200 and hours.json() == {"hours": {"tue": ["14:00-16:00"]}}
    assert starts(service, clinic, TUESDAY, "dr-patel") == ["14:00", "14:15", "14:30", "14:45", "15:00", "15:15",
                                                            "15:30"]
    added = http.post("/v1/resources/dr-patel/exceptions",
                      json={"kind": "closed", "date": TUESDAY, "hours": ["14:00-15:00"], "reason": "Training"})
    assert added.status_code == 201
    [training] = added.json()["exceptions"]
    assert starts(service, clinic, TUESDAY, "dr-patel") == ["15:00", "15:15", "15:30"]
    left = http.delete(f"/v1/resources/dr-patel/exceptions/{training['id']}")
    assert left.status_code == 200 and left.json() == {"exceptions": []}
    assert starts(service, clinic, TUESDAY, "dr-patel")[0] == "14:00"
    gone = http.delete(f"/v1/resources/dr-patel/exceptions/{training['id']}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "unknown_exception"
    skipped = http.post("/v1/resources/dr-patel/exceptions",  # London's clocks skip 01:00-02:00 that night
                        json={"kind": "closed", "date": "2027-03-28", "hours": ["01:00-02:00"]})
    assert skipped.status_code == 422 and skipped.json()["error"]["field"] == "resources.0.exceptions.0"

    assert starts(service, clinic, "2026-11-25")  # Wednesday, before the closure
    closed = http.post("/v1/closures", json={"kind": "closed", "date": "2026-11-25", "reason": "Staff day"})
    assert closed.status_code == 201
    closures = closed.json()["exceptions"]
    assert [c["reason"] for c in closures] == ["Staff day", "Christmas", "New Year's Day"]
    assert starts(service, clinic, "2026-11-25") == []
    assert http.delete(f"/v1/closures/{closures[0]['id']}").status_code == 200
    assert starts(service, clinic, "2026-11-25")
    assert [c["reason"] for c in http.get("/v1/closures").json()["exceptions"]] == ["Christmas", "New Year's Day"]


def test_a_capacity_cut_below_existing_bookings_is_refused(api, make_business, service):
    garage = make_business("garage")
    for phone in ("+12125550181", "+12125550182"):  # two cars on the lifts at once
        made = service.book(garage, BookingCreate(
            service="oil-change", starts_at=datetime.fromisoformat("2026-11-24T10:00:00-05:00"),
            customer=CustomerIn(name="Ada", phone=phone), intake={"vehicle": "Van", "registration": "AB1"}))
        assert isinstance(made, Booked), made
    http = api(garage)
    bay = editable(http.get("/v1/resources/service-bay").json())
    cut = http.put("/v1/resources/service-bay", json={**bay, "capacity": 1})
    assert cut.status_code == 409 and cut.json()["error"]["code"] == "capacity_below_bookings"
    assert http.get("/v1/resources/service-bay").json()["capacity"] == 3
    two = http.put("/v1/resources/service-bay", json={**bay, "capacity": 2})
    assert two.status_code == 200 and two.json()["capacity"] == 2


def test_deactivation_keeps_the_rows_and_is_refused_while_an_active_service_needs_the_resource(api, clinic, service):
    http = api(clinic)
    in_use = http.post("/v1/resources/scanner/deactivate")
    assert in_use.status_code == 409 and in_use.json()["error"]["code"] == "resource_in_use"
    assert "ultrasound" in in_use.json()["error"]["message"]
    off = http.post("/v1/services/ultrasound/deactivate")
    assert off.status_code == 200 and off.json()["active"] is False
    assert http.post("/v1/resources/scanner/deactivate").json()["active"] is False
    assert [r["key"] for r in http.get("/v1/resources").json()["resources"] if not r["active"]] == ["scanner"]
    config = http.get("/v1/config").json()
    assert "scanner" not in [r["key"] for r in config["resources"]]
    assert [s["key"] for s in config["services"]] == ["consultation"]
    assert isinstance(service.find_slots(clinic, SlotQuery(service="ultrasound")), Rejected)
    edit = http.put("/v1/resources/scanner/hours", json={"hours": {}})
    assert edit.status_code == 409 and edit.json()["error"]["code"] == "resource_inactive"
    last = http.post("/v1/services/consultation/deactivate")
    assert last.status_code == 409 and last.json()["error"]["code"] == "last_service"

    ultrasound = editable(http.get("/v1/services/ultrasound").json())
    needs_scanner = http.put("/v1/services/ultrasound", json=ultrasound)
    assert needs_scanner.status_code == 422 and needs_scanner.json()["error"]["code"] == "invalid_config"
    scanner = editable(http.get("/v1/resources/scanner").json())
    assert http.put("/v1/resources/scanner", json=scanner).json()["active"] is True
    assert http.put("/v1/services/ultrasound", json=ultrasound).json()["active"] is True
    assert starts(service, clinic, TUESDAY, kind="ultrasound")


def test_a_service_put_carries_intake_questions_and_a_deposit_into_bookings(api, clinic, service):
    http = api(clinic)
    checkup = {"key": "checkup", "name": "Health check", "duration": 30, "step": 30,
               "requires": [{"label": "doctor", "one_of": ["dr-patel"]}],
               "intake": [{"key": "smoker", "label": "Do you smoke?", "type": "yes_no", "required": True}],
               "deposit": {"amount": "15.00", "currency": "GBP"}}
    created = http.put("/v1/services/checkup", json=checkup)
    assert created.status_code == 201, created.text
    assert created.json()["intake"][0]["key"] == "smoker" and created.json()["deposit"] == checkup["deposit"]
    listed = {s.key: s for s in service.list_services(clinic)}
    assert listed["checkup"].deposit.display == "£15.00"
    customer = {"name": "Ann", "phone": "+447900900020"}
    missing = http.post("/v1/bookings", json={"service": "checkup", "starts_at": at("09:00"), "customer": customer})
    assert missing.status_code == 422 and missing.json()["error"]["field"] == "intake.smoker"
    made = http.post("/v1/bookings", json={"service": "checkup", "starts_at": at("09:00"), "customer": customer,
                                           "intake": {"smoker": "no"}})
    assert made.status_code == 201 and made.json()["intake"] == {"smoker": False}
    assert made.json()["status"] == "pending_payment" and made.json()["payment"]["amount"]["amount_minor"] == 1500
    unknown = http.put("/v1/services/checkup", json={**checkup, "requires": [{"label": "x", "one_of": ["dr-who"]}]})
    assert unknown.status_code == 422 and "dr-who" in unknown.json()["error"]["message"]
    twice = http.put("/v1/services/checkup", json={**checkup, "requires": [{"label": "x",
                                                                           "one_of": ["dr-patel", "dr-patel"]}]})
    assert twice.status_code == 422 and "lists a resource twice" in twice.json()["error"]["message"]


def test_the_whole_config_round_trips_and_only_for_the_callers_own_business(api, clinic, make_business):
    http = api(clinic)
    config = http.get("/v1/config").json()
    assert config["hours"] == {} and all(r["hours"] is not None for r in config["resources"])
    assert config["business"]["email"] == "frontdesk@riverside-clinic.example"  # its own field, not in details
    assert "email" not in config["business"]["details"]
    config["business"]["name"] = "Riverside Clinic & Scans"
    applied = http.put("/v1/config", json=config)
    assert applied.status_code == 200 and applied.json() == config
    other = make_business("clinic")
    theirs = api(other).get("/v1/config").json()
    refused = http.put("/v1/config", json=theirs)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "slug_mismatch"
    assert api(other).get("/v1/config").json() == theirs


def test_a_config_whose_templates_fail_to_render_is_refused_with_every_problem_and_nothing_stored(api, clinic):
    http = api(clinic)
    before = http.get("/v1/config").json()
    config = {**before, "business": {**before["business"], "name": "Renamed", "details": {
        **before["business"]["details"],
        "templates": {"en": {"confirmation": "{{ 1/0 }}", "reminder": "See you {{ when }}"},
                      "es": {"reminder": "{% for i in range(10**9) %}{% for j in range(10**9) %}x{% endfor %}"
                                         "{% endfor %}"}}}}}
    answer = http.put("/v1/config", json=config)
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "invalid_config" and error["field"] == "business.details.templates.en.confirmation"
    assert [p["field"] for p in error["problems"]] == ["business.details.templates.en.confirmation",
                                                       "business.details.templates.es.reminder"]
    assert "divides by zero" in error["problems"][0]["message"] and "Traceback" not in answer.text
    assert http.get("/v1/config").json() == before


def test_closures_at_the_edges_of_the_years_taken_are_stored_and_read_back(api, clinic):
    http = api(clinic)  # read back in the clinic's zone, one ends in 2200 and another starts in 1999: once a 500
    for url, body in (("/v1/closures", {"kind": "closed", "date": "2199-12-31"}),
                      ("/v1/closures", {"kind": "closed", "starts_at": "2000-01-01T00:00:00+14:00",
                                        "ends_at": "2000-01-01T10:00:00+14:00"}),
                      ("/v1/resources/dr-patel/exceptions", {"kind": "closed", "date": "2199-12-31"})):
        assert http.post(url, json=body).status_code == 201, (url, body)
    assert http.get("/v1/config").status_code == 200


def test_closures_that_would_store_too_many_spans_are_refused_before_anything_is_written(api, clinic):
    http = api(clinic)
    before = http.get("/v1/closures").json()
    every_half_hour = [f"{h:02d}:{m:02d}-{h:02d}:{m + 15:02d}" for h in range(8, 20) for m in (0, 30)]
    year = {"kind": "closed", "date": "2027-01-01", "until": "2027-12-31", "hours": every_half_hour}  # 8,760 spans
    refused = http.post("/v1/closures", json=year)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_config"
    assert "spans of time" in refused.json()["error"]["message"] and "at most 5000" in refused.json()["error"]["message"]
    assert http.get("/v1/closures").json() == before
    assert http.post("/v1/closures", json={**year, "until": "2027-01-31"}).status_code == 201  # a month: 744
