"""Recurring series and the booking rules through /v1: a series booked in one call, moved and cancelled from one
occurrence onwards; a party's places; the cancellation policy and fair assignment set through the config."""
from __future__ import annotations

from tests.core.test_series import salon
from tests.server.staff_api.conftest import phone


def test_a_series_is_booked_moved_and_cancelled_from_one_occurrence_onwards(api, make_business):
    http = api(make_business(salon()))
    made = http.post("/v1/bookings/series", json={
        "service": "cut", "starts_at": "2026-11-24T10:00:00+00:00", "repeat": {"every": "week", "count": 3},
        "customer": {"name": "Ann Lee", "phone": phone(801)}})
    assert made.status_code == 201, made.text
    series = made.json()
    assert series["complete"] and [o["outcome"] for o in series["occurrences"]] == ["booked"] * 3
    codes = [o["booking"]["code"] for o in series["occurrences"]]
    assert {o["booking"]["series_id"] for o in series["occurrences"]} == {series["series_id"]}
    other = http.post("/v1/bookings", json={"service": "cut", "starts_at": "2026-12-09T11:00:00+00:00",
                                            "customer": {"name": "Bo", "phone": phone(802)}})
    assert other.status_code == 201
    blocked = http.post(f"/v1/bookings/{codes[1]}/reschedule-series", json={"starts_at": "2026-12-02T11:00:00+00:00"})
    assert blocked.status_code == 409 and blocked.json()["error"]["code"] == "slot_taken"
    assert blocked.json()["requested"] == "2026-12-09T11:00:00+00:00"
    moved = http.post(f"/v1/bookings/{codes[1]}/reschedule-series", json={"starts_at": "2026-12-02T10:30:00+00:00"})
    assert moved.status_code == 200 and [b["starts_at"]["utc"] for b in moved.json()] == [
        "2026-12-02T10:30:00Z", "2026-12-09T10:30:00Z"]
    cancelled = http.post(f"/v1/bookings/{codes[1]}/cancel-series", json={"reason": "moving away"})
    assert cancelled.status_code == 200 and [b["status"] for b in cancelled.json()] == ["cancelled"] * 2
    assert http.get(f"/v1/bookings/{codes[0]}").json()["status"] == "booked"
    none = http.post(f"/v1/bookings/{other.json()['code']}/cancel-series")
    assert none.status_code == 422 and none.json()["error"]["code"] == "not_a_series"
    bad = http.post("/v1/bookings/series", json={
        "service": "cut", "starts_at": "2026-11-24T10:00:00+00:00", "repeat": {"count": 99},
        "customer": {"name": "Ann Lee", "phone": phone(803)}})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"


def test_all_or_none_that_books_nothing_answers_200_with_each_dates_outcome(api, make_business):
    http = api(make_business(salon()))
    http.post("/v1/bookings", json={"service": "cut", "starts_at": "2026-12-01T10:00:00+00:00",
                                    "customer": {"name": "Bo", "phone": phone(804)}})
    answer = http.post("/v1/bookings/series", json={
        "service": "cut", "starts_at": "2026-11-24T10:00:00+00:00", "repeat": {"count": 2},
        "customer": {"name": "Ann Lee", "phone": phone(805)}})
    assert answer.status_code == 200 and answer.json()["series_id"] is None
    assert [o["outcome"] for o in answer.json()["occurrences"]] == ["not_booked", "taken"]
