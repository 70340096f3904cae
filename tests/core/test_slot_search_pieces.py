"""A long window is searched a piece at a time until enough openings are found (`reads.pieces`): whatever the limit,
the answer is the first openings of the whole window, none lost or repeated at a piece's edge."""
from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from nextslot.core.booking.reads import FIRST_PIECE, pieces
from nextslot.core.results import Booked, Slots
from nextslot.schemas.commands import BookingCreate, CustomerIn, SlotQuery
from tests.core.test_assignment import salon
from tests.core.test_locations import two_branches


def starts(found: Slots) -> list[tuple[datetime, tuple[str, ...], str | None]]:
    return [(s.starts_at.utc, tuple(r.key for r in s.resources), s.location.key if s.location else None)
            for s in found.slots]


def one_day(service, business: int, key: str, start: datetime) -> Slots:
    """Every opening in the day from `start`."""
    found = service.find_slots(business, SlotQuery(service=key, starts_from=start, until=start + timedelta(days=1),
                                                   limit=1000))
    assert isinstance(found, Slots)
    return found


def day_by_day(service, business: int, key: str, start: datetime, days: int) -> list:
    """Every opening of the window, found one day at a time: the reference the pieces must agree with."""
    return [slot for d in range(days) for slot in starts(one_day(service, business, key, start + timedelta(days=d)))]


def book_some(service, business: int, key: str, start: datetime, days: int, rng: random.Random,
              answers: dict[str, str]) -> int:
    """Fill the calendar unevenly: most of the first week, little around the pieces' edges (a week and three
    weeks in), some of the rest."""
    booked = 0
    for d in range(days):
        share = 0.1 if d in (6, 7, 20, 21) else 0.9 if d < 6 else 0.3
        for slot in one_day(service, business, key, start + timedelta(days=d)).slots:
            if rng.random() < share:
                result = service.book(business, BookingCreate(
                    service=key, starts_at=slot.starts_at.utc, intake=answers,
                    customer=CustomerIn(name=f"Piece {booked}", phone=f"+4479118{booked:05d}")))
                booked += isinstance(result, Booked)
    return booked


@pytest.mark.parametrize("business_config, key, answers", [
    ("clinic", "consultation", {"reason": "Check-up", "first-visit": "no"}),  # two pools
    ("clinic", "ultrasound", {}),  # three pools
    (two_branches(), "cut", {}),  # branches in two zones
    (salon("least_booked_week"), "cut", {}),  # fair order: each piece reads the workload around it
    (salon("weighted", {"ana": 2}), "cut", {}),
])
def test_the_first_openings_of_a_month_are_the_same_whatever_the_limit(service, make_business, clock,
                                                                        business_config, key, answers):
    business = make_business(business_config)
    start = clock.now + timedelta(hours=3)  # not on a day's edge
    days = 31
    assert book_some(service, business, key, start, days, random.Random(5), answers) > 0
    reference = day_by_day(service, business, key, start, days)
    assert len({s for s, _, _ in reference}) > 20
    for limit in (1, 3, 7, 20, 60, 200, 1000):
        found = service.find_slots(business, SlotQuery(service=key, starts_from=start,
                                                       until=start + timedelta(days=days), limit=limit))
        assert isinstance(found, Slots)
        assert starts(found) == reference[:limit], limit


def test_pieces_cover_the_window_once_in_order():
    start = datetime(2026, 3, 1, 7, 30).astimezone()
    for days in (0.5, 1, 7, 8, 21, 31):
        end = start + timedelta(days=days)
        parts = list(pieces(start, end))
        assert parts[0][0] == start and parts[-1][1] == end
        assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
        assert parts[0][1] - parts[0][0] <= FIRST_PIECE
