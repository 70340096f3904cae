"""Stripe Checkout through the official `stripe` library (StripeClient); webhooks verified with Stripe-Signature."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import stripe

from nextslot.payments.base import ChargeOutcome, Checkout, DepositCheckout, FeeCharge, Paid, WebhookRefused

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
            "locale": deposit.language,  # en, es, fr, de: all Stripe Checkout locales
        }
        if deposit.save_card:  # a late cancel or a no-show may cost a fee: keep the card for an off-session charge
            params["customer_creation"] = "always"
            params["payment_intent_data"] = {"setup_future_usage": "off_session"}
        ahead = deposit.pay_by - datetime.now(UTC)
        if MIN_EXPIRY <= ahead <= MAX_EXPIRY:  # else Stripe's default; a late payment is handled on our side
            params["expires_at"] = int(deposit.pay_by.timestamp())
        session = self._client.v1.checkout.sessions.create(params=params)
        return Checkout(ref=session.id, url=session.url)

    def read_webhook(self, body: bytes, headers: Mapping[str, str]) -> Paid | None:
        header = headers.get("stripe-signature", "")
        if not header.isascii():  # the library compares it as text, which a non-ASCII one makes a TypeError
            raise WebhookRefused("malformed Stripe-Signature header")
        try:
            event = self._client.construct_event(body, header, self._webhook_secret)
        except stripe.SignatureVerificationError:  # its text advises on the library, not the sender
            raise WebhookRefused("the Stripe-Signature header is missing, malformed, too old or not for this body") from None
        except ValueError:  # not UTF-8, not JSON: its text is the decoder's
            raise WebhookRefused("malformed event body") from None
        except (AttributeError, RecursionError):  # signed, but not an event object (a list, nested too deep)
            raise WebhookRefused("malformed event body") from None
        fields = event.to_dict()
        if fields.get("type") not in PAID_EVENTS:
            return None
        data = fields.get("data")
        session = data.get("object") if isinstance(data, dict) else None
        if not isinstance(session, dict):
            raise WebhookRefused("malformed event body")
        if session.get("payment_status") != "paid":  # e.g. a bank debit still clearing
            return None
        amount, currency = session.get("amount_total"), session.get("currency")
        if (conversion := session.get("currency_conversion")) is not None:
            # Adaptive Pricing, before API version 2025-03-31: the session tells the customer's currency and amount,
            # and the ones the checkout was made in (the deposit's) here
            if not isinstance(conversion, dict):
                raise WebhookRefused("malformed event body")
            amount, currency = conversion.get("amount_total"), conversion.get("source_currency")
        return Paid.read(session.get("id"), amount, currency, fields.get("id"),
                         text_or_none(session.get("customer")), text_or_none(session.get("payment_intent")))

    def charge_saved(self, charge: FeeCharge) -> ChargeOutcome:
        """A PaymentIntent confirmed off-session with the deposit's card; Stripe's idempotency key makes a retry
        return the first charge."""
        try:
            deposit = self._client.v1.payment_intents.retrieve(charge.payment_ref)
            method = deposit.payment_method
            if not method:
                return ChargeOutcome(False, problem="no_payment_method")
            intent = self._client.v1.payment_intents.create(params={
                "amount": charge.amount.amount_minor, "currency": charge.amount.currency.lower(),
                "customer": charge.payer_ref, "payment_method": method if isinstance(method, str) else method.id,
                "off_session": True, "confirm": True, "description": charge.description,
                "metadata": charge.metadata,
            }, options={"idempotency_key": charge.idempotency_key})
        except stripe.CardError as error:  # declined, or the bank wants the customer present
            return ChargeOutcome(False, problem=error.code or "card_declined")
        except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError):
            return ChargeOutcome(False, problem="provider_unavailable", retry=True)
        except stripe.StripeError as error:
            return ChargeOutcome(False, problem=error.code or "refused")
        if intent.status == "succeeded":
            return ChargeOutcome(True, ref=intent.id)
        return ChargeOutcome(False, ref=intent.id, problem=intent.status)


def text_or_none(value: object) -> str | None:
    """A Stripe id given as a string (or an expanded object's id)."""
    if isinstance(value, str):
        return value or None
    found = getattr(value, "id", None) or (value.get("id") if isinstance(value, dict) else None)
    return str(found) if found else None
