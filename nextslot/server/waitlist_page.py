"""`/b/{slug}/{service}/waitlist`: "no time suits? tell me when something opens", the same waitlist as
every channel's (the scheduler offers freed time that fits, by message with a YES reply or a tap)."""
from __future__ import annotations

from datetime import date, time

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from nextslot.core.results import Rejected
from nextslot.core.service import BookingService
from nextslot.schemas.commands import WaitlistJoin
from nextslot.schemas.views import ServiceView
from nextslot.server.booking_form import Problem, input_problem
from nextslot.server.booking_page import service_visit
from nextslot.server.page_context import PageBusiness, Visitor, branch_zone
from nextslot.server.page_render import render
from nextslot.server.public_writes import PublicSender
from nextslot.server.rate_limit import RateLimitedRoute, client_key

router = APIRouter(route_class=RateLimitedRoute, max_body_size=16_000, include_in_schema=False)
FIELDS = ("customer.name", "customer.phone", "customer.email", "earliest_date", "latest_date", "day_start",
          "day_end", "party_size")


@router.get("/b/{slug}/{service_key}/waitlist")
def waitlist_form(slug: str, service_key: str, request: Request) -> Response:
    found = service_visit(request, slug, service_key)
    return found if isinstance(found, Response) else form(request, *found, {}, None)


@router.post("/b/{slug}/{service_key}/waitlist")
async def join_waitlist(slug: str, service_key: str, request: Request) -> Response:
    posted = await request.form()
    found = await run_in_threadpool(service_visit, request, slug, service_key, posted)
    if isinstance(found, Response):
        return found
    values = {k: v.strip() if isinstance(v := posted.get(k, ""), str) else "" for k in FIELDS}  # a file is no name
    return await run_in_threadpool(join, request, *found, values)


def join(request: Request, business: PageBusiness, offered: ServiceView, visitor: Visitor,
         values: dict[str, str]) -> Response:
    service: BookingService = request.app.state.service
    try:
        dates = (date.fromisoformat(values["earliest_date"]),
                 date.fromisoformat(values["latest_date"] or values["earliest_date"]),
                 time.fromisoformat(values["day_start"] or "00:00"),
                 time.fromisoformat(values["day_end"]) if values["day_end"] else None)
    except ValueError:
        problem = Problem("invalid_dates", "Give the first and last day that would suit you.", "earliest_date")
        return form(request, business, offered, visitor, values, problem, status=422)
    try:
        cmd = WaitlistJoin.model_validate({
            "service": offered.key, "source": "page", "customer": {
                "name": values["customer.name"], "phone": values["customer.phone"] or None,
                "email": values["customer.email"] or None, "timezone": visitor.zone.key,
                "language": visitor.language},
            "earliest_date": dates[0], "latest_date": dates[1], "day_start": dates[2], "day_end": dates[3],
            **({"party_size": values["party_size"]} if values["party_size"] else {})})
    except ValidationError as invalid:  # validated as one document, so a problem names its whole path
        return form(request, business, offered, visitor, values, input_problem(invalid), status=422)
    place = PublicSender.at_address(service, business.id, client_key(request)).place("bookings")
    if isinstance(place, Rejected):  # this address's places today, whatever contacts it gave
        return form(request, business, offered, visitor, values, Problem(place.code, place.message), status=429)
    with place:
        joined = service.join_waitlist(business.id, cmd)
        if not isinstance(joined, Rejected):
            place.keep()
    if isinstance(joined, Rejected):
        return form(request, business, offered, visitor, values, Problem(joined.code, joined.message, joined.field),
                    status=422)
    return render(request, "waitlist_joined.html", {"business": business, "visitor": visitor, "offered": offered,
                                                    "entry": joined})


def form(request: Request, business: PageBusiness, offered: ServiceView, visitor: Visitor, values: dict[str, str],
         problem: Problem | None, status: int = 200) -> Response:
    service: BookingService = request.app.state.service
    zone = branch_zone(offered.locations, None, business.zone)  # as the core reads the wish
    return render(request, "waitlist.html", {
        "business": business, "visitor": visitor, "offered": offered, "values": values, "problem": problem,
        "base": f"/b/{business.slug}/{offered.key}", "today": service.now().astimezone(zone).date(), "zone": zone,
    }, status=status)

