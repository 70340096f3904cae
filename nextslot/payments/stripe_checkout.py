"""Stripe Checkout through the official `stripe` library (StripeClient); webhooks verified with Stripe-Signature."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import stripe

from nextslot.payments.base import Checkout, DepositCheckout, Paid, WebhookRefused

PAID_EVENTS = ("checkout.session.completed", "checkout.session.async_payment_succeeded")
# Stripe accepts a session expiry between 30 minutes and 24 hours ahead
MIN_EXPIRY, MAX_EXPIRY = timedelta(minutes=31), timedelta(hours=23)


class StripeCheckout:
    name = "stripe"

    def __init__(self, api_key: str, webhook_secret: str, api_base: str | None = None):
        bases = {"api": api_base} if api_base else None
        self._client = stripe.StripeClient(api_key, base_addresses=bases, max_network_retries=2)
        self._webhook_secret = webhook_secret

    def start_checkout(self, deposit: DepositCheckout) -> Checkout:
        params: dict = {
            "mode": "payment",
            "line_items": [{"quantity": 1, "price_data": {
                "currency": deposit.amount.currency.lower(), "unit_amount": deposit.amount.amount_minor,
                "product_data": {"name": deposit.description}}}],
            "success_url": deposit.success_url,
            "cancel_url": deposit.cancel_url,
            "client_reference_id": deposit.code,
            "metadata": {"business_id": str(deposit.business_id), "booking_code": deposit.code},
        }
        ahead = deposit.pay_by - datetime.now(UTC)
        if MIN_EXPIRY <= ahead <= MAX_EXPIRY:  # else Stripe's default; a late payment is handled on our side
            params["expires_at"] = int(deposit.pay_by.timestamp())
        session = self._client.v1.checkout.sessions.create(params=params)
        return Checkout(ref=session.id, url=session.url)

    def read_webhook(self, body: bytes, headers: Mapping[str, str]) -> Paid | None:
        try:
            event = self._client.construct_event(body, headers.get("stripe-signature", ""), self._webhook_secret)
        except (stripe.SignatureVerificationError, ValueError) as error:
            raise WebhookRefused(str(error)) from None
        if event.type not in PAID_EVENTS:
            return None
        session = event.data.object.to_dict()
        if session.get("payment_status") != "paid":  # e.g. a bank debit still clearing
            return None
        return Paid(ref=session["id"], amount_minor=int(session["amount_total"]),
                    currency=str(session["currency"]).upper(), event_id=event.id)
