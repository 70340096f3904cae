"""/v1/slots, /v1/waitlist and /v1/customers/history: the same core views staff need next to bookings."""
from __future__ import annotations

from tests.server.staff_api.conftest import TUESDAY, at, phone


def test_staff_see_open_slots_put_a_customer_on_the_waitlist_and_read_their_history(api, clinic, make_business):
    client = api(clinic)
    slots = client.get("/v1/slots", params={"service": "consultation", "starts_from": at("08:00"),
                                            "until": at("12:00"), "resource": "dr-patel"})
    assert slots.status_code == 200
    first = slots.json()["slots"][0]
    assert first["starts_at"]["utc"].startswith(TUESDAY) and first["resources"][0]["key"] == "dr-patel"

    made = client.post("/v1/bookings", json={"service": "consultation", "starts_at": first["starts_at"]["utc"],
                                             "customer": {"name": "Ivy", "phone": phone(801)}})
    assert made.status_code == 201, made.text
    joined = client.post("/v1/waitlist", json={
        "service": "consultation", "customer": {"name": "Ivy", "phone": phone(801)},
        "earliest_date": "2026-11-30", "latest_date": "2026-12-04"})
    assert joined.status_code == 201 and joined.json()["status"] == "waiting"

    history = client.get("/v1/customers/history", params={"phone": phone(801)})
    assert history.status_code == 200
    kinds = [e["kind"] for e in history.json()["events"]]
    assert kinds == ["booking.created", "waitlist.joined"]
    assert history.json()["events"][0]["channel"] == "staff"

    other = api(make_business("clinic"))
    assert other.get("/v1/customers/history", params={"phone": phone(801)}).status_code == 404
    unknown = client.get("/v1/slots", params={"service": "massage"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_service"
    assert client.get("/v1/customers/history").json()["error"]["code"] == "identifier_required"
