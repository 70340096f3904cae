"""A customer's data request and the audit log at the console: owners only, CSRF-checked, through the core."""
from __future__ import annotations

from sqlalchemy import select

from nextslot.storage.tables import Booking, Customer
from tests.server.test_console import book_by_agent, clients, console, csrf_of  # noqa: F401, F811 - fixtures


def test_an_owner_exports_then_erases_a_customer_and_the_audit_page_says_who(console, service, make_business,  # noqa: F811
                                                                             session_factory):
    clinic = make_business("clinic")
    code = book_by_agent(service, clinic, phone="+447900950301")
    with session_factory() as s:
        customer_id = s.scalar(select(Booking.customer_id).where(Booking.business_id == clinic, Booking.code == code))
    owner, slug = console(clinic, "owner", "boss@clinic.example")
    page = owner.get(f"/console/{slug}/customers/{customer_id}")
    assert page.status_code == 200 and f"/customers/{customer_id}/export" in page.text
    exported = owner.get(f"/console/{slug}/customers/{customer_id}/export")
    assert exported.status_code == 200 and "attachment" in exported.headers["content-disposition"]
    assert exported.json()["bookings"][0]["code"] == code

    csrf = csrf_of(page.text)
    unconfirmed = owner.post(f"/console/{slug}/customers/{customer_id}/erase", data={"csrf": csrf, "confirm": "no"})
    assert unconfirmed.status_code == 422
    forged = owner.post(f"/console/{slug}/customers/{customer_id}/erase", data={"confirm": "ERASE"})
    assert forged.status_code == 403  # no CSRF token: nothing erased
    upcoming = owner.post(f"/console/{slug}/customers/{customer_id}/erase", data={"csrf": csrf, "confirm": "ERASE"})
    assert upcoming.status_code == 409 and code in upcoming.text
    erased = owner.post(f"/console/{slug}/customers/{customer_id}/erase",
                        data={"csrf": csrf, "confirm": "ERASE", "cancel_upcoming": "yes"})
    assert erased.status_code == 303
    after = owner.get(erased.headers["location"])
    assert "Erased customer" in after.text and "+447900950301" not in after.text
    with session_factory() as s:
        customer = s.get(Customer, customer_id)
        assert customer.phone is None and customer.erased_at is not None

    audit = owner.get(f"/console/{slug}/audit")
    assert audit.status_code == 200
    assert "customer.erased" in audit.text and "boss@clinic.example" in audit.text and "console" in audit.text

    staff, _ = console(clinic, "staff")
    assert staff.get(f"/console/{slug}/audit").status_code == 403
    assert staff.get(f"/console/{slug}/customers/{customer_id}/export").status_code == 403
    other, other_slug = console(make_business("clinic"), "owner")
    assert other.get(f"/console/{other_slug}/customers/{customer_id}/export").status_code == 404  # not theirs
