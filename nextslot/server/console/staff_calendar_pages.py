"""Staff members' own calendars at the console: connect Google or Microsoft 365 (OAuth with PKCE), see how each
calendar is doing, disconnect one. An owner manages everyone's; a staff member their own (the staff member whose
email is theirs).

GET  /console/{slug}/calendars                          each staff member's calendars and the buttons
POST /console/{slug}/calendars/connect/{provider}       to the provider's consent page (the flow in a cookie)
GET  /console/{slug}/calendars/callback                 the provider sends the browser back here
POST /console/{slug}/calendars/{calendar_id}/disconnect

The console's session cookie is SameSite=Strict, so the browser does not send it when the provider's page sends
it back: the callback is authorised by the flow cookie instead (SameSite=Lax, HttpOnly, encrypted, 15 minutes,
set only by the signed-in, CSRF-checked POST that started the flow) and the state it must match.
"""
from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from nextslot.calendars import connecting
from nextslot.calendars.connections import disconnect, resource_to_connect, staff_calendars
from nextslot.core.results import Rejected
from nextslot.server.console.session import Id, Staff, booking_service, business_of, checked_post, notice, render
from nextslot.server.page_render import over_https

router = APIRouter(include_in_schema=False)
FLOW_COOKIE = "nextslot_calendar_connect"


def binding(slug: str) -> str:
    return f"console:{slug}"


def callback_path(slug: str) -> str:
    return f"/console/{slug}/calendars/callback"


@router.get("/console/{slug}/calendars")
def calendars_page(request: Request, signed: Staff) -> Response:
    return calendars_response(request, *signed)


def calendars_response(request: Request, business, staff, problem: Rejected | None = None, done: str = "",
                       status: int = 200) -> Response:
    people = staff_calendars(booking_service(request).session_factory, business.id, staff.is_owner, staff.email)
    return render(request, "calendars.html", {
        "business": business, "staff": staff, "active": "settings", "people": people, "problem": problem,
        "done": done or request.query_params.get("done", ""),
        "providers": connecting.connectable(request.app.state.calendars)}, status)


@router.post("/console/{slug}/calendars/connect/{provider}")
async def connect_start(request: Request, slug: str, provider: str, signed: Staff) -> Response:
    business, staff = signed
    form = await checked_post(request, staff)
    factory = booking_service(request).session_factory
    resource = await run_in_threadpool(resource_to_connect, factory, business.id, form.get("resource", ""),
                                       staff.is_owner, staff.email)
    if isinstance(resource, Rejected):
        return calendars_response(request, business, staff, resource, status=403 if resource.code == "not_allowed"
                                  else 400)
    redirect_uri = request.app.state.settings.public_url.rstrip("/") + callback_path(slug)
    started = await run_in_threadpool(connecting.start, request.app.state.calendars, request.app.state.secret_key,
                                      provider, business.id, resource, redirect_uri, binding(slug))
    if isinstance(started, Rejected):
        return calendars_response(request, business, staff, started, status=400)
    response = RedirectResponse(started.url, status_code=303)
    response.set_cookie(FLOW_COOKIE, started.sealed, max_age=connecting.FLOW_SECONDS, path=callback_path(slug),
                        httponly=True, samesite="lax", secure=over_https(request))
    return response


@router.get("/console/{slug}/calendars/callback")
async def connect_finish(request: Request, slug: str) -> Response:
    business = business_of(request, slug)
    service = booking_service(request)
    query = {k: v for k, v in request.query_params.items() if k in ("code", "state", "error", "scope",
                                                                    "session_state", "error_description")}
    done = await run_in_threadpool(connecting.finish, request.app.state.calendars, request.app.state.secret_key,
                                   service.session_factory, request.cookies.get(FLOW_COOKIE), query, binding(slug),
                                   service.now())
    if isinstance(done, Rejected):
        response = notice(request, business, "Calendar not connected", done.message, 400)
    else:  # a page, not a redirect: the next request is our own page's, so the session cookie goes with it
        response = render(request, "calendar_connected.html", {"business": business, "staff": None})
    response.delete_cookie(FLOW_COOKIE, path=callback_path(slug))
    return response


@router.post("/console/{slug}/calendars/{calendar_id}/disconnect")
async def disconnect_calendar(request: Request, slug: str, calendar_id: Id, signed: Staff) -> Response:
    business, staff = signed
    await checked_post(request, staff)
    service = booking_service(request)
    outcome = await run_in_threadpool(disconnect, service.session_factory, request.app.state.calendars, business.id,
                                      calendar_id, staff.is_owner, staff.email, service.now())
    if isinstance(outcome, Rejected):
        return calendars_response(request, business, staff, outcome, status=403 if outcome.code == "not_allowed"
                                  else 404)
    return RedirectResponse(f"/console/{slug}/calendars?done=disconnected", status_code=303)
