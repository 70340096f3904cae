"""What every payment provider offers: a hosted checkout for one deposit, and verified 'paid' webhooks."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from nextslot.schemas.views import Money


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


class WebhookRefused(Exception):
    """The webhook's signature or body is not valid: answer 400 and change nothing."""


class PaymentProvider(Protocol):
    name: str

    def start_checkout(self, deposit: DepositCheckout) -> Checkout: ...

    def read_webhook(self, body: bytes, headers: Mapping[str, str]) -> Paid | None:
        """The payment a verified webhook reports, None for events that are not a completed payment."""
        ...
