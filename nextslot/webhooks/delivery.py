"""Sends booking events to business endpoints: signed, retried with backoff for a day, logged per attempt.

Claimed like notifications (SKIP LOCKED and a lease, a claim handed back when the connection drops under
it, the outcome recorded on a fresh connection), so several scheduler processes never send one delivery
twice at once; a receiver should still drop repeats by event id (a crash after the POST and
before the record means one more try). An endpoint still failing after a day is turned off, and the
business told by a notice in the outbox (sent by the dispatcher, email first).

A delivery is bounded: one time limit for all of it (a receiver trickling its answer cannot hold the sender),
its answer's body never read, a redirect not followed (its status is the answer), and what went wrong kept as a
short category ("timeout", "HTTP 500", "refused: internal address"), never an exception's text.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from time import perf_counter

from sqlalchemy.orm import Session, sessionmaker

from nextslot.core.clock import Clock, utcnow
from nextslot.core.lent import lent
from nextslot.core.outbound_http import deadline, failure, http_client
from nextslot.core.outbox import tell_business
from nextslot.storage import leases
from nextslot.storage.outage import on_fresh_connection
from nextslot.storage.tables import WebhookDelivery, WebhookEndpoint
from nextslot.telemetry import metrics
from nextslot.telemetry.context import bound_request_id
from nextslot.telemetry.tracing import span
from nextslot.webhooks.signing import signature

log = logging.getLogger(__name__)
GIVE_UP_AFTER = timedelta(days=1)


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min ... capped at an hour: about 30 tries over the day before giving up."""
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


@dataclass(frozen=True)
class Job:
    id: int
    lease: datetime
    url: str
    secret: str
    event_id: str
    event_type: str
    body: str
    live: bool  # the endpoint is still active
    request_id: str | None = None  # the request that wrote the event: bound while it is sent, and sent along


class WebhookSender:
    def __init__(self, session_factory: sessionmaker[Session], allow_private: bool = False, timeout: float = 10,
                 clock: Clock = utcnow, lease: timedelta = timedelta(minutes=2), batch: int = 20):
        self._session_factory = session_factory
        self._http = http_client(allow_private, timeout)  # public addresses only, checked on every connection
        self._timeout = timeout  # for the whole delivery: connect, send and the answer's status line and headers
        self._clock = clock
        self._lease = lease
        self._batch = batch

    def send_due(self) -> int:
        jobs = self.claim()
        for job in jobs:
            with bound_request_id(job.request_id), span("send webhook", delivery_id=job.id, event=job.event_type):
                self.deliver(job)
        return len(jobs)

    def claim(self) -> list[Job]:
        now = self._clock()
        lease = now + self._lease
        return leases.claimed(self._session_factory, leases.WEBHOOK_DELIVERIES, now, lease, self._batch,
                              lambda s, ids: self._jobs(s, ids, now, lease)) or []

    @staticmethod
    def _jobs(s: Session, ids: list[int], now: datetime, lease: datetime) -> list[Job]:
        jobs = []
        for d in (s.get(WebhookDelivery, i) for i in ids):
            e = s.get(WebhookEndpoint, d.endpoint_id)
            if e is None:  # a row the foreign key did not guard (old or hand-edited): no one to send it to
                log.error("webhook delivery %s (business %s): its endpoint is gone", d.id, d.business_id)
                d.status, d.locked_until = "failed", None
                d.log = [*d.log, {"at": now.isoformat(), "status_code": None, "error": "the endpoint is gone",
                                  "ms": 0}]
                continue
            jobs.append(Job(d.id, lease, e.url, e.secret, d.event_id, d.event_type, d.body, e.active, d.request_id))
        return jobs

    def deliver(self, job: Job) -> None:
        if not job.live:
            self._record(job, None, "the endpoint was disabled", 0)
            return
        timestamp = int(self._clock().timestamp())
        headers = {"Content-Type": "application/json", "Nextslot-Event": job.event_type,
                   "Nextslot-Event-Id": job.event_id, "Nextslot-Signature": signature(job.secret, timestamp, job.body)}
        if job.request_id:
            headers["X-Request-ID"] = job.request_id
        started = perf_counter()
        try:
            with deadline(self._timeout), self._http.stream("POST", job.url, content=job.body.encode(),
                                                            headers=headers) as response:
                code = response.status_code  # the body is never read: the status is the whole answer
            error = None if 200 <= code < 300 else f"HTTP {code}"  # a redirect is an answer too, not followed
        except Exception as exc:  # noqa: BLE001 - whatever the endpoint did, it fails this row alone
            code, error = None, failure(exc)  # a category: exception text would name addresses, inside ones too
        seconds = perf_counter() - started
        metrics.WEBHOOK_LATENCY.observe(seconds)
        self._record(job, code, error, seconds * 1000)

    def _record(self, job: Job, code: int | None, error: str | None, ms: float) -> None:
        """The POST has been made: a dropped connection must not lose its outcome (the lease would run out and
        the event go again), so the record is tried again on a fresh connection; a try whose commit went
        through with its answer lost is recognised by its log line."""
        line = {"at": self._clock().isoformat(), "status_code": code, "error": error, "ms": round(ms, 1)}
        on_fresh_connection(lambda: self._record_once(job, line, code, error))
        outcome = "delivered" if error is None else "endpoint_disabled" if not job.live else "error"
        metrics.WEBHOOKS.labels(outcome).inc()
        log.info("webhook delivery %s (%s): %s", job.id, job.event_type, outcome,
                 extra={"delivery_id": job.id, "event_type": job.event_type, "outcome": outcome, "status_code": code})

    def _record_once(self, job: Job, line: dict, code: int | None, error: str | None) -> None:
        now = datetime.fromisoformat(line["at"])
        with self._session_factory() as s:
            d = s.get(WebhookDelivery, job.id, with_for_update=True)
            if line in d.log:
                return  # an earlier try committed
            d.log = [*d.log, line]
            if d.status != "sending" or d.locked_until != job.lease:
                s.commit()  # a slower twin: keep the log line, leave the state to the new owner
                return
            d.locked_until = None
            if error is None:
                d.status, d.delivered_at = "delivered", now
            elif not job.live or now - d.created_at >= GIVE_UP_AFTER:
                d.status = "failed"
                if job.live:
                    self._disable(s, d.endpoint_id, f"deliveries failed for a day; last: {error}", now)
            else:
                d.status, d.due_at = "pending", now + backoff(d.attempts)
            s.commit()

    @staticmethod
    def _disable(s: Session, endpoint_id: int, reason: str, now: datetime) -> None:
        """An endpoint that keeps failing is switched off, with the reason kept, and the business told in the
        same transaction. Once: its other deliveries failing at the same time (in this batch or another
        process's) find it already off under the row lock, and leave the first reason standing."""
        endpoint = s.get(WebhookEndpoint, endpoint_id, with_for_update=True)
        if not endpoint.active:
            return
        endpoint.active, endpoint.disabled_reason = False, reason
        tell_business(lent(s), endpoint.business_id, "webhook_disabled", now, endpoint_id=endpoint.id, url=endpoint.url,
                      reason=reason, reenable=f'PUT /v1/webhooks/{endpoint.id} with {{"active": true}}')
        log.warning("webhook endpoint %s disabled: %s", endpoint_id, reason)
