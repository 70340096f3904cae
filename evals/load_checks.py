"""What must hold after the load test, read from the database (and the fakes' own records), not from what the
clients were told: no resource over capacity, no request booked twice, every confirmation sent exactly once,
no message lost, and every client answered with a result or a clear retryable error."""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

import psycopg

from evals.fakes import FakeSmtpServer, FakeTwilio
from evals.load_channels import Outcome

ACCEPTED = ("queued", "sent", "delivered", "read")
# still to do: due (or due again after a retry's backoff) within the hour, or leased by a sender right now
UNSETTLED = ("(status = 'pending' and due_at < now() + interval '1 hour') or status = 'sending'")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def wait_for_drain(dsn: str, timeout: float) -> tuple[bool, float]:
    """Wait until the schedulers have nothing left to send soon; (drained, seconds waited)."""
    began = time.monotonic()
    with psycopg.connect(dsn, autocommit=True) as conn:
        while True:
            left = conn.execute(f"select count(*) from notifications where {UNSETTLED}").fetchone()[0]
            waited = time.monotonic() - began
            if left == 0 or waited > timeout:
                return left == 0, waited
            time.sleep(0.5)


def capacity_check(conn: psycopg.Connection) -> Check:
    """At each live claim's start (where any peak begins), count the live claims covering it, per resource."""
    over = conn.execute("""
        select r.key, r.capacity, max(p.n)
        from (select c.id, c.resource_id, count(*) as n
              from claims c join claims o on o.resource_id = c.resource_id and o.active
                   and (o.expires_at is null or o.expires_at > now()) and o.during @> lower(c.during)
              where c.active and (c.expires_at is null or c.expires_at > now())
              group by c.id, c.resource_id) p
        join resources r on r.id = p.resource_id
        group by r.id, r.key, r.capacity having max(p.n) > r.capacity
    """).fetchall()
    claims = conn.execute("select count(*) from claims where active").fetchone()[0]
    return Check("no resource over capacity at any instant", not over,
                 f"{claims:,} live claims, peak overlap within capacity on every resource" if not over
                 else "over capacity: " + ", ".join(f"{key} peak {peak} > {cap}" for key, cap, peak in over))


def one_booking_per_request(conn: psycopg.Connection, outcomes: list[Outcome]) -> list[Check]:
    """Every request is a new customer, so two bookings for one customer would be a retry that booked twice;
    and what the clients were told must match the idempotency keys' bookings."""
    doubled = conn.execute("select count(*) from (select customer_id from bookings group by customer_id"
                           " having count(*) > 1) d").fetchone()[0]
    bookings = conn.execute("select count(*) from bookings").fetchone()[0]
    keyed = {key.removeprefix("page:"): booking for key, booking in conn.execute(
        "select key, booking_id from idempotency_keys where operation = 'book'").fetchall()}
    told_booked = {o.key for o in outcomes if o.kind == "booked"}
    missing = [k for k in told_booked if keyed.get(k) is None]
    gave_up = {o.key for o in outcomes if o.kind == "gave_up"}
    unacknowledged = sum(1 for k in gave_up if keyed.get(k) is not None)
    retried = sum(1 for o in outcomes if o.retries)
    return [
        Check("retries with idempotency keys never double-book", doubled == 0,
              f"{bookings:,} bookings, {retried} requests retried, no customer booked twice" if doubled == 0
              else f"{doubled} customers (one request each) have two or more bookings"),
        Check("every booking a client was told of exists", not missing,
              f"{len(told_booked):,} 'booked' answers, each with its booking; {unacknowledged} booking(s) committed "
              "for requests whose client gave up on retryable errors" if not missing
              else f"{len(missing)} 'booked' answers with no booking behind their key"),
    ]


def confirmations_check(conn: psycopg.Connection, twilio: FakeTwilio, smtp: FakeSmtpServer) -> list[Check]:
    """Each live booking: one confirmation, settled, with exactly one attempt a provider accepted; and the
    providers took nothing the database does not know of (a message sent but not recorded is sent again)."""
    rows = conn.execute(f"""
        select b.id,
               count(distinct n.id),
               count(distinct n.id) filter (where n.status in ('sent', 'delivered')),
               count(a.id) filter (where a.status in {ACCEPTED})
        from bookings b
        left join notifications n on n.booking_id = b.id and n.kind = 'confirmation'
        left join delivery_attempts a on a.notification_id = n.id
        where b.status in ('booked', 'confirmed')
        group by b.id
    """).fetchall()
    wrong = [r for r in rows if r[1:] != (1, 1, 1)]
    recorded = {p for (p,) in conn.execute(
        f"select provider_id from delivery_attempts where status in {ACCEPTED}").fetchall()}
    sent = set(twilio.accepted) | {str(m["Message-ID"]).strip() for m in smtp.messages}  # unfolded
    unrecorded, unsent = sent - recorded, recorded - sent
    by_channel = Counter(channel for (channel,) in conn.execute(
        f"select a.channel from delivery_attempts a join notifications n on n.id = a.notification_id"
        f" where n.kind = 'confirmation' and a.status in {ACCEPTED}").fetchall())
    channels = ", ".join(f"{n:,} by {c}" for c, n in sorted(by_channel.items()))
    return [
        Check("every booking's confirmation sent exactly once", not wrong,
              f"{len(rows):,} bookings, each with one confirmation accepted once ({channels})" if not wrong
              else f"{len(wrong)} bookings without exactly one sent confirmation, e.g. booking {wrong[0][0]}: "
                   f"{wrong[0][1]} confirmation(s), {wrong[0][2]} settled, {wrong[0][3]} accepted attempt(s)"),
        Check("the providers sent nothing the database did not record", not unrecorded and not unsent,
              f"{len(sent):,} messages taken by fake Twilio and SMTP, each recorded once" if not unrecorded
              and not unsent else f"{len(unrecorded)} sent but unrecorded (a resend), {len(unsent)} recorded "
                                  "but never received"),
    ]


def lost_check(conn: psycopg.Connection, drained: bool, waited: float) -> Check:
    """After the drain nothing may be stuck, failed or given up on; fallbacks and retries are how it got there."""
    stuck = dict(conn.execute(f"select status, count(*) from notifications where {UNSETTLED}"
                              " or status in ('failed', 'unconfirmed') group by status").fetchall())
    fallbacks = conn.execute("select count(*) from notifications where jsonb_array_length(gave_up_on) > 0"
                             ).fetchone()[0]
    transient = conn.execute("select count(*) from delivery_attempts where status = 'failed' and error_code in"
                             " ('network', '500', '503', '20500', '20503')").fetchone()[0]
    later = conn.execute("select count(*) from notifications where status = 'pending'").fetchone()[0]
    ok = drained and not stuck
    detail = (f"schedulers drained in {waited:.1f} s; {fallbacks} fell back to the next channel (WhatsApp refused), "
              f"{transient} attempt(s) failed on Twilio trouble and were retried; {later:,} reminders wait for "
              "their time")
    return Check("no notification lost", ok, detail if ok else f"not drained after {waited:.0f} s: {stuck}")


def clients_check(outcomes: list[Outcome], unclear_reads: list[str]) -> Check:
    """Bookings and reads alike: each answer a result or a clear retryable error, never a bare 500."""
    unclear = [o for o in outcomes if o.unclear]
    kinds = Counter(o.kind for o in outcomes)
    if not unclear and not unclear_reads:
        return Check("every client saw a result or a clear retryable error", True,
                     f"{len(outcomes):,} booking requests: " + ", ".join(f"{n:,} {k}" for k, n in sorted(kinds.items()))
                     + "; and every availability read")
    seen = sorted({r for o in unclear for r in o.retries} | set(unclear_reads))
    return Check("every client saw a result or a clear retryable error", False,
                 f"{sum(o.unclear for o in unclear)} unclear answer(s) to {len(unclear)} booking requests and "
                 f"{len(unclear_reads)} to reads, e.g. " + "; ".join(seen[:4]))


def check_invariants(dsn: str, outcomes: list[Outcome], unclear_reads: list[str], twilio: FakeTwilio,
                     smtp: FakeSmtpServer, drained: bool, waited: float) -> list[Check]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return [capacity_check(conn), *one_booking_per_request(conn, outcomes),
                *confirmations_check(conn, twilio, smtp), lost_check(conn, drained, waited),
                clients_check(outcomes, unclear_reads)]
