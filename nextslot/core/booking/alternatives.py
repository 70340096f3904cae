"""The answer to a lost race or a taken time: the openings nearest the requested start, as committed now.

A storm of callers for one slot loses together: each loser reads what is committed (one statement), and when that
read equals the one an answer in this process was built from moments ago, the answer is reused instead of built
again (`BURSTS`). The read is always fresh, so an alternative is never one that was taken when the answer was made.
While such a burst is on, a booking for that time checks it with that same read (`check_read`), which then serves
its answer too: one round trip for each loser instead of two.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from threading import Lock
from time import monotonic
from typing import Any

from nextslot.core.booking.availability import bookable_window, find_open_slots, nearest
from nextslot.core.planning import Committed, Plan, build_timelines, read_committed, span_of
from nextslot.core.results import SlotTaken
from nextslot.core.views import slot_view
from nextslot.schemas.views import SlotView
from nextslot.storage import queries
from nextslot.storage.uow import SqlAlchemyUnitOfWork

ALTERNATIVES = 3
BURST_SECONDS = 2.0  # how long an answer may be reused while what it was built from is unchanged


def slot_taken(
    uow: SqlAlchemyUnitOfWork, plan: Plan, start: datetime, now: datetime,
    customer_zone: str | None = None, exclude_booking_id: int | None = None, party: int = 1, wrote: bool = True,
) -> SlotTaken:
    """Roll back what this try wrote, then offer the openings nearest the requested time (for the same party), as
    committed now. A try that wrote nothing (the time was seen taken first) goes on in its transaction: at READ
    COMMITTED every statement reads what is committed when it starts, so two round trips are saved."""
    if wrote:
        uow.rollback()
    return SlotTaken(start, alternatives(uow, plan, start, now, customer_zone, exclude_booking_id, party))


def check_read(uow: SqlAlchemyUnitOfWork, plan: Plan, start: datetime, now: datetime, party: int,
               key: str | None = None) -> Committed:
    """What a booking's check of its start reads: the start alone, or, while losers for it are being answered (one
    was moments ago), the alternatives' first window, which the answer reuses if this booking loses too. Not for
    fair assignment, whose workload read depends on the window. With it, whether the booking's idempotency `key` is
    free and unused."""
    if plan.assignment is None and BURSTS.on(burst_of(uow, plan, start, party)):
        return read_committed(uow, plan, windows(start)[0], now, key=key)
    return read_committed(uow, plan, (start, start), now, key=key)


def burst_of(uow: SqlAlchemyUnitOfWork, plan: Plan, target: datetime, party: int) -> tuple[Any, ...]:
    return queries.database_of(uow.session), plan.business.id, plan.service_id, target, party


def windows(target: datetime) -> tuple[tuple[datetime, datetime], ...]:
    """Where alternatives are looked for: a day either side, then two weeks ahead when that has too few."""
    return ((target - timedelta(days=1), target + timedelta(days=1)),
            (target - timedelta(days=1), target + timedelta(days=14)))


def alternatives(
    uow: SqlAlchemyUnitOfWork, plan: Plan, target: datetime, now: datetime,
    customer_zone: str | None, exclude_booking_id: int | None, party: int = 1,
) -> list[SlotView]:
    key = (*burst_of(uow, plan, target, party), customer_zone, exclude_booking_id)
    found = []
    for window in windows(target):
        committed = fresh_read(uow, plan, target, window, now, exclude_booking_id)
        if (answer := BURSTS.reuse(key, plan, committed, now)) is not None:
            return answer
        groups = build_timelines(uow, plan, committed, party)
        found = [x for x in find_open_slots(plan.rules, groups, window, now) if x.starts_at != target]
        if len(found) >= ALTERNATIVES:
            break
    answer = [slot_view(x, plan, customer_zone) for x in nearest(found, target, ALTERNATIVES)]
    BURSTS.keep(key, plan, committed, answer)
    return answer


def remember_read(uow: SqlAlchemyUnitOfWork, plan: Plan, target: datetime, now: datetime,
                  exclude_booking_id: int | None, committed: Committed) -> None:
    """Keep a read of the first window, made after a lost claim or by a check that found its start taken, for the
    alternatives the loser is about to need: read once the winner had committed, it is as fresh as one made after
    the rollback."""
    uow.session.info["lost_claim_read"] = ((plan, target, now, exclude_booking_id), committed)


def fresh_read(uow: SqlAlchemyUnitOfWork, plan: Plan, target: datetime, window: tuple[datetime, datetime],
               now: datetime, exclude_booking_id: int | None) -> Committed:
    kept = uow.session.info.pop("lost_claim_read", None)
    if kept is not None and kept[0] == (plan, target, now, exclude_booking_id) and kept[1].span == span_of(plan, window):
        committed: Committed = kept[1]
        return committed
    return read_committed(uow, plan, window, now, exclude_booking_id)


@dataclass(frozen=True)
class Answer:
    plan: Plan
    committed: Committed
    made: float  # monotonic seconds
    slots: list[SlotView]


class Bursts:
    """This process's recent answers to lost races, each with the committed read it was built from."""

    def __init__(self, size: int = 256):
        self.size = size
        self._answers: OrderedDict[tuple[Any, ...], Answer] = OrderedDict()
        self._bursts: OrderedDict[tuple[Any, ...], float] = OrderedDict()  # burst_of -> when an answer was made
        self._lock = Lock()

    def on(self, burst: tuple[Any, ...]) -> bool:
        """A loser for this time was answered moments ago: more are likely."""
        made = self._bursts.get(burst)
        return made is not None and monotonic() - made <= BURST_SECONDS

    def reuse(self, key: tuple[Any, ...], plan: Plan, committed: Committed, now: datetime) -> list[SlotView] | None:
        """The answer built from exactly this read, if one was made moments ago and every slot is still bookable."""
        with self._lock:
            answer = self._answers.get(key)
        if answer is None or answer.plan is not plan or monotonic() - answer.made > BURST_SECONDS:
            return None
        earliest, latest = bookable_window(plan.rules, now)
        if answer.committed != committed or any(not earliest <= a.starts_at.utc <= latest for a in answer.slots):
            return None
        return list(answer.slots)

    def keep(self, key: tuple[Any, ...], plan: Plan, committed: Committed, slots: list[SlotView]) -> None:
        with self._lock:
            made = monotonic()
            self._answers[key] = Answer(plan, committed, made, slots)
            self._answers.move_to_end(key)
            self._bursts[key[:5]] = made
            self._bursts.move_to_end(key[:5])
            for kept in (self._answers, self._bursts):
                while len(kept) > self.size:
                    kept.popitem(last=False)


BURSTS = Bursts()
