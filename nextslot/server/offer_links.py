"""`/w/{token}`: a waitlist offer taken with one tap, the same as replying YES (booked through the core).

The signed link names the business and the offer; it outlives the offer by a day so that a late tap
gets the nearest openings instead of a dead page.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from nextslot.core.instants import load_zone
from nextslot.core.links import LinkTarget
from nextslot.core.results import Booked, Rejected, SlotTaken
from nextslot.core.service import BookingService
from nextslot.reminders.templates import spoken_when

router = APIRouter()
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


@router.get("/w/{token}", response_class=HTMLResponse)
async def show_offer(token: str, request: Request) -> Response:
    return await on_offer(request, token, offer_page)


@router.post("/w/{token}")
async def take_offer(token: str, request: Request) -> Response:
    return await on_offer(request, token, accept)


async def offer_page(request: Request, token: str, target: LinkTarget, summary: dict) -> Response:
    service: BookingService = request.app.state.service
    return page(request, "offers/offer.html", 200, offer=summary, token=token,
                when=spoken_when(summary["starts_at"], load_zone(summary["zone"]), "en"),
                open=summary["status"] == "open" and summary["expires_at"] > service.now())


async def accept(request: Request, token: str, target: LinkTarget, summary: dict) -> Response:
    service: BookingService = request.app.state.service
    result = await run_in_threadpool(service.accept_offer, int(target.code), "link")
    zone = load_zone(summary["zone"])
    if isinstance(result, Booked):
        booking = result.booking
        links = request.app.state.links
        return RedirectResponse(links.manage_url(target.business_id, booking.code, booking.starts_at.utc),
                                status_code=303)
    if isinstance(result, SlotTaken):
        return page(request, "offers/gone.html", 409, offer=summary,
                    when=spoken_when(summary["starts_at"], zone, "en"),
                    openings=[spoken_when(a.starts_at.utc, zone, "en") for a in result.alternatives])
    return page(request, "offers/notice.html", 422, title="We could not book it", message=result.message)


async def on_offer(request: Request, token: str,
                   handle: Callable[[Request, str, LinkTarget, dict], Awaitable[Response]]) -> Response:
    """Handle the offer behind a link with its summary, or show the page saying why there is none."""
    target = read(request, token)
    if isinstance(target, Response):
        return target
    service: BookingService = request.app.state.service
    summary = await run_in_threadpool(service.offer_summary, target.business_id, int(target.code))
    if isinstance(summary, Rejected):
        return page(request, "offers/notice.html", 404, title="Offer not found", message=summary.message)
    return await handle(request, token, target, summary)


def read(request: Request, token: str) -> LinkTarget | Response:
    target = request.app.state.links.read("offer", token, request.app.state.service.now())
    if isinstance(target, Rejected):
        status = 410 if target.code == "link_expired" else 403
        return page(request, "offers/notice.html", status, title="This link cannot be used", message=target.message)
    return target


def page(request: Request, name: str, status: int, **context) -> Response:
    return templates.TemplateResponse(request, name, context, status_code=status,
                                      headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"})
