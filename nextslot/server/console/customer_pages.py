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
from nextslot.core.customers.roster import customer_page_view, customer_roster, waiting_list
from nextslot.server.console.session import Id, Staff, booking_service, notice, render
from nextslot.server.page_context import PageBusiness

router = APIRouter(include_in_schema=False)


@router.get("/console/{slug}/customers")
def customers(request: Request, signed: Staff) -> Response:
    business, staff = signed
    text = request.query_params.get("q", "")[:200]
    service = booking_service(request)
    rows = service.read(customer_roster, business.id, service.now(), text)
    return render(request, "customers.html", {"business": business, "staff": staff, "active": "customers",
                                              "rows": rows, "q": text, "policy": no_show_policy(request, business)})


@router.get("/console/{slug}/customers/{customer_id}")
def customer_page(customer_id: Id, request: Request, signed: Staff) -> Response:
    business, staff = signed
    return customer_detail(request, business, staff, customer_id)


def customer_detail(request: Request, business: PageBusiness, staff: SignedIn, customer_id: int) -> Response:
    service = booking_service(request)
    page = service.read(customer_page_view, business.id, customer_id, service.now())
    if page is None:
        return notice(request, business, "Not found", "There is no such customer here.", 404, staff=staff)
    return render(request, "customer.html", {"business": business, "staff": staff, "active": "customers",
                                             "history": page.history, "waiting": page.waiting, "row": page.row,
                                             "customer_id": customer_id, "erased": page.erased,
                                             "policy": no_show_policy(request, business)})


@router.get("/console/{slug}/waitlist")
def waitlist(request: Request, signed: Staff) -> Response:
    business, staff = signed
    rows = booking_service(request).read(waiting_list, business.id)
    return render(request, "waitlist.html", {"business": business, "staff": staff, "active": "waitlist",
                                             "rows": rows})


def no_show_policy(request: Request, business: PageBusiness):
    details = booking_service(request).read(business_details, business.id)
    return details.get("no_show_policy")
