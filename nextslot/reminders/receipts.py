"""Delivery receipts (Twilio's status callback): a provider's report on a message it took settles it or moves on."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from nextslot.core.events import emit_notification_outcome
from nextslot.core.lent import lent
from nextslot.storage.tables import DeliveryAttempt, Notification

RANK = {"queued": 0, "accepted": 0, "sending": 0, "sent": 1, "delivered": 2, "read": 3, "undelivered": 2, "failed": 2}


def record_receipt(session_factory: sessionmaker[Session], now: datetime, provider_id: str, status: str,
                   error_code: str | None = None) -> bool:
    """Apply a provider's status report (idempotent: a repeated report changes nothing).

    delivered/read settles the notification; failed/undelivered sends it on to the next channel.
    Returns False for a message id we never sent.
    """
    with session_factory() as s:
        attempt = s.scalars(select(DeliveryAttempt).where(DeliveryAttempt.provider_id == provider_id)
                            .with_for_update()).one_or_none()
        if attempt is None:
            return False
        if any(h["status"] == status for h in attempt.history):
            return True
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
        s.commit()
        return True
