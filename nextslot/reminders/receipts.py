"""Delivery receipts (Twilio's status callback): a provider's report on a message it took settles it or moves on."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from nextslot.core.events import emit_notification_outcome
from nextslot.core.lent import lent
from nextslot.storage.tables import DeliveryAttempt, EarlyReceipt, Notification

# how far a report says a message got: a later report never takes an attempt back, and a delivery, proven, outranks a
# failure reported before or after it (reports come out of order, and a carrier's can contradict)
RANK = {"queued": 0, "accepted": 0, "sending": 0, "sent": 1, "undelivered": 2, "failed": 2, "delivered": 3, "read": 4}


def record_receipt(session_factory: sessionmaker[Session], now: datetime, provider_id: str, status: str,
                   error_code: str | None = None, sent_as: tuple[str, str] | None = None) -> bool:
    """Apply a provider's status report (idempotent: a repeated report changes nothing).

    delivered/read settles the notification; failed/undelivered sends it on to the next channel.
    Returns False for a message whose send is not recorded (yet): the report is kept, and applied when it is
    (the provider can report faster than the dispatcher records what it took), with what it was sent as
    (`sent_as`: reference and channel), for a dispatcher taking the message over if its sender died unrecorded.
    """
    with session_factory() as s:
        one_at_a_time(s, provider_id)
        attempt = s.scalars(select(DeliveryAttempt).where(DeliveryAttempt.provider_id == provider_id)
                            .with_for_update()).one_or_none()
        if attempt is None:
            reference, channel = sent_as or (None, None)
            s.execute(insert(EarlyReceipt).values(provider_id=provider_id, status=status, error_code=error_code,
                                                  received_at=now, reference=reference, channel=channel)
                      .on_conflict_do_nothing())
            s.commit()
            return False
        apply_receipt(s, attempt, now, status, error_code)
        s.commit()
        return True


def taken_unrecorded(session_factory: sessionmaker[Session], reference: str, channel: str) -> str | None:
    """The provider's id of a send of this message on this channel that the provider took (its receipt says so) but
    no dispatcher recorded: its sender died in between."""
    with session_factory() as s:
        return s.scalar(select(EarlyReceipt.provider_id).where(
            EarlyReceipt.reference == reference, EarlyReceipt.channel == channel,
            ~select(DeliveryAttempt.id).where(DeliveryAttempt.provider_id == EarlyReceipt.provider_id).exists())
            .order_by(EarlyReceipt.received_at).limit(1))


def one_at_a_time(s: Session, provider_id: str) -> None:
    """Serialise a receipt and the record of its send (until the transaction ends): a receipt that finds no
    attempt is then kept before the record looks for it, or finds the attempt stored."""
    s.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(f"receipt:{provider_id}", 0))))


def apply_early_receipts(s: Session, attempt: DeliveryAttempt, now: datetime) -> None:
    """Apply the receipts kept for this attempt's message before it was stored, in the transaction storing it
    (which holds `one_at_a_time`)."""
    early = s.scalars(delete(EarlyReceipt).where(EarlyReceipt.provider_id == attempt.provider_id)
                      .returning(EarlyReceipt)).all()
    for receipt in sorted(early, key=lambda r: (r.received_at, RANK.get(r.status, 0))):
        apply_receipt(s, attempt, now, receipt.status, receipt.error_code)


def apply_receipt(s: Session, attempt: DeliveryAttempt, now: datetime, status: str, error_code: str | None) -> None:
    if any(h["status"] == status for h in attempt.history):
        return
    attempt.history = [*attempt.history, {"status": status, "at": now.isoformat(), "error_code": error_code}]
    if RANK.get(status, 0) >= RANK.get(attempt.status, 0):
        attempt.status, attempt.updated_at = status, now
        if error_code:
            attempt.error_code = error_code
    n = s.get(Notification, attempt.notification_id, with_for_update=True)
    latest = s.scalar(select(func.max(DeliveryAttempt.id)).where(DeliveryAttempt.notification_id == n.id))
    if status in ("delivered", "read") and n.status in ("sent", "unconfirmed", "pending"):
        n.status, n.last_error = "delivered", None
        emit_notification_outcome(lent(s), n, attempt.channel, now)
    elif status in ("failed", "undelivered") and n.status == "sent" and latest == attempt.id:
        n.gave_up_on = [*n.gave_up_on, attempt.channel]
        n.status, n.due_at, n.last_error = "pending", now, f"{attempt.channel}: {status} {error_code or ''}"
