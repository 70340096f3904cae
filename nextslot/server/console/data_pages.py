"""A customer's data request and the audit log at the console (owners only).

GET  /console/{slug}/customers/{id}/export   everything stored about the customer, as a JSON download
POST /console/{slug}/customers/{id}/erase    erase their personal data (type ERASE; optionally cancel upcoming)
GET  /console/{slug}/audit                   configuration and account changes: who, when, through what, what
"""
from __future__ import annotations

import json

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from nextslot.core import audit
from nextslot.core.customers.data_rights import erase_customer, export_customer
from nextslot.core.results import Rejected
from nextslot.server.console.session import (
    Id,
    Staff,
    booking_service,
    checked_post,
    id_in,
    notice,
    owner_only,
    render,
)

router = APIRouter(include_in_schema=False)


@router.get("/console/{slug}/customers/{customer_id}/export")
def export(customer_id: Id, request: Request, signed: Staff) -> Response:
    business, staff = signed
    owner_only(request, business, staff)
    service = booking_service(request)
    document = export_customer(service.uow(), business.id, service.now(), customer_id=customer_id)
    if isinstance(document, Rejected):
        return notice(request, business, "Not found", "There is no such customer here.", 404, staff=staff)
    return Response(json.dumps(document, indent=2, ensure_ascii=False), media_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="customer-{customer_id}.json"', "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff"})


@router.post("/console/{slug}/customers/{customer_id}/erase")
async def erase(customer_id: Id, request: Request, signed: Staff) -> Response:
    business, staff = signed
    owner_only(request, business, staff)
    form = await checked_post(request, staff)
    if form.get("confirm", "").strip() != "ERASE":
        return notice(request, business, "Not erased", "Type ERASE in the box to confirm: erasing cannot be undone.",
                      422, staff=staff)
    service = booking_service(request)
    erased = await run_in_threadpool(erase_customer, service.uow(), business.id, service.now(),
                                     form.get("cancel_upcoming") == "yes", customer_id=customer_id)
    if isinstance(erased, Rejected):
        return notice(request, business, "Not erased", erased.message, 409 if erased.code == "upcoming_bookings"
                      else 404, staff=staff)
    return RedirectResponse(f"/console/{business.slug}/customers/{customer_id}?done=erased", status_code=303)


@router.get("/console/{slug}/audit")
def audit_page(request: Request, signed: Staff) -> Response:
    business, staff = signed
    owner_only(request, business, staff)
    # past every id (or not one): from the newest, as any id there can be is below it
    before = id_in(request.query_params.get("before"))
    entries = audit.entries(booking_service(request).uow(), business.id, 100, before)
    return render(request, "audit.html", {"business": business, "staff": staff, "active": "audit",
                                          "entries": entries})
