"""What every payment provider offers: a hosted checkout for one deposit, and verified 'paid' webhooks."""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from nextslot.schemas.inputs import BIGINT
from nextslot.schemas.views import Money

PROVIDER_ID = re.compile(r"[A-Za-z0-9_-]{1,200}")  # cs_..., evt_..., pi_..., lc_...


@dataclass(frozen=True)
class DepositCheckout:
    """What the customer is paying for, and where the provider sends them afterwards."""

    business_id: int
    code: str
    description: str  # "Deposit for Mobile repair, booking Y7CTDJ"
    amount: Money
    pay_by: datetime
    success_url: str
    cancel_url: str
    save_card: bool = False  # keep the card for a later off-session charge (a late cancel's or no-show's fee)
    language: str = "en"  # the customer's: the checkout page speaks it (Stripe: its `locale`)


@dataclass(frozen=True)
class Checkout:
    ref: str  # the provider's id of the checkout (Stripe: the Checkout Session id)
    url: str  # where to send the customer


@dataclass(frozen=True)
class Paid:
    """A verified report that a checkout was paid."""

    ref: str
    amount_minor: int
    currency: str
    event_id: str
    payer_ref: str | None = None  # the provider's customer (Stripe: cus_...), when the card was saved
    payment_ref: str | None = None  # the provider's payment (Stripe: pi_...), whose card a fee is charged to

    @classmethod
    def read(cls, ref: Any, amount_minor: Any, currency: Any, event_id: Any, payer_ref: Any = None,
             payment_ref: Any = None) -> Paid:
        """The report from an event's fields as sent; WebhookRefused if one is not what a provider sends (a signed
        body is still checked: a NaN id or a huge amount must not reach the database)."""
        ids_ok = all(isinstance(v, str) and PROVIDER_ID.fullmatch(v) for v in (ref, event_id)) and all(
            v is None or (isinstance(v, str) and PROVIDER_ID.fullmatch(v)) for v in (payer_ref, payment_ref))
        amount_ok = isinstance(amount_minor, int) and not isinstance(amount_minor, bool) and \
            0 <= amount_minor <= BIGINT
        if not (ids_ok and amount_ok and isinstance(currency, str) and re.fullmatch(r"[A-Za-z]{3}", currency)):
            raise WebhookRefused("malformed event body")
        return cls(ref, amount_minor, currency.upper(), event_id, payer_ref, payment_ref)


@dataclass(frozen=True)
class FeeCharge:
    """A fee charged off-session to the card a deposit was paid with."""

    amount: Money
    description: str
    payer_ref: str
    payment_ref: str
    idempotency_key: str  # the same on every retry of this fee: the provider charges once
    metadata: dict[str, str]


@dataclass(frozen=True)
class ChargeOutcome:
    charged: bool
    ref: str | None = None  # the provider's charge id
    problem: str | None = None  # why not: card_declined, authentication_required, ...
    retry: bool = False  # the provider could not be reached: try again later with the same key


class WebhookRefused(Exception):
    """The webhook's signature or body is not valid: answer 400 and change nothing."""


class PaymentProvider(Protocol):
    name: str

    def start_checkout(self, deposit: DepositCheckout) -> Checkout: ...

    def charge_saved(self, charge: FeeCharge) -> ChargeOutcome:
        """Charge a saved card without the customer present; a decline is an outcome, not an exception."""
        ...

    def read_webhook(self, body: bytes, headers: Mapping[str, str]) -> Paid | None:
        """The payment a verified webhook reports, None for events that are not a completed payment."""
        ...
