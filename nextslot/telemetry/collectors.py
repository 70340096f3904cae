"""Gauges read from the database at scrape time: what is waiting in each queue and for how long, receipts
awaited per channel, live holds, how stale the staff calendars are, and the connection pool of this process.

These are facts of the shared database, the same whichever process is asked, so they are not multiprocess
samples. Aggregates over every business only: no label names a business or a customer.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

QUEUES = text("""
    select 'messages' as queue, kind, count(*), extract(epoch from now() - min(due_at))
      from notifications where status = 'pending' and due_at <= now() group by kind
    union all
    select 'webhooks', event_type, count(*), extract(epoch from now() - min(due_at))
      from webhook_deliveries where status = 'pending' and due_at <= now() group by event_type
    union all
    select 'conversations', c.channel, count(*), extract(epoch from now() - min(m.created_at))
      from conversation_messages m join conversations c on c.id = m.conversation_id
     where m.direction = 'in' and m.processed_at is null and c.handoff_at is null group by c.channel
""")
AWAITING_RECEIPT = text("""
    select a.channel, count(*) from notifications n
      join lateral (select channel from delivery_attempts where notification_id = n.id order by id desc limit 1) a
        on true
     where n.status = 'sent' group by a.channel
""")
HOLDS = text("select count(*) from holds where status = 'active' and expires_at > now()")
CALENDARS = text("""
    select provider, count(*), max(extract(epoch from now() - coalesce(last_synced_at, created_at))),
           count(*) filter (where last_error is not null)
      from external_calendars group by provider
""")


class Places(Protocol):
    """A process's places at the database (`storage.gate.DatabaseGate`), as the gauges read them."""

    size: int
    busy: int
    waiting: int


class DatabaseCollector(Collector):
    def __init__(self, session_factory: sessionmaker[Session], engine: Engine | None = None,
                 gate: Places | None = None):
        self.session_factory = session_factory
        self.engine = engine
        self.gate = gate

    def describe(self) -> list:
        return []  # read at scrape time only: nothing is queried when the collector is registered

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("nextslot_database_up", "1 when the scrape could read the database")
        try:
            families = list(self._from_database())
        except Exception as exc:  # noqa: BLE001 - a scrape must answer even with the database down
            log.warning("metrics: the database could not be read (%s)", type(exc).__name__)
            up.add_metric([], 0)
            families = []
        else:
            up.add_metric([], 1)
        yield up
        yield from families
        yield from self._pool()
        yield from self._gate()

    def _from_database(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily("nextslot_outbox_depth", "Rows due and not yet sent, by queue (messages, "
                                  "webhooks, conversations) and kind (message kind, event type or channel)",
                                  labels=["queue", "kind"])
        lag = GaugeMetricFamily("nextslot_outbox_lag_seconds", "How long the oldest due row of a queue has waited",
                                labels=["queue"])
        receipts = GaugeMetricFamily("nextslot_messages_awaiting_receipt", "Messages accepted by a provider, "
                                     "waiting for a delivery receipt, by channel", labels=["channel"])
        holds = GaugeMetricFamily("nextslot_holds_active", "Holds claiming time now")
        age = GaugeMetricFamily("nextslot_calendar_sync_age_seconds", "Time since the stalest calendar of a "
                                "provider was last read successfully", labels=["provider"])
        failing = GaugeMetricFamily("nextslot_calendar_sync_failing", "Calendars whose last sync failed",
                                    labels=["provider"])
        calendars = GaugeMetricFamily("nextslot_calendars", "Connected staff calendars", labels=["provider"])
        with self.session_factory() as s:
            s.execute(text("set local statement_timeout = 5000"))
            oldest: dict[str, float] = {"messages": 0.0, "webhooks": 0.0, "conversations": 0.0}
            for queue, kind, count, waited in s.execute(QUEUES):
                depth.add_metric([queue, kind], count)
                oldest[queue] = max(oldest[queue], float(waited or 0))
            for queue, waited in oldest.items():
                lag.add_metric([queue], waited)
            for channel, count in s.execute(AWAITING_RECEIPT):
                receipts.add_metric([channel], count)
            holds.add_metric([], s.scalar(HOLDS) or 0)
            for provider, count, stalest, errors in s.execute(CALENDARS):
                calendars.add_metric([provider], count)
                age.add_metric([provider], float(stalest or 0))
                failing.add_metric([provider], errors)
        yield from (depth, lag, receipts, holds, age, failing, calendars)

    def _pool(self) -> Iterator[GaugeMetricFamily]:
        pool = getattr(self.engine, "pool", None) if self.engine is not None else None
        if pool is None or not hasattr(pool, "checkedout"):
            return
        used = GaugeMetricFamily("nextslot_db_pool_connections", "This process's database connections by state",
                                 labels=["state"])
        used.add_metric(["checked_out"], pool.checkedout())
        used.add_metric(["idle"], pool.checkedin())
        used.add_metric(["overflow"], max(pool.overflow(), 0))
        size = GaugeMetricFamily("nextslot_db_pool_size", "This process's pool size (max_overflow comes on top)")
        size.add_metric([], pool.size())
        yield used
        yield size


    def _gate(self) -> Iterator[GaugeMetricFamily]:
        if self.gate is None:
            return
        places = GaugeMetricFamily("nextslot_db_gate_places", "This process's places at the database (units of "
                                   "work at it at once), by state", labels=["state"])
        busy = self.gate.busy
        places.add_metric(["busy"], busy)
        places.add_metric(["free"], max(self.gate.size - busy, 0))
        waiting = GaugeMetricFamily("nextslot_db_gate_waiting", "This process's units of work waiting for a place")
        waiting.add_metric([], self.gate.waiting)
        yield places
        yield waiting


def database_registry(session_factory: sessionmaker[Session], gate: Places | None = None) -> CollectorRegistry:
    """A registry of its own for one process's database gauges (tests build many apps: no global state)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(session_factory, session_factory.kw.get("bind"), gate))
    return registry
