"""Pure time logic: rules + working hours + claims -> free slots. No I/O.

Conventions (documented in the README):
- Instants are aware UTC datetimes; hours and exceptions are in the resource's own zone.
- A service occupies [start - buffer_before, start + duration + buffer_after). Buffers are work
  time: the whole occupied interval must fall inside the resource's opening hours.
- Start times lie on a grid of `slot_step` minutes counted from local midnight in the business's
  zone. Wall times skipped by a spring-forward change do not exist; wall times repeated by a
  fall-back change exist twice (both instants are offered).
- Pooled requirements ("Dr A or Dr B") take the first free member in the order the service lists
  them, or in the service's fair order (`Pools.rank`, see assignment.py); one resource never fills
  two requirements of the same booking.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from itertools import accumulate, islice
from typing import Any
from zoneinfo import ZoneInfo

from nextslot.core.booking.grid import grid_starts, local_days, on_grid
from nextslot.core.booking.intervals import Interval, crowded, merge, subtract, subtract_sorted
from nextslot.core.instants import wall_to_utc


@dataclass(frozen=True)
class WeeklyHours:
    weekday: int  # 0 = Monday
    start_minute: int
    end_minute: int  # up to 1440 (midnight at the end of the day)


@dataclass(frozen=True)
class ServiceRules:
    duration: timedelta
    buffer_before: timedelta
    buffer_after: timedelta
    step_minutes: int
    min_notice: timedelta
    horizon: timedelta
    zone: ZoneInfo  # where the plan books: its branch's zone when its resources keep one, else the business's
    # the other branches' zones of a plan over several: a start on one of their grids is on this plan's too
    also_on_grid: tuple[ZoneInfo, ...] = ()

    def occupied(self, start: datetime) -> Interval:
        return start - self.buffer_before, start + self.duration + self.buffer_after


@dataclass
class ResourceTimeline:
    """One resource's opening intervals and active claims over a window, ready for fast checks."""

    id: int
    capacity: int
    open: list[Interval]  # merged, sorted
    busy: list[Interval] = field(default_factory=list)  # active claims, any order
    location: int | None = None  # its branch: one booking's members are all at one (or shared, None)
    grid: ZoneInfo | None = None  # the zone of its branch's grid in a plan over several; None: any (shared)

    def __post_init__(self) -> None:
        self.busy.sort()
        self._open_starts = [s for s, _ in self.open]
        self._busy_starts = [s for s, _ in self.busy]
        self._latest_ends = list(accumulate((e for _, e in self.busy), max))  # of the first i claims
        self._longest = max((e - s for s, e in self.busy), default=timedelta(0))

    def is_open(self, start: datetime, end: datetime) -> bool:
        i = bisect_right(self._open_starts, start) - 1
        return i >= 0 and self.open[i][1] >= end

    def load(self, start: datetime, end: datetime) -> int:
        """Peak number of places taken over [start, end) (a claim of k seats is in `busy` k times)."""
        lo = bisect_left(self._busy_starts, start - self._longest)
        hi = bisect_left(self._busy_starts, end)
        overlapping = [(s, e) for s, e in self.busy[lo:hi] if e > start]
        if len(overlapping) <= 1:
            return len(overlapping)
        points = [max(s, start) for s, _ in overlapping]
        return max(sum(1 for s, e in overlapping if s <= p < e) for p in points)

    def overlaps(self, start: datetime, end: datetime) -> bool:
        """Whether any claim overlaps [start, end): one of those starting before `end` ends after `start`."""
        i = bisect_left(self._busy_starts, end)
        return i > 0 and self._latest_ends[i - 1] > start

    def fits(self, start: datetime, end: datetime, seats: int = 1) -> bool:
        if not self.is_open(start, end) or seats > self.capacity:
            return False
        if self.capacity == 1:  # the common case, and the hot path of find_slots
            return not self.overlaps(start, end)
        return self.load(start, end) + seats <= self.capacity


class Pools(list[Sequence[ResourceTimeline]]):
    """Each requirement's pool of timelines. With a `rank` (fair assignment), the pools are ordered afresh for
    each start, fairest member first; without one, listed order holds. A `party` of several people takes, for
    each requirement marked `per_person`, that many places of one member with room for them (a class), or
    that many different members when every member takes one person at a time (two stylists)."""

    def __init__(self, groups: Iterable[Sequence[ResourceTimeline]],
                 rank: Callable[[datetime, int], tuple[Any, ...]] | None = None, party: int = 1,
                 per_person: Sequence[bool] = ()):
        super().__init__(groups)
        self.rank, self.party, self.per_person = rank, party, tuple(per_person)

    def at(self, start: datetime) -> Pools:
        if self.rank is None:
            return self
        rank = self.rank
        return Pools([sorted(group, key=lambda r: rank(start, r.id)) for group in self],  # stable: ties in order
                     None, self.party, self.per_person)

    def needs(self) -> list[tuple[Sequence[ResourceTimeline], int]]:
        """(pool, places) per member to pick: a party repeats a pool of one-person members, or asks a roomy
        member for several places."""
        out: list[tuple[Sequence[ResourceTimeline], int]] = []
        for i, group in enumerate(self):
            if self.party > 1 and i < len(self.per_person) and self.per_person[i]:
                if any(r.capacity > 1 for r in group):
                    out.append((group, self.party))
                else:
                    out.extend([(group, 1)] * self.party)
            else:
                out.append((group, 1))
        return out


def ordered(groups: Sequence[Sequence[ResourceTimeline]], start: datetime) -> Sequence[Sequence[ResourceTimeline]]:
    return groups.at(start) if isinstance(groups, Pools) else groups


@dataclass(frozen=True)
class Slot:
    starts_at: datetime
    ends_at: datetime
    resource_ids: tuple[int, ...]  # one per requirement (a party: one per person of a per-person one), in order
    seats_left: int | None = None  # places still free at the roomiest-constrained member (a class), else None


class SlotProblem(StrEnum):
    """Why a requested start cannot be booked; `TAKEN` is a lost race, the rest are bad input."""

    OFF_GRID = "off_slot_step"
    IN_PAST = "in_past"
    TOO_SOON = "too_soon"
    BEYOND_HORIZON = "beyond_horizon"
    OUTSIDE_HOURS = "outside_hours"
    TAKEN = "taken"


def open_intervals(
    hours: Sequence[WeeklyHours],
    zone: ZoneInfo,
    window: Interval,
    extra_open: Iterable[Interval] = (),
    closed: Iterable[Interval] = (),
) -> list[Interval]:
    """Opening time in UTC over a window: weekly hours, plus extra hours, minus time off."""
    by_weekday: dict[int, list[WeeklyHours]] = {}
    for h in hours:
        by_weekday.setdefault(h.weekday, []).append(h)
    intervals = []
    for day in local_days(*window, zone):
        for h in by_weekday.get(day.weekday(), ()):
            intervals.append((wall_to_utc(day, h.start_minute, zone), wall_to_utc(day, h.end_minute, zone)))
    intervals.extend(extra_open)
    merged = merge(i for i in intervals if i[0] < i[1])
    return subtract(merged, merge(closed))


# --- assignment ------------------------------------------------------------------------------


def assign(groups: Sequence[Sequence[ResourceTimeline]], occupied: Interval) -> tuple[int, ...] | None:
    """Pick one free member per requirement (first free in listed order), or None.

    Listed order decides only among complete assignments: with pools [A or B] and [A], the first
    pool takes B so the second can have A, rather than taking A and leaving the second empty.
    A party (see `Pools`) needs a member per person, or several places of one member.
    """
    needs = groups.needs() if isinstance(groups, Pools) else [(group, 1) for group in groups]
    free: dict[tuple[int, int], bool] = {}

    def is_free(r: ResourceTimeline, seats: int) -> bool:
        if (r.id, seats) not in free:
            free[r.id, seats] = r.fits(*occupied, seats)
        return free[r.id, seats]

    if not all(any(is_free(r, seats) for r in group) for group, seats in needs):  # the common "no", no search
        return None

    def pick(i: int, chosen: tuple[int, ...], place: int | None) -> tuple[int, ...] | None:
        if i == len(needs):
            return chosen
        group, seats = needs[i]
        for r in group:
            if r.location is not None and place is not None and r.location != place:
                continue  # one booking never spans two branches
            if r.id not in chosen and is_free(r, seats) and (
                    found := pick(i + 1, (*chosen, r.id), place if place is not None else r.location)) is not None:
                return found
        return None

    return pick(0, (), None)


def seats_left(groups: Sequence[Sequence[ResourceTimeline]], picked: tuple[int, ...],
               occupied: Interval) -> int | None:
    """Places still free (before this booking) at the picked members of per-person pools with room for several
    (a class), the fewest; None for other services (a three-lift bay has room for three, but sells no seats)."""
    if not isinstance(groups, Pools):
        return None
    flags = groups.per_person
    roomy = {r.id: r for i, group in enumerate(groups) if i < len(flags) and flags[i] for r in group
             if r.capacity > 1}
    left = [roomy[rid].capacity - roomy[rid].load(*occupied) for rid in picked if rid in roomy]
    return min(left) if left else None


def bookable_window(rules: ServiceRules, now: datetime) -> Interval:
    """Earliest and latest start allowed by minimum notice and the booking horizon."""
    return now + rules.min_notice, now + rules.horizon


def find_open_slots(
    rules: ServiceRules,
    groups: Sequence[Sequence[ResourceTimeline]],
    window: Interval,
    now: datetime,
    limit: int | None = None,
) -> list[Slot]:
    """Open start times in the window, each with the resources it would take."""
    earliest, latest = bookable_window(rules, now)
    start, end = max(window[0], earliest), min(window[1], latest + timedelta(microseconds=1))
    slots: list[Slot] = []
    if start >= end:
        return slots
    starts = plan_starts(rules, start, end)
    if not rules.also_on_grid and (picks := first_free_by_start(rules, groups, starts)) is not None:
        free = ((s, picked) for s, picked in zip(starts, picks) if picked is not None)
        return [Slot(s, s + rules.duration, picked) for s, picked in islice(free, limit)]
    for s in starts:
        here = on_their_grids(groups, s, rules.step_minutes) if rules.also_on_grid else groups
        picked = assign(ordered(here, s), rules.occupied(s))
        if picked is not None:
            slots.append(Slot(s, s + rules.duration, picked, seats_left(groups, picked, rules.occupied(s))))
            if limit is not None and len(slots) >= limit:
                break
    return slots


def plan_starts(rules: ServiceRules, start: datetime, end: datetime) -> list[datetime]:
    """The starts `check_slot` takes in [start, end): a plan over branches in several zones has each branch's own grid
    (Pune's 10:00 lies between New York's 23:00 and 00:00 at a 60-minute step), which its members alone take."""
    zones = dict.fromkeys((rules.zone, *rules.also_on_grid))
    if len(zones) == 1:
        return grid_starts(rules.step_minutes, rules.zone, start, end)
    return sorted({s for zone in zones for s in grid_starts(rules.step_minutes, zone, start, end)})


def first_free_by_start(rules: ServiceRules, groups: Sequence[Sequence[ResourceTimeline]],
                        starts: Sequence[datetime]) -> list[tuple[int, ...] | None] | None:
    """What `assign` picks at each start, by interval arithmetic over the whole grid at once; None when the
    service is not the plain case this covers (one place per booking, no member in two pools, one branch, listed
    order), and `assign` decides start by start instead.

    A member is free at a start when its occupied interval lies inside one of the member's free intervals (open
    time minus the times it has no place left: any claim for a member with one place, as many overlapping claims
    as it has places for a roomier one, such as a three-lift bay): each free interval [a, b) admits the grid
    starts in [a + buffer_before, b - duration - buffer_after], found by bisection, so a week costs a few
    bisections per member, not a check per start.
    """
    members = [r for group in groups for r in group]
    lead, tail = rules.buffer_before, rules.duration + rules.buffer_after
    if (not groups or isinstance(groups, Pools) or lead + tail <= timedelta(0) or any(r.capacity < 1 for r in members)
            or len({r.id for r in members}) != len(members)
            or len({r.location for r in members if r.location is not None}) > 1):
        return None
    firsts = []
    for group in groups:
        first: list[int | None] = [None] * len(starts)
        for r in group:  # listed order: an earlier member keeps the starts it is free at
            for a, b in subtract_sorted(r.open, merge(r.busy) if r.capacity == 1 else crowded(r.busy, r.capacity)):
                for i in range(bisect_left(starts, a + lead), bisect_right(starts, b - tail)):
                    if first[i] is None:
                        first[i] = r.id
        firsts.append(first)
    return [None if None in picked else picked for picked in zip(*firsts)]


def check_slot(
    rules: ServiceRules, groups: Sequence[Sequence[ResourceTimeline]], start: datetime, now: datetime
) -> Slot | SlotProblem:
    """Validate one requested start: bad input first, then whether it is still free."""
    if not any(on_grid(start, rules.step_minutes, zone) for zone in (rules.zone, *rules.also_on_grid)):
        return SlotProblem.OFF_GRID
    if rules.also_on_grid and not all(groups := on_their_grids(groups, start, rules.step_minutes)):
        return SlotProblem.OFF_GRID
    if start < now:
        return SlotProblem.IN_PAST
    earliest, latest = bookable_window(rules, now)
    if start < earliest:
        return SlotProblem.TOO_SOON
    if start > latest:
        return SlotProblem.BEYOND_HORIZON
    occupied = rules.occupied(start)
    if not all(any(r.is_open(*occupied) for r in group) for group in groups):
        return SlotProblem.OUTSIDE_HOURS
    picked = assign(ordered(groups, start), occupied)
    if picked is None:
        return SlotProblem.TAKEN
    return Slot(start, start + rules.duration, picked)


def on_their_grids(groups: Sequence[Sequence[ResourceTimeline]], start: datetime,
                   step_minutes: int) -> Sequence[Sequence[ResourceTimeline]]:
    """Each pool's members whose branch's grid `start` is on: a start on Pune's grid is not Manhattan's, and
    booked there it would take two of Manhattan's starts."""
    kept = [[r for r in group if r.grid is None or on_grid(start, step_minutes, r.grid)] for group in groups]
    return Pools(kept, groups.rank, groups.party, groups.per_person) if isinstance(groups, Pools) else kept


def nearest(slots: Sequence[Slot], target: datetime, count: int) -> list[Slot]:
    """The `count` slots nearest the target (later wins a tie), in time order."""
    ranked = sorted(slots, key=lambda s: (abs(s.starts_at - target), s.starts_at < target))
    return sorted(ranked[:count], key=lambda s: s.starts_at)
