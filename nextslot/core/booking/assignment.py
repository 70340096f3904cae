"""Fair assignment for pooled staff: which free member of a pool a booking takes.

`first_free` (the default) takes the first free member in listed order. The others rank the free members by
what is committed when the booking looks (never by what a racer is about to do): `least_booked_day` and
`least_booked_week` by their active bookings that local day or week, `round_robin` by who was given this
service longest ago, `weighted` by bookings that week divided by their weight. Ties keep listed order, so the
same committed state always gives the same pick. Races stay safe: the claim decides, and a racer that loses a
member looks again at what is committed and takes the next one in fair order.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

STRATEGIES = ("first_free", "least_booked_day", "least_booked_week", "round_robin", "weighted")
NEVER = datetime.min  # a member never given the service comes first in a round robin


@dataclass(frozen=True)
class Assignment:
    strategy: str
    weights: dict[int, int] = field(default_factory=dict)  # resource id -> weight (weighted); default 1


@dataclass(frozen=True)
class Workload:
    """Committed state the ranking reads: members' booking starts, and when each last got this service."""

    starts: dict[int, list[datetime]]
    last_given: dict[int, datetime]


def week_of(day: date) -> tuple[int, int]:
    iso = day.isocalendar()
    return iso.year, iso.week


def fair_order(assignment: Assignment, work: Workload, zone: ZoneInfo) -> Callable[[datetime, int], tuple[Any, ...]]:
    """A sort key for a member (resource id) at a start: lower goes first."""
    days = {rid: Counter(s.astimezone(zone).date() for s in starts) for rid, starts in work.starts.items()}
    weeks = {rid: Counter(week_of(d) for d in c.elements()) for rid, c in days.items()}

    def key(start: datetime, rid: int) -> tuple[Any, ...]:
        local = start.astimezone(zone).date()
        match assignment.strategy:
            case "least_booked_day":
                return (days.get(rid, Counter())[local],)
            case "least_booked_week":
                return (weeks.get(rid, Counter())[week_of(local)],)
            case "round_robin":
                given = work.last_given.get(rid)
                return (given.astimezone(UTC).replace(tzinfo=None) if given else NEVER,)
            case "weighted":
                weight = assignment.weights.get(rid, 1)
                return (weeks.get(rid, Counter())[week_of(local)] / weight, -weight)
        return ()

    return key
