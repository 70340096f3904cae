"""Charging due late-cancel and no-show fees: leased from the core, charged by the provider with no transaction
open, recorded back through the core. Run by the scheduler; safe to run in several processes at once."""
from __future__ import annotations

import logging

from nextslot.core.money import money
from nextslot.core.service import BookingService
from nextslot.payments.base import ChargeOutcome, FeeCharge, PaymentProvider

log = logging.getLogger(__name__)


def charge_due_fees(service: BookingService, provider: PaymentProvider, limit: int = 20) -> int:
    """Charge every due fee once; returns how many were charged."""
    charged = 0
    for due in service.lease_due_fees(limit):
        if due.provider != provider.name:  # the card was saved with another provider than this server's
            outcome = ChargeOutcome(False, problem=f"card saved with {due.provider}")
        else:
            outcome = provider.charge_saved(FeeCharge(
                amount=money(due.amount_minor, due.currency), description=due.description, payer_ref=due.payer_ref,
                payment_ref=due.payment_ref, idempotency_key=due.idempotency_key,
                metadata={"business_id": str(due.business_id), "booking_code": due.code, "fee": due.kind}))
        if not outcome.charged:
            log.info("fee %s for booking %s not charged: %s", due.fee_id, due.code, outcome.problem)
        service.record_fee_charge(due.fee_id, outcome.charged, outcome.ref, outcome.problem, outcome.retry)
        charged += outcome.charged
    return charged
