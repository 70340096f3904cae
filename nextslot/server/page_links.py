"""The signed links the pages hand out (manage, pay) as paths on this server, and the page for a bad one."""
from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from nextslot.core.links import Links
from nextslot.core.results import Rejected
from nextslot.languages.catalogs import N_
from nextslot.schemas.statuses import BookingStatus
from nextslot.schemas.views import BookingView
from nextslot.server.page_render import notice


def local_path(links: Links, url: str) -> str:
    """A link of ours as a path on this server: it works behind any host name, and in tests."""
    return url.removeprefix(links.public_url)


def manage_path(links: Links, business_id: int, booking: BookingView, language: str | None = None) -> str:
    """The booking's manage link (in `language`, when one was picked); it stops working when the appointment
    starts."""
    return local_path(links, links.manage_url(business_id, booking.code, booking.starts_at.utc, language))


def calendar_path(manage_token: str) -> str:
    """The booking as an .ics file (served by server/ics.py under the same signed token)."""
    return f"/ics/booking/{manage_token}.ics"


def pay_path(links: Links, business_id: int, booking: BookingView, language: str | None = None) -> str | None:
    """The deposit's pay link (in `language`, when one was picked) while a deposit is still awaited, else None."""
    payment = booking.payment
    if booking.status != BookingStatus.PENDING_PAYMENT or payment is None or payment.status != "pending":
        return None
    return local_path(links, links.pay_url(business_id, booking.code, payment.expires_at, language))


def link_refused(request: Request, refused: Rejected, *, frameable: bool) -> Response:
    if refused.code == "link_expired":
        return notice(request, N_("This link has expired"),
                      N_("Links to a booking stop working when the appointment starts. "
                         "Contact the business if you need to change it."), 410, frameable=frameable)
    return notice(request, N_("This link is not valid"), N_("This link is not valid. Use the link from your "
                                                             "confirmation."), 403, frameable=frameable)
