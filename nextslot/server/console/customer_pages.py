"""Customers and the waitlist at the console.

GET /console/{slug}/customers?q=...      search by name, phone or email: bookings, no-shows, deposit required
GET /console/{slug}/customers/{id}       one customer's whole history (the same as the `customer_history` tool)
GET /console/{slug}/waitlist             who is waiting for what, in the order offers go out
"""
from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from nextslot.core.accounts.staff import SignedIn
from nextslot.core.business.catalog import business_details
from nextslot.core.customers.history import history_for
from nextslot.core.customers.roster import customer_of, customer_roster, waiting_list
from nextslot.server.console.session import Staff, booking_service, notice, render
from nextslot.server.page_context import PageBusiness

router = APIRouter(include_in_schema=False)


@router.get("/console/{slug}/customers")
def customers(request: Request, signed: Staff) -> Response:
    business, staff = signed
    text = request.query_params.get("q", "")[:200]
    service = booking_service(request)
    with service.uow() as uow:
        rows = customer_roster(uow.session, business.id, service.now(), text)
    return render(request, "customers.html", {"business": business, "staff": staff, "active": "customers",
                                              "rows": rows, "q": text, "policy": no_show_policy(request, business)})


@router.get("/console/{slug}/customers/{customer_id}")
def customer_page(customer_id: int, request: Request, signed: Staff) -> Response:
    business, staff = signed
    return customer_detail(request, business, staff, customer_id)


def customer_detail(request: Request, business: PageBusiness, staff: SignedIn, customer_id: int) -> Response:
    with booking_service(request).uow() as uow:
        customer = customer_of(uow.session, business.id, customer_id)
        if customer is None:
            return notice(request, business, "Not found", "There is no such customer here.", 404, staff=staff)
        history = history_for(uow.session, business.id, customer)
        waiting = waiting_list(uow.session, business.id, customer.id, live_only=False)
        row = customer_roster(uow.session, business.id, booking_service(request).now(), customer_id=customer.id)[0]
        erased = customer.erased_at is not None
    return render(request, "customer.html", {"business": business, "staff": staff, "active": "customers",
                                             "history": history, "waiting": waiting, "row": row,
                                             "customer_id": customer_id, "erased": erased,
                                             "policy": no_show_policy(request, business)})


@router.get("/console/{slug}/waitlist")
def waitlist(request: Request, signed: Staff) -> Response:
    business, staff = signed
    with booking_service(request).uow() as uow:
        rows = waiting_list(uow.session, business.id)
    return render(request, "waitlist.html", {"business": business, "staff": staff, "active": "waitlist",
                                             "rows": rows})


def no_show_policy(request: Request, business: PageBusiness):
    with booking_service(request).uow() as uow:
        details = business_details(uow.session, business.id)
    return details.get("no_show_policy")
