"""`nextslot scheduler`: the process that sends what the outbox says is due.

APScheduler 3 runs interval jobs with its in-memory job store; all state lives in our tables, so any
number of scheduler processes can run side by side on one PostgreSQL (rows are claimed with SKIP LOCKED).
"""
from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from apscheduler.schedulers.blocking import BlockingScheduler

from nextslot.calendars.providers import Registry, build_registry
from nextslot.calendars.sync import SyncFailed, sync_all
from nextslot.calendars.writes import CalendarWriter
from nextslot.conversations.engine import ConversationEngine
from nextslot.core.links import load_secret
from nextslot.core.service import BookingService
from nextslot.payments.fees import charge_due_fees
from nextslot.reminders.dispatcher import Dispatcher
from nextslot.runtime import build_dispatcher, build_payment_provider, build_service, settle_after_start_up
from nextslot.settings import Settings
from nextslot.storage import wakeups
from nextslot.storage.engine import libpq_dsn
from nextslot.storage.outage import database_unreachable
from nextslot.storage.wakeups import Coalesced, start_listening
from nextslot.telemetry import metrics
from nextslot.webhooks.delivery import WebhookSender

log = logging.getLogger(__name__)


def drain(send_due: Callable[[], int]) -> int:
    """Send everything due now, batch after batch, so a burst does not wait for the next tick."""
    total = 0
    while (claimed := send_due()) > 0:
        total += claimed
    return total


def converse(engine: ConversationEngine, dispatcher: Dispatcher) -> int:
    """Answer the waiting messages, then send the answers at once rather than at the next dispatch tick."""
    answered = drain(engine.process_due)
    if answered:
        drain(dispatcher.dispatch_due)
    return answered


def sync_calendars(service: BookingService, every: timedelta, registry: Registry, pushed_only: bool = False) -> int:
    """Sync the staff calendars not read for `every` (or only those a provider pushed a change for); return how
    many failed (each failure is on its row)."""
    results = sync_all(service.session_factory, service.now(), every, registry=registry, pushed_only=pushed_only)
    for result in results:
        metrics.CALENDAR_SYNCS.labels("failed" if isinstance(result, SyncFailed) else "synced").inc()
    return sum(isinstance(r, SyncFailed) for r in results)


def session_dsn(service: BookingService) -> str:
    """The libpq connection string of the service's database (for LISTEN, which needs its own connection)."""
    url = service.session_factory.kw["bind"].url
    return libpq_dsn(url.render_as_string(hide_password=False))


def build_scheduler(settings: Settings, service: BookingService, dispatcher: Dispatcher) -> BlockingScheduler:
    scheduler = BlockingScheduler(timezone=UTC)
    every = dict(trigger="interval", max_instances=1, coalesce=True)
    scheduler.add_job(drain, args=[dispatcher.dispatch_due], seconds=settings.dispatch_interval_seconds,
                      id="dispatch", **every)
    scheduler.add_job(drain, args=[WebhookSender(service.session_factory, settings.allow_private_targets).send_due],
                      seconds=settings.dispatch_interval_seconds, id="webhooks", **every)
    engine = ConversationEngine(service, settings)
    # polled, and woken at once by a message posted to any server (see run_scheduler); never two runs at once
    answer = Coalesced(partial(converse, engine, dispatcher))
    scheduler.add_job(answer, seconds=min(settings.dispatch_interval_seconds, 1.0), id="conversations", **every)
    scheduler.add_job(engine.close_idle, seconds=60, id="idle_conversations", **every)
    scheduler.add_job(dispatcher.give_up_waiting, seconds=30, id="receipts", **every)
    scheduler.add_job(service.expire_holds, seconds=60, id="holds", **every)
    # the public senders' counts of the days before today (counting reads today's alone)
    scheduler.add_job(service.sweep_sender_budgets, hours=1, id="sender_budgets", **every)
    scheduler.add_job(service.expire_unpaid, seconds=60, id="deposits", **every)
    scheduler.add_job(charge_due_fees, args=[service, build_payment_provider(settings)], seconds=60, id="fees",
                      **every)
    scheduler.add_job(service.offer_freed_capacity, seconds=max(settings.dispatch_interval_seconds, 5),
                      id="waitlist", **every)
    # each minute, but a calendar is due only `calendar_sync_minutes` after its last sync by any process
    registry = build_registry(settings, load_secret(settings.secret_key, settings.data_dir))
    sync_every = timedelta(minutes=settings.calendar_sync_minutes)
    scheduler.add_job(sync_calendars, args=[service, sync_every, registry], minutes=1,
                      id="calendars", next_run_time=datetime.now(UTC), **every)  # at start too: after an outage
    # bookings into the staff calendars connected for writing
    scheduler.add_job(drain, args=[CalendarWriter(service.session_factory, registry).write_due],
                      seconds=settings.dispatch_interval_seconds, id="calendar_writes", **every)
    # a calendar its provider said changed is read within seconds
    scheduler.add_job(sync_calendars, args=[service, sync_every, registry, True],
                      seconds=settings.dispatch_interval_seconds, id="pushed_calendars", **every)
    if settings.retention_message_days is not None or settings.retention_conversation_days is not None:
        scheduler.add_job(purge, args=[service, settings], hours=24, id="retention", next_run_time=datetime.now(UTC),
                          **every)
    for job in scheduler.get_jobs():
        job.modify(func=partial(through_outages, job.id, job.func))
    return scheduler


def through_outages(name: str, run: Callable[..., Any], *args: Any) -> Any:
    """Run a job; a database out of reach (a dropped connection, a failover) ends this run with a warning, since
    the next run a moment later tries again and every job leaves its rows safe for it. Anything else is a bug and
    goes on to the scheduler's error log."""
    try:
        return run(*args)
    except Exception as exc:
        if not database_unreachable(exc):
            raise
        log.warning("%s: the database is out of reach (%s); the next run tries again", name, type(exc).__name__)
        return None


def purge(service: BookingService, settings: Settings) -> dict[str, int]:
    """The retention purge (see `core.customers.data_rights.purge_expired`)."""
    from nextslot.core.customers.data_rights import purge_expired

    purged = purge_expired(service.uow(), service.now(), settings.retention_message_days,
                           settings.retention_conversation_days)
    log.info("retention: purged %s", purged, extra={f"purged_{k}": v for k, v in purged.items()})
    return purged


def run_scheduler(settings: Settings) -> int:
    from nextslot.telemetry.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format)  # quiets twilio's per-request lines (customer data)
    from nextslot.telemetry.tracing import start_tracing, trace_engine

    service = build_service(settings)
    dispatcher = build_dispatcher(settings, service)
    scheduler = build_scheduler(settings, service, dispatcher)
    provider = start_tracing(settings.otel_endpoint, settings.otel_service_name, "scheduler")
    if provider is not None:
        trace_engine(service.session_factory.kw["bind"], provider)
        for job in scheduler.get_jobs():  # one trace per run of a job, its SQL and sends inside
            job.modify(func=partial(in_span, job.id, job.func))
    if settings.metrics_port:  # no HTTP server here: the scheduler's metrics have a port of their own
        from nextslot.telemetry.collectors import database_registry

        metrics.serve_metrics(settings.metrics_port, settings.metrics_host,
                              (database_registry(service.session_factory, service.gate),), settings.metrics_token)
    # a customer's message wakes the conversations job at once (LISTEN/NOTIFY); its poll is the fallback
    listening = start_listening(session_dsn(service), wakeups.CONVERSATIONS, scheduler.get_job("conversations").func)
    signal.signal(signal.SIGTERM, lambda *_: (listening.set(), scheduler.shutdown(wait=False)))
    log.info("scheduler started: dispatch every %ss", settings.dispatch_interval_seconds)
    settle_after_start_up(settings.thread_switch_ms)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        if provider is not None:
            provider.shutdown()  # the last spans go out
    return 0


def in_span(name: str, run: Callable[..., Any], *args: Any) -> Any:
    from nextslot.telemetry.tracing import span

    with span(f"scheduler {name}"):
        return run(*args)
