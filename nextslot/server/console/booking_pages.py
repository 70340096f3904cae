"""Bookings at the console, every write through the same BookingService as agents and the public page.

GET  /console/{slug}/bookings/{code}                   detail: customer, intake, deposit, history, messages, replies
POST /console/{slug}/bookings/{code}/{confirm|cancel|no-show}
GET  /console/{slug}/bookings/{code}/move?from=DAY     free times for the same service; POST .../move takes one
                                                       (`at`, or `local`: a wall time a block was dragged to)
GET  /console/{slug}/book[/{service}[/details?at=]]    a walk-in or a phone call: service, branch (when it is
                                                       offered at several: `location=`), time, details, party size
POST /console/{slug}/book/{service}                    book (source "console"); a lost race shows the nearest times

Writes carry source "console" and the staff member's name as the actor, and an idempotency key per
rendered form, so a double tap on a slow tablet changes nothing twice.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from nextslot.core.accounts.staff import SignedIn
from nextslot.core.instants import load_zone, wall_to_utc
from nextslot.core.results import Booked, ChangeResult, Rejected, SlotTaken
from nextslot.core.service import BookingService
from nextslot.schemas.commands import BookingChange, BookingCreate, BookingReschedule
from nextslot.schemas.inputs import in_range
from nextslot.schemas.views import BookingView, ServiceView
from nextslot.server.booking_form import (
    FORM_KEY,
    BookingForm,
    Problem,
    booking_command,
    field_ids,
    intake_fields,
    new_form_key,
    read_form,
)
from nextslot.server.booking_page import renewed
from nextslot.server.console.session import Staff, booking_service, checked_post, notice, render
from nextslot.server.page_context import PageBusiness, branch_zone
from nextslot.server.page_times import alternatives, parse_slot_param
from nextslot.server.slot_grid import slot_grid

router = APIRouter(include_in_schema=False)
SOURCE = "console"
ACTIONS: dict[str, Callable[[BookingService], Callable[..., ChangeResult]]] = {
    "confirm": lambda s: s.confirm, "cancel": lambda s: s.cancel, "no-show": lambda s: s.mark_no_show}


@router.get("/console/{slug}/bookings/{code}")
def booking_detail(code: str, request: Request, signed: Staff) -> Response:
    return detail_page(request, *signed, code)


def booking_of(request: Request, business: PageBusiness, staff: SignedIn, code: str) -> BookingView | Response:
    """The business's booking with this code, or the not-found page (another business's code included)."""
    booking = booking_service(request).get_booking(business.id, code)
    if isinstance(booking, Rejected):
        return notice(request, business, "Not found", f"There is no booking {code} here.", 404, staff=staff)
    return booking


def detail_page(request: Request, business: PageBusiness, staff: SignedIn, code: str,
                problem: Problem | None = None, status: int = 200) -> Response:
    service = booking_service(request)
    booking = booking_of(request, business, staff, code)
    if isinstance(booking, Response):
        return booking
    history = service.booking_history(business.id, booking.code)
    messages = service.notification_log(business.id, booking.code)
    return render(request, "booking.html", {
        "business": business, "staff": staff, "active": "calendar", "booking": booking, "history": history,
        "messages": messages, "problem": problem, "done": request.query_params.get("done"),
        "key": new_form_key(),
    }, status)


@router.post("/console/{slug}/bookings/{code}/{action}")
async def change_booking(code: str, action: str, request: Request, signed: Staff) -> Response:
    business, staff = signed
    form = await checked_post(request, staff)
    if action == "move":
        return await run_in_threadpool(move, request, business, staff, code, form)
    if action not in ACTIONS:
        return notice(request, business, "Not found", "There is no such action.", 404, staff=staff)
    return await run_in_threadpool(act, request, business, staff, code, action, form)


def act(request: Request, business: PageBusiness, staff: SignedIn, code: str, action: str,
        form: dict[str, str]) -> Response:
    terms = form.get("late_terms")
    try:
        change = BookingChange(code=code, reason=form.get("reason", "")[:500], source=SOURCE, actor=staff.name,
                               idempotency_key=form_key(form, action),
                               late_terms=terms if terms in ("accept", "waive") else None)
    except ValidationError as invalid:  # a code no booking has (too long), a reason with a control character
        return detail_page(request, business, staff, code, not_sent(invalid), status=422)
    result = ACTIONS[action](booking_service(request))(business.id, change)
    if isinstance(result, Rejected):
        return detail_page(request, business, staff, code, Problem(result.code, result.message, result.field),
                           status=409)
    return RedirectResponse(f"/console/{business.slug}/bookings/{code}?done={action}", status_code=303)


@router.get("/console/{slug}/bookings/{code}/move")
def move_page(code: str, request: Request, signed: Staff) -> Response:
    return move_picker(request, *signed, code)


def move_picker(request: Request, business: PageBusiness, staff: SignedIn, code: str,
                taken: list | None = None, problem: Problem | None = None, status: int = 200) -> Response:
    service = booking_service(request)
    booking = booking_of(request, business, staff, code)
    if isinstance(booking, Response):
        return booking
    place = booking.location  # a move stays at its branch: only its times, in its zone
    zone = booking.starts_at.place_zone
    grid = slot_grid(service, business.id, booking.service, zone, request.query_params.get("from"),
                     location=place.key if place else None)
    return render(request, "move.html", {
        "business": business, "staff": staff, "active": "calendar", "booking": booking, "key": new_form_key(),
        "grid": None if isinstance(grid, Rejected) else grid, "taken": taken, "problem": problem, "zone": zone,
        "base": f"/console/{business.slug}/bookings/{code}/move",
    }, status)


def move(request: Request, business: PageBusiness, staff: SignedIn, code: str, form: dict[str, str]) -> Response:
    at = parse_slot_param(form.get("at")) or dropped_at(form.get("local"), load_zone(form.get("zone")) or business.zone)
    if at is None:
        return move_picker(request, business, staff, code, problem=Problem("invalid_time", "Pick a time."),
                           status=422)
    try:
        command = BookingReschedule(code=code, starts_at=at, source=SOURCE, actor=staff.name,
                                    idempotency_key=form_key(form, "move"))
    except ValidationError as invalid:
        return move_picker(request, business, staff, code, problem=not_sent(invalid), status=422)
    result = booking_service(request).reschedule(business.id, command)
    match result:
        case Booked():
            return RedirectResponse(f"/console/{business.slug}/bookings/{code}?done=moved", status_code=303)
        case SlotTaken(_, nearest):
            zone = nearest[0].starts_at.place_zone if nearest else business.zone
            return move_picker(request, business, staff, code, taken=alternatives(nearest, zone), status=409)
        case Rejected(code=refusal, message=message, field=field):
            return move_picker(request, business, staff, code, problem=Problem(refusal, message, field), status=409)


def not_sent(invalid: ValidationError) -> Problem:
    """What the console says for a change it cannot even put to the core (never the validator's own text)."""
    field = str(invalid.errors()[0]["loc"][0]) if invalid.errors() and invalid.errors()[0]["loc"] else None
    if field == "reason":
        return Problem("invalid_reason", "A reason is plain text of at most 500 characters.", "reason")
    return Problem("invalid_input", "This change cannot be made as sent. Reload the page and try again.", field)


def dropped_at(text: str | None, zone: ZoneInfo) -> datetime | None:
    """Where a booking was dragged to: a wall time on the calendar, in the zone it is drawn in (a branch's day in the
    branch's; the business's by default)."""
    try:
        wall = datetime.fromisoformat(text or "")
    except ValueError:
        return None
    if wall.tzinfo is not None or not in_range(wall):
        return None
    return wall_to_utc(wall.date(), wall.hour * 60 + wall.minute, zone)


# --- a walk-in or a phone call ----------------------------------------------------------------------


@router.get("/console/{slug}/book")
def choose_service(request: Request, signed: Staff) -> Response:
    business, staff = signed
    return render(request, "book_service.html", {
        "business": business, "staff": staff, "active": "book",
        "services": booking_service(request).list_services(business.id)})


@router.get("/console/{slug}/book/{service_key}")
def choose_time(service_key: str, request: Request, signed: Staff) -> Response:
    return time_page(request, *signed, service_key)


def time_page(request: Request, business: PageBusiness, staff: SignedIn, service_key: str) -> Response:
    offered = offered_service(request, business, service_key)
    places = offered.locations if offered else []
    place = branch(request.query_params.get("location"), offered)
    base = f"/console/{business.slug}/book/{service_key}"
    if offered is not None and len(places) > 1 and place is None:  # several branches: which one first
        return render(request, "book_time.html", {
            "business": business, "staff": staff, "active": "book", "offered": offered, "grid": None,
            "places": places, "base": base})
    zone = branch_zone(places, place, business.zone)
    grid = slot_grid(booking_service(request), business.id, service_key, zone,
                     request.query_params.get("from"), location=place) if offered else None
    if offered is None or isinstance(grid, Rejected):
        return notice(request, business, "Not found", "There is no such service here.", 404, staff=staff)
    return render(request, "book_time.html", {
        "business": business, "staff": staff, "active": "book", "offered": offered, "grid": grid,
        "base": base, "places": places, "place": next((p for p in places if p.key == place), None),
        "zone": zone,
    })


def branch(key: str | None, offered: ServiceView | None) -> str | None:
    """The branch picked for a service offered at several (None: it is not, or none was picked)."""
    if offered is None or len(offered.locations) < 2:
        return None
    return key if key in {p.key for p in offered.locations} else None


@router.get("/console/{slug}/book/{service_key}/details")
def details_form(service_key: str, request: Request, signed: Staff) -> Response:
    business, staff = signed
    offered = offered_service(request, business, service_key)
    at = parse_slot_param(request.query_params.get("at"))
    if offered is None or at is None:
        return RedirectResponse(f"/console/{business.slug}/book", status_code=303)
    return form_page(request, business, staff, offered, BookingForm(at, new_form_key()),
                     place=branch(request.query_params.get("location"), offered))


@router.post("/console/{slug}/book/{service_key}")
async def book(service_key: str, request: Request, signed: Staff) -> Response:
    business, staff = signed
    posted = await checked_post(request, staff)
    return await run_in_threadpool(book_walk_in, request, business, staff, service_key, posted)


def book_walk_in(request: Request, business: PageBusiness, staff: SignedIn, service_key: str,
                 posted: dict[str, str]) -> Response:
    offered = offered_service(request, business, service_key)
    if offered is None:
        return notice(request, business, "Not found", "There is no such service here.", 404, staff=staff)
    form = read_form(posted, offered, repeat=False)
    place = branch(posted.get("location"), offered)
    command = booking_command(form, offered, None, SOURCE, staff.name, location=place)
    if isinstance(command, Problem):
        return form_page(request, business, staff, offered, renewed(form), problem=command, status=422, place=place)
    assert isinstance(command, BookingCreate)  # no repeat was read
    match booking_service(request).book(business.id, command):
        case Booked(booking):
            return RedirectResponse(f"/console/{business.slug}/bookings/{booking.code}?done=booked",
                                    status_code=303)
        case SlotTaken(_, nearest):
            return form_page(request, business, staff, offered, renewed(form),
                             taken=alternatives(nearest, branch_zone(offered.locations, place, business.zone)),
                             status=409, place=place)
        case Rejected(code=refusal, message=message, field=field):
            return form_page(request, business, staff, offered, renewed(form),
                             problem=Problem(refusal, message, field), status=422, place=place)


def form_page(request: Request, business: PageBusiness, staff: SignedIn, offered: ServiceView, form: BookingForm,
              *, problem: Problem | None = None, taken: list | None = None, status: int = 200,
              place: str | None = None) -> Response:
    fields = intake_fields(offered)
    zone = branch_zone(offered.locations, place, business.zone)
    return render(request, "book_details.html", {
        "business": business, "staff": staff, "active": "book", "offered": offered, "form": form,
        "fields": fields, "ids": field_ids(fields), "problem": problem, "taken": taken,
        "when": form.at.astimezone(zone) if form.at else None, "zone": zone,
        "place": next((p for p in offered.locations if p.key == place), None),
    }, status)


def offered_service(request: Request, business: PageBusiness, key: str) -> ServiceView | None:
    return next((s for s in booking_service(request).list_services(business.id) if s.key == key), None)


def form_key(form: dict[str, Any], action: str) -> str | None:
    """One write per rendered form: a second tap of the same button replays the first answer."""
    key = str(form.get("key", ""))
    return f"{SOURCE}:{action}:{key}" if FORM_KEY.match(key) else None
