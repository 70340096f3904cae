"""Sends due notifications from the outbox, channel by channel, and settles them from delivery receipts.

Due rows are claimed in a short transaction with `FOR UPDATE SKIP LOCKED` and a lease, sent with no
transaction open, then recorded in another short transaction fenced by the lease. Several dispatchers
(scheduler processes) can run side by side: a row is only ever claimed by one; if its dispatcher dies
between claim and send, the lease runs out and another takes it over (sent at least once, never lost).
A dropped database connection costs no resend: a claim whose commit went unanswered is handed back, and a
send is recorded on a fresh connection.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from nextslot.core.clock import Clock, utcnow
from nextslot.core.events import emit_notification_outcome
from nextslot.core.lent import lent
from nextslot.core.links import Links
from nextslot.redaction import redact_text
from nextslot.reminders.business_notices import (
    TO_BUSINESS,
    UNREACHABLE,
)
from nextslot.reminders.channels.base import Channel, OutgoingMessage, SendResult
from nextslot.reminders.jobs import Job, JobReader, out_of_date, overtaken
from nextslot.reminders.receipts import apply_early_receipts, one_at_a_time, taken_unrecorded
from nextslot.storage import leases
from nextslot.storage.alone import Failed, alone, in_savepoint
from nextslot.storage.outage import on_fresh_connection
from nextslot.storage.tables import (
    DeliveryAttempt,
    EarlyReceipt,
    Notification,
)
from nextslot.telemetry import metrics
from nextslot.telemetry.context import bound_request_id
from nextslot.telemetry.tracing import span

log = logging.getLogger(__name__)
ACCEPTED = ("queued", "sent", "delivered", "read")
TEXT_CHANNELS = ("sms", "whatsapp")  # Twilio's: a body of at most 1,600 characters (Job.text)
EARLY_RECEIPTS_KEPT = timedelta(days=1)  # a send is recorded within seconds of its receipt, or never


class Dispatcher:
    def __init__(self, session_factory: sessionmaker[Session], channels: dict[str, Channel], clock: Clock = utcnow,
                 lease: timedelta = timedelta(minutes=2), batch: int = 20,
                 receipt_timeout: timedelta = timedelta(minutes=15), max_retries: int = 5,
                 links: Links | None = None, retry_after: timedelta = timedelta(seconds=30)):
        self._session_factory = session_factory
        self._channels = channels
        self._clock = clock
        self._lease = lease
        self._batch = batch
        self._receipt_timeout = receipt_timeout
        self._max_retries = max_retries
        self._retry_after = retry_after  # the first retry on a channel after transient trouble; then doubling
        self._reader = JobReader(channels, clock, links)

    # --- sending -----------------------------------------------------------------------------------

    def dispatch_due(self) -> int:
        """Claim due notifications and send each; return how many were claimed."""
        jobs = self.claim()
        for job in jobs:
            with bound_request_id(job.request_id), span("send notification", notification_id=job.id, kind=job.kind):
                sent = alone(lambda: self.deliver(job), "notification %s: recording it failed", job.id)
                if isinstance(sent, Failed):
                    on_fresh_connection(lambda: self._give_up_once(job.id, job.lease, sent.error))
        return len(jobs)

    def claim(self) -> list[Job]:
        now = self._clock()
        lease = now + self._lease
        return leases.claimed(self._session_factory, leases.NOTIFICATIONS, now, lease, self._batch,
                              lambda s, ids: self._jobs(s, ids, now, lease)) or []

    def _jobs(self, s: Session, ids: list[int], now: datetime, lease: datetime) -> list[Job]:
        rows = self._reader.load(s, ids)
        for n, *_, booking, _business in rows:
            if n.kind == "reminder" and booking.starts_at <= now:  # the scheduler was down too long
                n.status, n.locked_until, n.last_error = "void", None, "too late: the appointment had started"
            elif out_of_date(s, n, booking, now):
                n.status, n.locked_until, n.last_error = "void", None, "out of date: the time moved, ended or lapsed"
            elif overtaken(s, n, now):
                n.status, n.locked_until, n.last_error = "void", None, "overtaken: a later reminder is due too"
        jobs = [job for row in rows if row[0].status == "sending" and (job := self._prepared(s, row, lease))]
        for orphan in set(ids) - {row[0].id for row in rows}:  # no customer or booking: no one to tell
            n = s.get(Notification, orphan)
            n.status, n.locked_until, n.last_error = "failed", None, "no customer or booking to notify"
        return jobs

    def _prepared(self, s: Session, row: Any, lease: datetime) -> Job | None:
        """The row's job; None if its data cannot make a message (that row alone is retried later, then failed)."""
        n = row[0]
        job = in_savepoint(s, lambda: self._reader.job(s, row, lease),
                           "notification %s (business %s, %s): could not be prepared", n.id, n.business_id, n.kind)
        if isinstance(job, Failed):
            self._retry_or_fail(s, n, f"could not prepare the message ({job.error})")
            return None
        return job

    def _retry_or_fail(self, s: Session, n: Notification, reason: str) -> None:
        """Try again later like a transient failure, until the tries run out; then failed."""
        now = self._clock()
        n.locked_until, n.last_error = None, reason
        if n.attempts <= self._max_retries:
            n.status, n.due_at = "pending", now + backoff(n.attempts, self._retry_after)
        else:
            n.status = "failed"  # the same bad data may break the event too
            in_savepoint(s, lambda: emit_notification_outcome(lent(s), n, None, now),
                         "notification %s: no notification.failed event", n.id)

    def _give_up_once(self, notification_id: int, lease: datetime, error: str) -> None:
        with self._session_factory() as s:
            n = s.get(Notification, notification_id, with_for_update=True)
            if n.status == "sending" and n.locked_until == lease:
                self._retry_or_fail(s, n, f"could not record the message ({error})")
            s.commit()

    def deliver(self, job: Job) -> None:
        """Try the customer's channels in order until one takes the message (or a retry is scheduled)."""
        for channel_name, recipient in job.recipients.items():
            channel = self._channels[channel_name]
            reference = f"notification-{job.id}"
            content = job.content if channel_name == "whatsapp" else None
            sender = job.sender[1] if job.sender and job.sender[0] == channel_name else None  # not on a fallback
            body = job.text if job.text is not None and channel_name in TEXT_CHANNELS else job.body
            result = self._taken_before(job, channel_name, reference) or safe_send(channel, OutgoingMessage(
                recipient, body, job.subject, reference, job.calendar, content, sender))
            if self._record(job, channel_name, recipient, result) != "next_channel":
                return
        self._finish_without_channel(job)

    def _taken_before(self, job: Job, channel: str, reference: str) -> SendResult | None:
        """The send of a message taken over (its dispatcher died) that the provider had taken, as its receipt told:
        recorded, not sent a second time. A receipt slower than the lease cannot tell, and the message goes again."""
        if not job.retried or channel not in TEXT_CHANNELS:  # email has no receipts
            return None
        provider_id = on_fresh_connection(lambda: taken_unrecorded(self._session_factory, reference, channel))
        if provider_id is None:
            return None
        log.warning("notification %s: %s had taken it before its sender died; recorded, not sent again", job.id,
                    channel)
        return SendResult(True, provider_id, "queued")

    def _record(self, job: Job, channel: str, recipient: str, result: SendResult) -> str:
        """Store the attempt and move the notification on; the lease fences a dispatcher that was too slow.

        The message has gone out (or been refused): a dropped connection must not lose that, or the lease would
        run out and the message go out twice, so the record is tried again on a fresh connection."""
        outcome = on_fresh_connection(lambda: self._record_once(job, channel, recipient, result))
        log.info("notification %s (%s) on %s: %s", job.id, job.kind, channel, outcome,
                 extra={"notification_id": job.id, "kind": job.kind, "channel": channel, "outcome": outcome,
                        "provider_status": result.status, "error_code": result.error_code})
        metrics.DELIVERIES.labels(channel, "accepted" if result.accepted else outcome).inc()
        if outcome == "next_channel":
            metrics.FALLBACKS.labels(channel).inc()
        return outcome

    def _record_once(self, job: Job, channel: str, recipient: str, result: SendResult) -> str:
        now = self._clock()
        with self._session_factory() as s:
            if result.provider_id:  # its receipts wait for this record, or were kept for it
                one_at_a_time(s, result.provider_id)
            n = s.get(Notification, job.id, with_for_update=True)
            if result.provider_id and s.scalar(select(DeliveryAttempt.id).where(
                    DeliveryAttempt.provider_id == result.provider_id)):
                return "sent"  # an earlier try committed, and only its answer was lost
            attempt = DeliveryAttempt(
                business_id=n.business_id, notification_id=n.id, channel=channel, recipient=recipient,
                provider_id=result.provider_id, status=result.status, error_code=result.error_code,
                error_message=result.error_message, created_at=now, updated_at=now,
                history=[{"status": result.status, "at": now.isoformat(), "error_code": result.error_code}],
            )
            s.add(attempt)
            if n.status != "sending" or n.locked_until != job.lease:  # voided, or taken over after our lease
                s.flush()
                if result.provider_id:
                    apply_early_receipts(s, attempt, now)
                s.commit()
                return "not_ours"
            if result.accepted:
                n.status = "delivered" if result.status in ("delivered", "read") else "sent"
                n.sent_at, n.due_at, n.locked_until, n.last_error = now, now + self._receipt_timeout, None, None
                if n.status == "delivered":
                    emit_notification_outcome(lent(s), n, channel, now)
                outcome = "sent"
            elif result.transient and attempts_on(s, n.id, channel) <= self._max_retries:
                wait = backoff(attempts_on(s, n.id, channel), self._retry_after)
                n.status, n.due_at, n.locked_until = "pending", now + wait, None
                n.last_error = f"{channel}: {result.error_code} {result.error_message or ''}".strip()
                outcome = "retry"
            else:
                n.gave_up_on = [*n.gave_up_on, channel]
                n.last_error = f"{channel}: {result.error_code} {result.error_message or ''}".strip()
                outcome = "next_channel"
            if result.provider_id:  # the provider reported on it before this record: settle it now
                s.flush()
                apply_early_receipts(s, attempt, now)
            s.commit()
            return outcome

    def _finish_without_channel(self, job: Job) -> None:
        """No channel left: 'unconfirmed' if some provider took it but never confirmed delivery, else 'failed'."""
        on_fresh_connection(lambda: self._finish_once(job))

    def _finish_once(self, job: Job) -> None:
        with self._session_factory() as s:
            n = s.get(Notification, job.id, with_for_update=True)
            if n.status == "sending" and n.locked_until == job.lease:
                accepted = s.scalar(select(func.count()).select_from(DeliveryAttempt).where(
                    DeliveryAttempt.notification_id == n.id, DeliveryAttempt.status.in_(ACCEPTED)))
                n.status, n.locked_until = ("unconfirmed" if accepted else "failed"), None
                n.last_error = n.last_error or (UNREACHABLE if n.kind.startswith(TO_BUSINESS)
                                                else "no channel can reach this customer")
                log.warning("notification %s %s: %s", n.id, n.status, redact_text(n.last_error))  # may name a phone
                metrics.MESSAGES_FINISHED.labels(n.status).inc()
                emit_notification_outcome(lent(s), n, n.gave_up_on[-1] if n.gave_up_on else None, self._clock())
            s.commit()

    # --- receipts that never come (those that do: `receipts.record_receipt`) ----------------------

    def give_up_waiting(self) -> int:
        """Messages accepted but with no receipt in time go out again on the next channel; receipts kept for a send
        never recorded (another deployment's message, a send lost with its process) are let go after a day."""
        now = self._clock()
        with self._session_factory() as s:
            s.execute(delete(EarlyReceipt).where(EarlyReceipt.received_at < now - EARLY_RECEIPTS_KEPT))
            moved = s.execute(text("""
                update notifications n
                set status = 'pending', due_at = :now, last_error = 'no delivery receipt in time',
                    gave_up_on = n.gave_up_on || jsonb_build_array(
                        (select a.channel from delivery_attempts a where a.notification_id = n.id
                         order by a.id desc limit 1))
                where n.id in (select id from notifications where status = 'sent' and due_at <= :now
                               for update skip locked)
            """), {"now": now}).rowcount
            s.commit()
            return moved

def attempts_on(s: Session, notification_id: int, channel: str) -> int:
    return s.scalar(select(func.count()).select_from(DeliveryAttempt).where(
        DeliveryAttempt.notification_id == notification_id, DeliveryAttempt.channel == channel)) or 0


def backoff(tries: int, first: timedelta = timedelta(seconds=30)) -> timedelta:
    """30 s, 1 min, 2 min, ... (from `first`) capped at 30 min: transient provider trouble usually clears."""
    return min(first * 2 ** max(tries - 1, 0), timedelta(minutes=30))


def safe_send(channel: Channel, message: OutgoingMessage) -> SendResult:
    """Channels report provider errors as results; anything else is a bug, counted as a transient failure."""
    try:
        return channel.send(message)
    except Exception as exc:  # noqa: BLE001 - a crashing channel must not lose the notification
        log.exception("channel %s crashed on %s", channel.name, message.reference)
        return SendResult(False, None, "failed", "crash", type(exc).__name__, transient=True)
