"""The console's calendar as a grid: columns (resources side by side, or the days of a week), rows of five
minutes, and blocks placed on them (working time, time off, outside busy time, buffers, bookings, holds).

Placement is by CSS classes (`c-3 rs-40 re-52 lane-1-of-2`) from a generated stylesheet, not by inline
styles: the pages' Content-Security-Policy allows no inline style, and a live update can swap the grid's
HTML without new nonces.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from nextslot.core.instants import day_instants
from nextslot.schemas.api import CalendarView, ResourceDay, Span

MINUTES_PER_ROW = 5
ROWS_PER_HOUR = 60 // MINUTES_PER_ROW
ROWS_PER_DAY = 24 * ROWS_PER_HOUR
MAX_COLUMNS = 60
MAX_LANES = 4
DEFAULT_HOURS = (8, 18)


@dataclass
class Block:
    kind: str  # working, off, busy, buffer, booking, hold
    column: int  # 1-based among the day columns
    first_row: int  # 0-based five-minute row from the grid's first hour
    last_row: int  # exclusive
    label: str = ""
    detail: str = ""
    code: str | None = None  # a booking's, for its link
    status: str = ""
    lane: int = 0
    lanes: int = 1

    @property
    def classes(self) -> str:
        lanes = min(self.lanes, MAX_LANES)
        lane = f" lane-{min(self.lane, lanes - 1)}-of-{lanes}" if lanes > 1 else ""
        return f"blk {self.kind} c-{self.column} rs-{self.first_row + 2} re-{self.last_row + 2}{lane}"


@dataclass
class Column:
    title: str
    subtitle: str
    day: date
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Grid:
    columns: list[Column]
    first_hour: int
    last_hour: int

    @property
    def hours(self) -> list[tuple[int, str]]:
        """(row class index, "09:00") for each hour line."""
        return [((h - self.first_hour) * ROWS_PER_HOUR + 2, f"{h:02d}:00")
                for h in range(self.first_hour, self.last_hour)]

    @property
    def rows(self) -> int:
        return (self.last_hour - self.first_hour) * ROWS_PER_HOUR

    @property
    def blocks(self) -> list[Block]:
        return [b for c in self.columns for b in c.blocks]


def resources_side_by_side(view: CalendarView) -> Grid:
    """One day: a column per resource (staff, rooms, devices)."""
    return laid_out([(r.name, r.kind, view.date, [r]) for r in view.resources[:MAX_COLUMNS]],
                    ZoneInfo(view.timezone))


def days_side_by_side(view: CalendarView) -> Grid:
    """A week: a column per day, every shown resource's time in it (a booking of several resources once)."""
    days = [view.date + timedelta(days=i) for i in range(view.days)]
    return laid_out([(d.strftime("%a"), d.strftime("%d %b"), d, view.resources) for d in days],
                    ZoneInfo(view.timezone))


def laid_out(columns: list[tuple[str, str, date, list[ResourceDay]]], zone: ZoneInfo) -> Grid:
    grid_columns = []
    for index, (title, subtitle, day, resources) in enumerate(columns, start=1):
        column = Column(title, subtitle, day)
        taking: list[tuple[Block, Block]] = []  # (occupied with buffers, the appointment itself)
        seen: set[str] = set()
        named = len(resources) > 1
        for r in resources:
            column.blocks += spans(index, day, r.working, "working", zone)
            column.blocks += [with_text(b, "Time off", t.reason) for t in r.time_off
                              for b in spans(index, day, [t], "off", zone)]
            column.blocks += [with_text(b, "Busy", "outside calendar")
                              for b in spans(index, day, r.external_busy, "busy", zone)]
            for booking in r.bookings:
                if booking.code not in seen:
                    seen.add(booking.code)
                    text = (booking.customer_name or "(no name)",
                            f"{booking.service_name}{' · ' + r.name if named else ''}", booking.code, booking.status)
                    taking += pairs(index, day, zone, booking.occupied, booking, "booking", text)
            for hold in r.holds:
                taking += pairs(index, day, zone, hold.occupied, hold, "hold",
                                ("Held", f"{hold.service} until {hold.expires_at:%H:%M}", None, "held"))
        assign_lanes([outer for outer, _ in taking])
        for outer, inner in taking:
            inner.lane, inner.lanes = outer.lane, outer.lanes
            if (outer.first_row, outer.last_row) != (inner.first_row, inner.last_row):
                column.blocks.append(outer)
            column.blocks.append(inner)
        grid_columns.append(column)
    first, last = hour_range([b for c in grid_columns for b in c.blocks])
    for c in grid_columns:
        c.blocks = [shifted(b, first) for b in c.blocks
                    if b.last_row > first * ROWS_PER_HOUR and b.first_row < last * ROWS_PER_HOUR]
    return Grid(grid_columns, first, last)


def pairs(column: int, day: date, zone: ZoneInfo, occupied: Span, appointment: Span, kind: str,
          text: tuple[str, str, str | None, str]) -> list[tuple[Block, Block]]:
    outer = spans(column, day, [occupied], "buffer", zone)
    inner = [with_text(b, *text) for b in spans(column, day, [appointment], kind, zone)]
    return list(zip(outer, inner)) if inner else []


def spans(column: int, day: date, items: list[Span], kind: str, zone: ZoneInfo) -> list[Block]:
    """Blocks for the parts of these spans that fall on this local day (its real instants, whatever midnight does)."""
    day_first, next_first = (instant.astimezone(UTC) for instant in day_instants(day, zone))
    blocks = []
    for item in items:  # compared in UTC: two local times in one zone compare by wall clock, so the two 01:30s of a
        # fall-back night would be equal and a booking from one to the other empty
        start, end = max(item.starts_at.astimezone(UTC), day_first), min(item.ends_at.astimezone(UTC), next_first)
        if start >= end:
            continue
        first = row_of(start, day, zone, up=False)
        last = max(row_of(end, day, zone, up=True), first + 1)
        blocks.append(Block(kind, column, first, last))
    return blocks


def row_of(instant: datetime, day: date, zone: ZoneInfo, up: bool) -> int:
    """The five-minute row of a local wall time (a DST day's wall clock, as the staff read it)."""
    local = instant.astimezone(zone)
    minutes = (local.date() - day).days * 24 * 60 + local.hour * 60 + local.minute
    rows, rest = divmod(minutes, MINUTES_PER_ROW)
    return min(rows + (1 if up and (rest or local.second) else 0), ROWS_PER_DAY)


def with_text(block: Block, label: str, detail: str, code: str | None = None, status: str = "") -> Block:
    block.label, block.detail, block.code, block.status = label, detail, code, status
    return block


def assign_lanes(blocks: list[Block]) -> None:
    """Overlapping blocks side by side (capacity above one, or holds beside bookings)."""
    blocks.sort(key=lambda b: (b.first_row, b.last_row))
    cluster: list[Block] = []
    cluster_end = -1
    for block in blocks:
        if cluster and block.first_row >= cluster_end:
            share_lanes(cluster)
            cluster = []
        cluster_end = max(cluster_end, block.last_row) if cluster else block.last_row
        cluster.append(block)
    share_lanes(cluster)


def share_lanes(cluster: list[Block]) -> None:
    ends: list[int] = []  # each lane's last row so far
    for b in cluster:
        b.lane = next((i for i, end in enumerate(ends) if end <= b.first_row), len(ends))
        ends[b.lane:b.lane + 1] = [b.last_row]
    for b in cluster:
        b.lanes = len(ends)


def hour_range(blocks: list[Block]) -> tuple[int, int]:
    """From the earliest hour anything happens to the latest; office hours when the days are empty."""
    if not blocks:
        return DEFAULT_HOURS
    first = min(b.first_row for b in blocks) // ROWS_PER_HOUR
    last = -(-max(b.last_row for b in blocks) // ROWS_PER_HOUR)
    return first, max(last, first + 1)


def shifted(block: Block, first_hour: int) -> Block:
    offset = first_hour * ROWS_PER_HOUR
    block.first_row, block.last_row = max(block.first_row - offset, 0), block.last_row - offset
    return block


def placement_css() -> str:
    """The classes blocks are placed with: columns, five-minute rows across a day, lanes."""
    rules = [f".c-{i}{{grid-column:{i + 1}}}" for i in range(1, MAX_COLUMNS + 1)]
    rules += [f".rs-{i}{{grid-row-start:{i}}}.re-{i}{{grid-row-end:{i}}}" for i in range(2, ROWS_PER_DAY + 3)]
    for lanes in range(2, MAX_LANES + 1):
        rules += [f".lane-{i}-of-{lanes}{{margin-left:{100 * i / lanes:.2f}%;width:{100 / lanes:.2f}%}}"
                  for i in range(lanes)]
    return "\n".join(rules)
