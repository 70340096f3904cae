"""Deposits over HTTP: the customer's pay link, the provider's signed webhook, and the local checkout page.

`/pay/{token}` starts (or reuses) the provider's checkout for the booking the signed link names;
`/webhooks/payments/{provider}` confirms the booking through the core once the provider says it is
paid; `/pay/local/{page}` is the built-in provider's checkout, for the demo and tests.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from nextslot.core.deposits.payments import DepositDue
from nextslot.core.links import Links, LinkTarget
from nextslot.core.results import Rejected
from nextslot.core.service import BookingService
from nextslot.languages import gettext, known, local_when
from nextslot.languages.catalogs import N_
from nextslot.payments.base import DepositCheckout, PaymentProvider, WebhookRefused
from nextslot.payments.local_checkout import LocalCheckout
from nextslot.redaction import shortened
from nextslot.schemas.statuses import BookingStatus
from nextslot.server.page_context import Visitor, business_by_id, visitor_of
from nextslot.server.page_render import notice as page_notice
from nextslot.server.page_render import render

log = logging.getLogger(__name__)
router = APIRouter()


@router.get("/pay/{token}", response_class=HTMLResponse)
async def pay(token: str, request: Request) -> Response:
    service: BookingService = request.app.state.service
    links: Links = request.app.state.links
    target = links.read("pay", token, service.now())
    if isinstance(target, Rejected):
        expired = "expired" in target.code
        why = (N_("This payment link has expired. Book again from the booking page.") if expired
               else N_("This payment link is not valid. Use the link from your booking."))
        return notice(request, N_("This payment link cannot be used"), why, 410 if expired else 403)
    business = await run_in_threadpool(business_by_id, service, target.business_id)
    due = await run_in_threadpool(service.deposit_due, target.business_id, target.code)
    if isinstance(due, Rejected) or business is None:
        return notice(request, N_("Nothing to pay"), N_("There is no deposit to pay for this booking."), 404,
                      business=business)
    payment, booking = due.booking.payment, due.booking
    visitor = visitor_of(request, booking.starts_at.place_zone, language=business.language)
    manage = links.manage_url(target.business_id, booking.code, booking.starts_at.utc,
                              visitor.language if visitor.language_chosen else None)
    if payment is not None and payment.status == "paid":
        return RedirectResponse(manage, status_code=303)
    if booking.status != BookingStatus.PENDING_PAYMENT or payment is None or payment.status != "pending":
        return notice(request, N_("This booking is no longer waiting for a deposit"),
                      N_("Booking %(code)s can no longer be paid for. Book again from the booking page."), 410,
                      values={"code": booking.code_spoken}, business=business, visitor=visitor)
    provider: PaymentProvider = request.app.state.payment_provider
    if due.checkout_url and due.provider == provider.name:
        return RedirectResponse(due.checkout_url, status_code=303)
    checkout = await run_in_threadpool(provider.start_checkout, deposit_checkout(target, due, manage, visitor))
    _, url = await run_in_threadpool(service.record_checkout, target.business_id, due.payment_id, provider.name,
                                     checkout.ref, checkout.url)  # another visit's, if it recorded one first
    return RedirectResponse(url, status_code=303)


def deposit_checkout(target: LinkTarget, due: DepositDue, manage_url: str, visitor: Visitor) -> DepositCheckout:
    booking, language = due.booking, visitor.language
    assert booking.payment is not None
    return DepositCheckout(
        business_id=target.business_id, code=booking.code,
        description=gettext(language, "Deposit for %(service)s, %(when)s (booking %(code)s)",
                            service=booking.service_name, when=local_when(booking.starts_at.utc, visitor.zone, language),
                            code=booking.code),
        amount=booking.payment.amount, pay_by=booking.payment.expires_at,
        success_url=manage_url, cancel_url=manage_url, save_card=due.save_card, language=language,
    )


@router.post("/webhooks/payments/{provider_name}")
async def payment_webhook(provider_name: str, request: Request) -> Response:
    provider: PaymentProvider = request.app.state.payment_provider
    if provider_name != provider.name:
        return problem(404, "unknown_provider", f"This server takes payments through {provider.name}.")
    return await run_in_threadpool(receive, request.app.state.service, provider, await request.body(),
                                   dict(request.headers))


def receive(service: BookingService, provider: PaymentProvider, body: bytes, headers: Mapping[str, str]) -> Response:
    """Verify, then settle through the core. A replayed or unknown event is acknowledged, never acted on twice."""
    try:
        paid = provider.read_webhook(body, headers)
    except WebhookRefused as refused:
        return problem(400, "invalid_webhook", str(refused))
    if paid is None:
        return JSONResponse({"received": True, "outcome": "ignored"})
    settled = service.settle_deposit(provider.name, paid.ref, paid.amount_minor, paid.currency,
                                     {"event": "paid", "id": paid.event_id, "amount_minor": paid.amount_minor,
                                      "currency": paid.currency},
                                     paid.payer_ref, paid.payment_ref)
    if isinstance(settled, Rejected):
        log.warning("payment webhook for a checkout we did not start: %s %s", provider.name, shortened(paid.ref))
        return JSONResponse({"received": True, "outcome": "unknown_checkout"})
    if settled.outcome in ("mismatch", "refund_due"):
        log.warning("deposit %s for booking %s: %s", shortened(paid.ref), settled.code, settled.outcome)
    return JSONResponse({"received": True, "outcome": settled.outcome})


@router.get("/pay/local/{page}", response_class=HTMLResponse)
async def local_checkout(page: str, request: Request) -> Response:
    details = local_page(request, page)
    if details is None:
        return notice(request, N_("Checkout not found"), N_("This checkout link is not valid."), 404)
    return render(request, "local_checkout.html", {"page": details, "token": page,
                                                   "visitor": checkout_visitor(request, details)}, frameable=False)


@router.post("/pay/local/{page}")
async def local_pay(page: str, request: Request) -> Response:
    """The built-in provider takes the 'payment' and reports it exactly like a real provider would."""
    details = local_page(request, page)
    if details is None:
        return notice(request, N_("Checkout not found"), N_("This checkout link is not valid."), 404)
    provider: LocalCheckout = request.app.state.payment_provider
    body, headers = provider.paid_event(details)
    answer = await run_in_threadpool(receive, request.app.state.service, provider, body, headers)
    if answer.status_code != 200:
        return notice(request, N_("Payment not taken"), N_("Something went wrong; you were not charged."), 502,
                      visitor=checkout_visitor(request, details))
    return RedirectResponse(details["success_url"], status_code=303)


def local_page(request: Request, page: str) -> dict | None:
    provider = request.app.state.payment_provider
    return provider.read_page(page) if isinstance(provider, LocalCheckout) else None


def checkout_visitor(request: Request, details: dict) -> Visitor:
    """The checkout speaks the language picked on it, else the one the pay link was opened in."""
    picked = known(request.query_params.get("lang"))
    return Visitor(ZoneInfo("UTC"), False, False, picked or known(details.get("language")) or "en", picked is not None)


def notice(request: Request, title: str, message: str, status: int, **context: Any) -> Response:
    """A pay page that explains itself, in the customer's language (never framed: it leads to a payment)."""
    return page_notice(request, title, message, status, frameable=False, **context)


def problem(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)
