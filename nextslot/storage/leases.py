"""The one lease mechanism of the scheduler's jobs: messages, webhook deliveries, calendar syncs and writes,
conversations.

A job leases due rows in one short statement, `UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)
RETURNING id`: rows due now, or whose lease ran out (their worker died), are leased to the caller, and
SKIP LOCKED lets several workers claim side by side without waiting on or taking each other's. What handling a
row needs is read in the same transaction; the work is done with no transaction open; its outcome is written
in another short transaction fenced by the lease (on a fresh connection when the database may have dropped one:
`outage.on_fresh_connection`). Each job is a `Queue`: which rows are due, in what order, what a lease sets, and
how an unanswered claim is handed back.

Webhook deliveries and calendar writes go to a business's own receivers and CalDAV servers, one at a time, each
allowed its whole time limit: in plain due order, a business whose receivers hang (or that queued thousands of
rows, every event going to each of its endpoints) held up every other business's. Those queues are claimed by
business in turn (`FAIR`): each business's first due row, then each one's second, and so on. The businesses with
rows waiting are found one index probe each, whatever one of them queued.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from nextslot.storage.outage import database_unreachable, on_fresh_connection

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Queue:
    """One job's rows, as SQL spliced into the claim (our own constants only, never input)."""

    table: str
    due: str  # which rows a claim at :now may take (and the job's own :parameters)
    order: str  # which go first
    lease: str  # what a claim sets (:lease is its end)
    hand_back: str | None  # `set ... where ...` undoing a claim of :lease whose commit went unanswered; None: it
    #                        runs out
    waiting: str | None = None  # rows that may fall due, whose business is the party (an index on business_id,
    #                             due_at, id where this holds): claimed each business in turn; None: in `order`


OUTBOX = dict(  # a row is sent once per claim: `attempts` counts the claims
    due="(status = 'pending' and due_at <= :now) or (status = 'sending' and locked_until < :now)",
    order="due_at, id",
    lease="status = 'sending', locked_until = :lease, attempts = attempts + 1",
    hand_back="status = 'pending', locked_until = null, attempts = greatest(attempts - 1, 0) "
              "where status = 'sending' and locked_until = :lease",
)
NOTIFICATIONS = Queue("notifications", **OUTBOX)
WEBHOOK_DELIVERIES = Queue("webhook_deliveries", **OUTBOX, waiting="status in ('pending', 'sending')")
CALENDARS = Queue(  # due: pushed, or not read since :due_before (failing ones wait their turn too); or the one
    "external_calendars",  # asked for; never one whose grant needs reconnecting
    due="""(locked_until is null or locked_until < :now) and status = 'active'
           and (cast(:calendar_id as bigint) is null or id = cast(:calendar_id as bigint))
           and (pushed_at is not null or (not :pushed and (cast(:due_before as timestamptz) is null
                or greatest(last_synced_at, last_error_at) is null
                or greatest(last_synced_at, last_error_at) <= cast(:due_before as timestamptz))))
           and not (id = any(cast(:skip as bigint[])))""",
    order="pushed_at nulls last, greatest(last_synced_at, last_error_at) nulls first, id",
    lease="locked_until = :lease",
    hand_back=None,
)
CALENDAR_WRITES = Queue(  # bookings into staff calendars: not while the calendar needs reconnecting; a failed
    "calendar_writes",     # row is tried again at its locked_until (none once its booking is over)
    due="""((status = 'pending' and due_at <= :now) or (status = 'sending' and locked_until < :now)
            or (status = 'failed' and locked_until <= :now))
           and calendar_id in (select id from external_calendars where status = 'active')""",
    order="due_at, id",
    lease="status = 'sending', locked_until = :lease, attempts = attempts + 1",
    hand_back="status = 'pending', locked_until = null, attempts = greatest(attempts - 1, 0) "
              "where status = 'sending' and locked_until = :lease",
    waiting="(status in ('pending', 'sending') or (status = 'failed' and locked_until is not null))",
)
CONVERSATIONS = Queue(  # due: a message waits
    "conversations",
    due="""(locked_until is null or locked_until < :now)
           and exists (select 1 from conversation_messages m where m.conversation_id = conversations.id
                       and m.direction = 'in' and m.processed_at is null)""",
    order="last_message_at",
    lease="locked_until = :lease",
    hand_back=None,
)


PLAIN = """
update {table} set {lease}
where id in (
    select id from {table}
    where {due}
    order by {order} limit :batch
    for update skip locked)
returning id, 1 as turn
"""

# every due row was due by :now when it was first claimed, so a business's due rows all lie below it in due_at
FAIR = """
with recursive parties(business_id) as (
    select min(business_id) from {table} where {waiting}
  union all
    select (select min(business_id) from {table} where {waiting} and business_id > parties.business_id)
      from parties where parties.business_id is not null
),
chosen as (
    select {table}.id, firsts.turn from {table}
    join (select mine.id, mine.turn from parties cross join lateral (
            select id, row_number() over (order by {order}) as turn from (
                select * from {table}
                 where business_id = parties.business_id and {waiting} and due_at <= :now and ({due})
                 order by {order} limit :batch) queued) mine) firsts on firsts.id = {table}.id
    where {due}
    order by firsts.turn, {order} limit :batch
    for update of {table} skip locked)
update {table} set {lease} from chosen where {table}.id = chosen.id
returning {table}.id, chosen.turn
"""


def claim(session: Session, queue: Queue, now: datetime, lease: datetime, batch: int, **params: Any) -> list[int]:
    """Lease up to `batch` due rows until `lease`; return their ids in creation order (a fair queue's: each
    business's first, then each one's second...)."""
    statement = (PLAIN if queue.waiting is None else FAIR).format(**vars(queue))
    leased = session.execute(text(statement), {"now": now, "lease": lease, "batch": batch, **params})
    return [row.id for row in sorted(leased, key=lambda row: (row.turn, row.id))]  # RETURNING keeps no order


def claimed(session_factory: sessionmaker[Session], queue: Queue, now: datetime, lease: datetime, batch: int,
            load: Callable[[Session, list[int]], T], **params: Any) -> T | None:
    """Lease due rows and `load` what handling them needs, in one transaction; None if the database connection
    dropped under it: its commit may have gone through with the answer lost, so what this lease took is handed
    back (nothing was done yet), or those rows would wait for the lease to run out."""
    try:
        with session_factory() as s:
            jobs = load(s, claim(s, queue, now, lease, batch, **params))
            s.commit()
            return jobs
    except Exception as exc:
        if queue.hand_back is None or not database_unreachable(exc):
            raise
        log.warning("claiming due %s: the database connection dropped; handing the claim back", queue.table)
        on_fresh_connection(lambda: hand_back(session_factory, queue, lease))
        return None


def hand_back(session_factory: sessionmaker[Session], queue: Queue, lease: datetime) -> None:
    with session_factory() as s:
        s.execute(text(f"update {queue.table} set {queue.hand_back}"), {"lease": lease})
        s.commit()
