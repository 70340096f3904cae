"""What each sender of the public ways in made at a business today, one row per (business, budget, sender, UTC day).

Each statement decides alone, run by psycopg (`queries.driver_rows`) in one round trip: a place is taken by one
atomic increment that refuses past the cap (its row's lock, held for that statement only, orders two writes of one
sender; different senders' rows never wait for each other), and given back by one decrement.
"""
from __future__ import annotations

from datetime import date

from sqlalchemy import delete
from sqlalchemy.orm import Session

from nextslot.storage import queries
from nextslot.storage.tables import SenderBudget

TAKE = """
insert into sender_budgets as b (business_id, kind, sender, day, made)
values (%(business)s, %(kind)s, %(sender)s, %(day)s, 1)
on conflict (business_id, kind, sender, day) do update set made = b.made + 1 where b.made < %(cap)s
returning made
"""

GIVE_BACK = """
update sender_budgets set made = made - 1
 where business_id = %(business)s and kind = %(kind)s and sender = %(sender)s and day = %(day)s and made > 0
returning made
"""


class SenderBudgetRepository:
    def __init__(self, session: Session):
        self.session = session

    def take(self, business_id: int, kind: str, sender: str, day: date, cap: int) -> bool:
        """Count one more for the sender on this day, if fewer than `cap` are counted; whether it was (cap >= 1)."""
        return bool(queries.driver_rows(self.session, TAKE, {"business": business_id, "kind": kind,
                                                             "sender": sender, "day": day, "cap": cap}))

    def give_back(self, business_id: int, kind: str, sender: str, day: date) -> None:
        """Count one fewer for the sender on the day it was taken on."""
        queries.driver_rows(self.session, GIVE_BACK, {"business": business_id, "kind": kind, "sender": sender,
                                                      "day": day})

    def sweep_before(self, day: date) -> int:
        """Delete the counts of the days before `day` (no longer counted); how many."""
        swept = self.session.execute(delete(SenderBudget).where(SenderBudget.day < day))
        return int(swept.rowcount)  # type: ignore[attr-defined]  # a DML statement's result has it
