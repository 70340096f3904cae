"""A checkout served by nextslot itself, for the demo and tests: no money moves.

Paying on its page makes it send a webhook signed the way nextslot signs its own outgoing events
(`t=<unix>,v1=<hmac>` over "t.body"), so the same verification and settlement path runs as for Stripe.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

from nextslot.payments.base import ChargeOutcome, Checkout, DepositCheckout, FeeCharge, Paid, WebhookRefused
from nextslot.webhooks.signing import refusal, signature

HEADER = "local-signature"
TOLERANCE_SECONDS = 300


class LocalCheckout:
    name = "local"

    def __init__(self, secret: str, public_url: str):
        self._secret = f"local-payments:{secret}"
        self._pages = URLSafeSerializer(secret, salt="nextslot-local-checkout")
        self._public_url = public_url.rstrip("/")

    def start_checkout(self, deposit: DepositCheckout) -> Checkout:
        ref = f"lc_{secrets.token_hex(12)}"
        page = self._pages.dumps({"ref": ref, "amount_minor": deposit.amount.amount_minor,
                                  "currency": deposit.amount.currency, "display": deposit.amount.display,
                                  "description": deposit.description, "success_url": deposit.success_url,
                                  "cancel_url": deposit.cancel_url, "language": deposit.language})
        return Checkout(ref=ref, url=f"{self._public_url}/pay/local/{page}")

    def charge_saved(self, charge: FeeCharge) -> ChargeOutcome:
        """No money moves: a card 'saved' by this provider's checkout is always charged (the demo and tests)."""
        if not (charge.payer_ref.startswith("lcus_") and charge.payment_ref.startswith("lpi_")):
            return ChargeOutcome(False, problem="no_payment_method")
        digest = hmac.new(self._secret.encode(), charge.idempotency_key.encode(), hashlib.sha256).hexdigest()
        return ChargeOutcome(True, ref=f"lch_{digest[:24]}")  # the same key, the same charge

    def read_page(self, token: str) -> dict[str, Any] | None:
        """What the checkout page shows and charges; None if the page token was altered."""
        try:
            return self._pages.loads(token)
        except BadSignature:
            return None

    def paid_event(self, page: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        """The webhook the provider sends once the customer pays: body and signature header."""
        body = json.dumps({"id": f"evt_{secrets.token_hex(8)}", "type": "payment.succeeded", "ref": page["ref"],
                           "amount_minor": page["amount_minor"], "currency": page["currency"],
                           "payer": f"lcus_{secrets.token_hex(8)}", "payment": f"lpi_{secrets.token_hex(8)}"})
        now = int(time.time())
        return body.encode(), {HEADER: signature(self._secret, now, body)}

    def read_webhook(self, body: bytes, headers: Mapping[str, str]) -> Paid | None:
        if problem := refusal(self._secret, headers.get(HEADER, ""), body.decode("utf-8", "replace"), time.time(),
                              TOLERANCE_SECONDS, "Local-Signature"):
            raise WebhookRefused(problem)
        try:
            event = json.loads(body)
            if event["type"] != "payment.succeeded":
                return None
            return Paid.read(event["ref"], event["amount_minor"], event["currency"], event["id"], event.get("payer"),
                             event.get("payment"))
        except (ValueError, KeyError, TypeError, RecursionError):
            raise WebhookRefused("malformed event body") from None
