"""`/w/{token}`: a waitlist offer taken with one tap, the same as replying YES (booked through the core).

The signed link names the business and the offer; it outlives the offer by a day so that a late tap
gets the nearest openings instead of a dead page.
"""
from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from nextslot.core.instants import load_zone
from nextslot.core.links import LinkTarget
from nextslot.core.results import Booked, Rejected, SlotTaken
from nextslot.core.service import BookingService
from nextslot.languages import choose, from_accept_language, known, local_when
from nextslot.languages.catalogs import N_
from nextslot.server.page_render import security_headers, templates

router = APIRouter()


@router.get("/w/{token}", response_class=HTMLResponse)
async def show_offer(token: str, request: Request) -> Response:
    return await on_offer(request, token, offer_page)


@router.post("/w/{token}")
async def take_offer(token: str, request: Request) -> Response:
    return await on_offer(request, token, accept)


async def offer_page(request: Request, token: str, target: LinkTarget, summary: dict) -> Response:
    service: BookingService = request.app.state.service
    language = offer_language(request, summary)
    return page(request, "offers/offer.html", 200, offer=summary, token=token, lang=language,
                when=local_when(summary["starts_at"], load_zone(summary["zone"]), language),
                open=summary["status"] == "open" and summary["expires_at"] > service.now())


async def accept(request: Request, token: str, target: LinkTarget, summary: dict) -> Response:
    service: BookingService = request.app.state.service
    result = await run_in_threadpool(service.accept_offer, int(target.code), "link")
    zone = load_zone(summary["zone"])
    language = offer_language(request, summary)
    if isinstance(result, Booked):
        booking = result.booking
        links = request.app.state.links
        # an offer goes to the waiting customer alone, so its page's language (hers) goes on to the booking's
        return RedirectResponse(links.manage_url(target.business_id, booking.code, booking.starts_at.utc, language),
                                status_code=303)
    if isinstance(result, SlotTaken):
        return page(request, "offers/gone.html", 409, offer=summary, lang=language,
                    when=local_when(summary["starts_at"], zone, language),
                    openings=[local_when(a.starts_at.utc, zone, language) for a in result.alternatives])
    return page(request, "offers/notice.html", 422, title=N_("We could not book it"), message=result.message,
                lang=language)


def offer_language(request: Request, summary: dict) -> str:
    """The page's `lang=`, else the waiting customer's own language, else the browser's."""
    record = summary.get("language")
    return choose(known(request.query_params.get("lang")), record if record != "en" else None,
                  from_accept_language(request.headers.get("accept-language")))


async def on_offer(request: Request, token: str,
                   handle: Callable[[Request, str, LinkTarget, dict], Awaitable[Response]]) -> Response:
    """Handle the offer behind a link with its summary, or show the page saying why there is none."""
    target = read(request, token)
    if isinstance(target, Response):
        return target
    service: BookingService = request.app.state.service
    summary = await run_in_threadpool(service.offer_summary, target.business_id, int(target.code))
    if isinstance(summary, Rejected):
        return page(request, "offers/notice.html", 404, title=N_("Offer not found"),
                    message=N_("There is no such offer."), lang=browser_language(request))
    return await handle(request, token, target, summary)


def read(request: Request, token: str) -> LinkTarget | Response:
    target = request.app.state.links.read("offer", token, request.app.state.service.now())
    if isinstance(target, Rejected):
        status = 410 if target.code == "link_expired" else 403
        message = (N_("This link has expired.") if target.code == "link_expired"
                   else N_("This link is not valid. Use the link from your confirmation."))
        return page(request, "offers/notice.html", status, title=N_("This link cannot be used"), message=message,
                    lang=browser_language(request))
    return target


def browser_language(request: Request) -> str:
    return choose(known(request.query_params.get("lang")), from_accept_language(request.headers.get("accept-language")))


def page(request: Request, name: str, status: int, **context) -> Response:
    nonce = secrets.token_urlsafe(12)  # the pages' own headers: its address carries a signed token
    response = templates.TemplateResponse(request, name, {**context, "nonce": nonce}, status_code=status,
                                          headers=security_headers(nonce, frameable=False))
    response.headers["Content-Language"] = context.get("lang", "en")
    return response
