"""Bad input and bugs on every HTTP channel (issue 14): a structured error in the channel's shape, nothing written,
and never an exception's text, SQL or a customer's data."""
from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from nextslot.core.accounts.staff import create_account
from nextslot.core.accounts.voice_secrets import set_secret
from nextslot.server.app import create_app
from nextslot.settings import Settings
from nextslot.storage.tables import Booking, Business, WaitlistEntry
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.conftest import example

SLOT = "2026-11-24T09:00:00+00:00"  # the frozen clock says Monday 23 November 2026, 08:00 UTC
CUSTOMER = {"name": "Ann Lee", "phone": "+447911123456"}


@pytest.fixture
def http(service) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(secret_key="failure-tests"), service=service), follow_redirects=False,
                    raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def clinic(make_business, session_factory) -> tuple[int, str]:
    business_id = make_business("clinic")
    with session_factory() as s:
        return business_id, s.get(Business, business_id).slug


def written(session_factory, business_id: int) -> int:
    with session_factory() as s:
        return sum(s.scalar(select(func.count()).select_from(t).where(t.business_id == business_id))
                   for t in (Booking, WaitlistEntry))


def test_the_staff_api_refuses_years_names_intake_objects_and_huge_ids_as_422(http, clinic, api_key,
                                                                             session_factory):
    business_id, _ = clinic
    http.headers["Authorization"] = f"Bearer {api_key(business_id)}"
    answers = [
        http.get("/v1/slots", params={"service": "consultation", "starts_from": "9999-12-31T00:00:00Z"}),
        http.get("/v1/slots", params={"service": "consultation", "until": "0001-01-01T00:00:00Z"}),
        http.post("/v1/bookings", json={"service": "consultation", "starts_at": SLOT,
                                        "customer": {**CUSTOMER, "name": "   "}}),
        http.post("/v1/bookings", json={"service": "consultation", "starts_at": SLOT, "customer": CUSTOMER,
                                        "intake": {"symptoms": {"knee": ["left", "right"]}}}),
        http.post("/v1/bookings", json={"service": "consultation", "starts_at": SLOT, "customer": CUSTOMER,
                                        "hold_id": 2**63}),
        http.post("/v1/waitlist", json={"service": "consultation", "customer": {**CUSTOMER, "name": ""},
                                        "earliest_date": "2026-11-24", "latest_date": "2026-11-25"}),
        http.post("/v1/waitlist", json={"service": "consultation", "customer": CUSTOMER,
                                        "earliest_date": "9999-12-30", "latest_date": "9999-12-31"}),
    ]
    for answer in answers:
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["code"] == "invalid_request"
    nul = http.get("/v1/customers/history", params={"phone": "+44\u00007911123456"})  # any URL: no route sees it
    assert nul.status_code == 400 and nul.json()["error"]["code"] == "invalid_url"
    assert written(session_factory, business_id) == 0


def test_an_intake_number_that_json_cannot_store_is_intake_invalid(http, make_business, api_key, session_factory):
    config = example("clinic")
    config["services"][0]["intake"] = [{"key": "weight", "label": "Weight in kg", "type": "number"}]
    business_id = make_business(config)
    http.headers["Authorization"] = f"Bearer {api_key(business_id)}"
    for weight in ("nan", "1e400", "-inf", "9" * 400):
        answer = http.post("/v1/bookings", json={"service": "consultation", "starts_at": SLOT, "customer": CUSTOMER,
                                                 "intake": {"weight": weight}})
        assert answer.status_code == 422 and answer.json()["error"]["code"] == "intake_invalid", answer.text
    assert written(session_factory, business_id) == 0


def test_a_booking_form_with_a_hidden_time_in_year_9999_or_a_nul_in_the_name_is_a_page_refusal(
        http, make_business, session_factory):
    business_id = make_business("garage")
    with session_factory() as s:
        slug = s.get(Business, business_id).slug
    base = {"key": "k" * 20, "customer.name": "Ada", "customer.phone": "+12125550100",
            "intake.vehicle": "Ford", "intake.registration": "KXT"}
    for fields in ({"at": "9999-12-31T23:59:00+00:00"}, {"at": "0001-01-01T00:00:00+00:00"},
                   {"at": "2026-11-23T13:00:00Z", "customer.name": "Ada\u0000"}):
        answer = http.post(f"/b/{slug}/oil-change/book", data={**base, **fields})
        assert answer.status_code == 422 and "text/html" in answer.headers["content-type"], answer.text
    waitlist = http.post(f"/b/{slug}/oil-change/waitlist", data={
        "customer.name": "Ada", "customer.phone": "+12125550100", "earliest_date": "9999-12-30"})
    assert waitlist.status_code == 422 and 'data-code="invalid_input"' in waitlist.text
    assert written(session_factory, business_id) == 0


def test_the_console_calendar_and_a_drag_to_year_9999_do_not_overflow(http, clinic, session_factory):
    business_id, slug = clinic
    email = f"owner-{uuid.uuid4().hex[:6]}@example.com"
    create_account(SqlAlchemyUnitOfWork(session_factory), business_id, email, "Sam", "owner", "correct horse 1")
    assert http.post(f"/console/{slug}/login", data={"email": email, "password": "correct horse 1"}).status_code == 303
    for day in ("9999-12-31", "0001-01-01", "1970-01-01"):  # the week of 1 January 1970 begins in 1969
        for view in ("day", "week"):
            assert http.get(f"/console/{slug}", params={"date": day, "view": view}).status_code == 200
    assert http.get(f"/console/{slug}", params={"resource": "r" * 100}).status_code == 404


def test_voice_webhooks_refuse_a_nul_in_the_url_and_unreadable_numbers_without_internal_text(http, clinic,
                                                                                            session_factory):
    business_id, slug = clinic
    set_secret(SqlAlchemyUnitOfWork(session_factory), business_id, "vapi", "vapi-secret")
    nul = http.post(f"/webhooks/vapi/{slug}%00", json={}, headers={"x-vapi-secret": "vapi-secret"})
    assert nul.status_code == 400 and nul.json()["error"]["code"] == "invalid_url"
    huge = http.post(f"/webhooks/vapi/{slug}", content=b'{"message": {"type": ' + b"9" * 5000 + b"}}",
                     headers={"x-vapi-secret": "vapi-secret", "content-type": "application/json"})
    assert huge.status_code == 400 and huge.json()["error"]["code"] == "invalid_json"
    assert "set_int_max_str_digits" not in huge.text


def test_a_bug_answers_a_generic_500_with_a_reference_that_the_log_carries(http, clinic, api_key, monkeypatch,
                                                                          caplog):
    business_id, slug = clinic
    http.headers["Authorization"] = f"Bearer {api_key(business_id)}"

    def broken(*args, **kwargs):
        raise RuntimeError("SELECT secret FROM customers WHERE phone = '+447911123456'")

    monkeypatch.setattr(http.app.state.service, "business_offer", broken)
    monkeypatch.setattr(http.app.state.service, "find_slots", broken)
    with caplog.at_level(logging.ERROR, logger="nextslot.incidents"):
        page = http.get(f"/b/{slug}")
        api = http.get("/v1/slots", params={"service": "consultation"})
    assert page.status_code == api.status_code == 500
    assert "text/html" in page.headers["content-type"] and api.json()["error"]["code"] == "internal_error"
    references = {r.getMessage().split()[2] for r in caplog.records if r.exc_info}
    for answer in (page, api):
        assert not re.search(r"SELECT|\+447911123456|RuntimeError|Traceback", answer.text)
        assert any(ref in answer.text for ref in references)
