"""Who may call /v1, what another business's objects look like (exactly like nothing), and the error shape."""
from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from nextslot.core.accounts import key_cache
from nextslot.server.app import create_app
from nextslot.settings import Settings
from nextslot.storage.tables import ApiKey
from tests.server.staff_api.conftest import at, phone


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nsk_not-a-key"},
                                     {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"}])
def test_a_missing_or_wrong_key_is_refused_with_401(app, headers):
    answer = TestClient(app).get("/v1/bookings", headers=headers)
    assert answer.status_code == 401 and answer.headers["WWW-Authenticate"] == "Bearer"
    assert answer.json()["error"]["code"] == "unauthorized"


def revoke(session_factory, business_id: int, when: datetime) -> None:
    with session_factory() as s:
        s.execute(update(ApiKey).where(ApiKey.business_id == business_id).values(revoked_at=when))
        s.commit()


def test_a_revoked_key_is_refused_with_401_once_the_servers_memory_of_it_lapses(
        service, clinic, api_key, session_factory, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(key_cache, "monotonic", lambda: now[0])
    app = create_app(Settings(secret_key="staff-api-tests", api_key_cache_seconds=5), service=service)
    http = TestClient(app, headers={"Authorization": f"Bearer {api_key(clinic)}"})
    assert http.get("/v1/resources").status_code == 200
    revoke(session_factory, clinic, datetime.now(UTC) - timedelta(minutes=1))  # by another process, say
    now[0] += 4.9
    assert http.get("/v1/resources").status_code == 200  # still remembered as live
    now[0] += 0.1
    assert http.get("/v1/resources").status_code == 401
    assert http.post("/v1/bookings/ABCDEF/cancel").status_code == 401


def test_a_revoked_key_is_refused_at_once_when_the_server_remembers_no_keys(
        service, clinic, api_key, session_factory):
    app = create_app(Settings(secret_key="staff-api-tests", api_key_cache_seconds=0), service=service)
    http = TestClient(app, headers={"Authorization": f"Bearer {api_key(clinic)}"})
    assert http.get("/v1/resources").status_code == 200
    revoke(session_factory, clinic, datetime.now(UTC) - timedelta(minutes=1))
    assert http.get("/v1/resources").status_code == 401


def test_a_revocation_set_ahead_takes_effect_at_its_moment_even_while_the_key_is_remembered(
        app, clinic, api_key, session_factory):
    http = TestClient(app, headers={"Authorization": f"Bearer {api_key(clinic)}"})
    revoke(session_factory, clinic, datetime.now(UTC) + timedelta(seconds=1))
    assert http.get("/v1/resources").status_code == 200  # remembered, with its revocation time
    time.sleep(1.1)
    assert http.get("/v1/resources").status_code == 401


def test_a_new_key_works_at_once_and_unknown_keys_are_never_remembered(app, clinic, api_key):
    unknown = TestClient(app, headers={"Authorization": "Bearer nsk_not-a-key-yet"})
    assert unknown.get("/v1/resources").status_code == 401
    assert TestClient(app, headers={"Authorization": f"Bearer {api_key(clinic)}"}).get("/v1/resources").status_code == 200
    assert app.state.api_keys.remembered("nsk_not-a-key-yet") is None


def test_another_business_objects_look_exactly_like_missing_ones(api, clinic, make_business):
    garage = make_business("garage")
    theirs = api(garage)
    booking = theirs.post("/v1/bookings", json={
        "service": "oil-change", "starts_at": "2026-11-24T10:00:00-05:00",
        "customer": {"name": "Ada", "phone": "+12125550191"}, "intake": {"vehicle": "Van", "registration": "AB1"}})
    assert booking.status_code == 201, booking.text
    code = booking.json()["code"]
    [closure, *_] = theirs.get("/v1/closures").json()["exceptions"]
    [time_off] = theirs.post("/v1/resources/sam/exceptions", json={
        "kind": "closed", "date": "2026-11-27", "reason": "Off"}).json()["exceptions"]
    mine = api(clinic)

    def refused_like_nothing(method: str, path: str, missing: str, **body) -> None:
        answer, nothing = mine.request(method, path, **body), mine.request(method, missing, **body)
        assert answer.status_code == nothing.status_code == 404, (path, answer.text)
        assert answer.json()["error"]["code"] == nothing.json()["error"]["code"]

    refused_like_nothing("GET", f"/v1/bookings/{code}", "/v1/bookings/XXXXXX")
    for action in ("history", "notifications"):
        refused_like_nothing("GET", f"/v1/bookings/{code}/{action}", f"/v1/bookings/XXXXXX/{action}")
    for action in ("cancel", "confirm", "no-show"):
        refused_like_nothing("POST", f"/v1/bookings/{code}/{action}", f"/v1/bookings/XXXXXX/{action}")
    refused_like_nothing("POST", f"/v1/bookings/{code}/reschedule", "/v1/bookings/XXXXXX/reschedule",
                         json={"starts_at": at("11:00")})
    for path in ("", "/hours", "/exceptions"):
        refused_like_nothing("GET", f"/v1/resources/sam{path}", f"/v1/resources/nobody{path}")
    refused_like_nothing("POST", "/v1/resources/sam/deactivate", "/v1/resources/nobody/deactivate")
    refused_like_nothing("PUT", "/v1/resources/sam/hours", "/v1/resources/nobody/hours", json={"hours": {}})
    refused_like_nothing("POST", "/v1/resources/sam/exceptions", "/v1/resources/nobody/exceptions",
                         json={"kind": "closed", "date": "2026-11-27"})
    refused_like_nothing("DELETE", f"/v1/resources/dr-patel/exceptions/{time_off['id']}",
                         "/v1/resources/dr-patel/exceptions/000000000000")
    refused_like_nothing("DELETE", f"/v1/closures/{closure['id']}", "/v1/closures/000000000000")
    refused_like_nothing("GET", "/v1/services/oil-change", "/v1/services/nothing")
    refused_like_nothing("POST", "/v1/services/oil-change/deactivate", "/v1/services/nothing/deactivate")
    refused_like_nothing("GET", "/v1/calendar?date=2026-11-24&resource=sam", "/v1/calendar?date=2026-11-24&resource=x")
    assert mine.get("/v1/bookings", params={"code": code}).json()["bookings"] == []
    assert mine.get("/v1/bookings", params={"phone": "+12125550191"}).json()["total"] == 0
    assert mine.put("/v1/config", json=theirs.get("/v1/config").json()).status_code == 422  # not their slug

    assert theirs.get(f"/v1/bookings/{code}").json() == booking.json()  # nothing changed
    assert [e["id"] for e in theirs.get("/v1/resources/sam/exceptions").json()["exceptions"]] == [time_off["id"]]
    assert theirs.get("/v1/services/oil-change").json()["active"] is True


def test_a_malformed_request_lists_every_wrong_field(api, clinic):
    http = api(clinic)
    answer = http.post("/v1/bookings", json={"starts_at": "tomorrow", "customer": {"phone": "1" * 50},
                                             "colour": "blue"})
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "invalid_request"
    assert {p["field"] for p in error["problems"]} == {"service", "starts_at", "customer.name", "customer.phone",
                                                      "colour"}
    query = http.get("/v1/bookings", params={"limit": 0, "status": "lost", "date_from": "1066-10-14"})
    assert {p["field"] for p in query.json()["error"]["problems"]} == {"limit", "status.0", "date_from"}
    broken = http.post("/v1/bookings", content=b'{"service": ', headers={"Content-Type": "application/json"})
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "invalid_json"
    mixed = http.post("/v1/closures", json={"kind": "closed", "starts_at": "2026-12-01T10:00:00",
                                            "ends_at": "2026-12-01T12:00:00Z"})
    assert mixed.status_code == 422 and "both with an offset" in mixed.json()["error"]["message"]
    seconds = http.post("/v1/closures", json={"kind": "open", "starts_at": 317, "ends_at": "2026-12-01T12:00:00Z"})
    assert seconds.status_code == 422 and "ISO 8601" in seconds.json()["error"]["message"]  # not 1970 + 317 s
    long_name = http.put("/v1/resources/nurse", json={"key": "nurse", "name": "N" * 300, "kind": "staff"})
    assert long_name.status_code == 422 and long_name.json()["error"]["field"] == "name"  # the config's own limit
    nul = http.post("/v1/bookings", json={"service": "consultation", "starts_at": at("09:00"),
                                          "customer": {"name": "Ann\u0000", "phone": phone(31)}})
    assert nul.status_code == 422 and nul.json()["error"]["field"] == "customer.name"  # refused before the database


def test_unknown_paths_and_methods_under_v1_answer_in_the_same_shape(api, clinic):
    http = api(clinic)
    nowhere = http.get("/v1/nowhere")
    assert nowhere.status_code == 404 and nowhere.json()["error"]["code"] == "not_found"
    wrong = http.delete("/v1/bookings")
    assert wrong.status_code == 405 and wrong.headers["Allow"] == "GET, POST"
    assert wrong.json()["error"]["code"] == "method_not_allowed"


def test_a_core_rejection_keeps_its_code_and_field(api, clinic):
    http = api(clinic)
    answer = http.post("/v1/bookings", json={"service": "consultaton", "starts_at": at("09:00"),
                                             "customer": {"name": "Ann", "phone": phone(30)}})
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert (error["code"], error["field"]) == ("unknown_service", "service")
    assert error["suggestions"] == ["consultation"]
    off_grid = http.post("/v1/bookings", json={"service": "consultation", "starts_at": at("09:07"),
                                               "customer": {"name": "Ann", "phone": phone(30)}})
    assert off_grid.status_code == 422 and off_grid.json()["error"]["code"] == "off_slot_step"
