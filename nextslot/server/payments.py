"""Deposits over HTTP: the customer's pay link, the provider's signed webhook, and the local checkout page.

`/pay/{token}` starts (or reuses) the provider's checkout for the booking the signed link names;
`/webhooks/payments/{provider}` confirms the booking through the core once the provider says it is
paid; `/pay/local/{page}` is the built-in provider's checkout, for the demo and tests.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from nextslot.core.deposits.payments import DepositDue
from nextslot.core.links import Links, LinkTarget
from nextslot.core.results import Rejected
from nextslot.core.service import BookingService
from nextslot.payments.base import DepositCheckout, PaymentProvider, WebhookRefused
from nextslot.payments.local_checkout import LocalCheckout
from nextslot.redaction import shortened
from nextslot.schemas.statuses import BookingStatus

log = logging.getLogger(__name__)
router = APIRouter()
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


@router.get("/pay/{token}", response_class=HTMLResponse)
async def pay(token: str, request: Request) -> Response:
    service: BookingService = request.app.state.service
    links: Links = request.app.state.links
    target = links.read("pay", token, service.now())
    if isinstance(target, Rejected):
        return notice(request, "This payment link cannot be used", target.message, 410 if "expired" in target.code else 403)
    due = await run_in_threadpool(service.deposit_due, target.business_id, target.code)
    if isinstance(due, Rejected):
        return notice(request, "Nothing to pay", due.message, 404)
    payment, booking = due.booking.payment, due.booking
    manage = links.manage_url(target.business_id, booking.code, booking.starts_at.utc)
    if payment is not None and payment.status == "paid":
        return RedirectResponse(manage, status_code=303)
    if booking.status != BookingStatus.PENDING_PAYMENT or payment is None or payment.status != "pending":
        return notice(request, "This booking is no longer waiting for a deposit",
                      f"Booking {booking.code_spoken} is {booking.status.replace('_', ' ')}. "
                      "Book again from the booking page.", 410)
    provider: PaymentProvider = request.app.state.payment_provider
    if due.checkout_url and due.provider == provider.name:
        return RedirectResponse(due.checkout_url, status_code=303)
    checkout = await run_in_threadpool(provider.start_checkout, deposit_checkout(target, due, manage))
    await run_in_threadpool(service.record_checkout, target.business_id, due.payment_id, provider.name,
                            checkout.ref, checkout.url)
    return RedirectResponse(checkout.url, status_code=303)


def deposit_checkout(target: LinkTarget, due: DepositDue, manage_url: str) -> DepositCheckout:
    booking = due.booking
    assert booking.payment is not None
    return DepositCheckout(
        business_id=target.business_id, code=booking.code,
        description=f"Deposit for {booking.service_name}, {booking.starts_at.spoken} (booking {booking.code})",
        amount=booking.payment.amount, pay_by=booking.payment.expires_at,
        success_url=manage_url, cancel_url=manage_url, save_card=due.save_card,
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
                                     {"event": "paid", "id": paid.event_id, "amount_minor": paid.amount_minor},
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
        return notice(request, "Checkout not found", "This checkout link is not valid.", 404)
    return templates.TemplateResponse(request, "payments/local_checkout.html", {"page": details, "token": page})


@router.post("/pay/local/{page}")
async def local_pay(page: str, request: Request) -> Response:
    """The built-in provider takes the 'payment' and reports it exactly like a real provider would."""
    details = local_page(request, page)
    if details is None:
        return notice(request, "Checkout not found", "This checkout link is not valid.", 404)
    provider: LocalCheckout = request.app.state.payment_provider
    body, headers = provider.paid_event(details)
    answer = await run_in_threadpool(receive, request.app.state.service, provider, body, headers)
    if answer.status_code != 200:
        return notice(request, "Payment not taken", "Something went wrong; you were not charged.", 502)
    return RedirectResponse(details["success_url"], status_code=303)


def local_page(request: Request, page: str) -> dict | None:
    provider = request.app.state.payment_provider
    return provider.read_page(page) if isinstance(provider, LocalCheckout) else None


def notice(request: Request, title: str, message: str, status: int) -> Response:
    return templates.TemplateResponse(request, "payments/notice.html", {"title": title, "message": message},
                                      status_code=status)


def problem(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)
