"""Interval arithmetic on [start, end) pairs of aware UTC instants: merged, subtracted, in one pass when sorted."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

Interval = tuple[datetime, datetime]


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for s, e in sorted(intervals):
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def crowded(intervals: Iterable[Interval], depth: int) -> list[Interval]:
    """Where at least `depth` of the intervals overlap, merged and in order (`merge` is depth 1): a sweep over
    their ends, an end before a start at one instant, as [start, end) pairs meet without overlapping."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    out: list[Interval] = []
    count, since = 0, None
    for at, step in events:
        count += step
        if since is None and count >= depth:
            since = at
        elif since is not None and count < depth:
            if since < at:
                if out and out[-1][1] == since:  # a claim ended and another began at the same instant
                    out[-1] = (out[-1][0], at)
                else:
                    out.append((since, at))
            since = None
    return out


def subtract(intervals: list[Interval], holes: Iterable[Interval]) -> list[Interval]:
    result = intervals
    for hs, he in holes:
        nxt: list[Interval] = []
        for s, e in result:
            if he <= s or hs >= e:
                nxt.append((s, e))
                continue
            if s < hs:
                nxt.append((s, hs))
            if he < e:
                nxt.append((he, e))
        result = nxt
    return result


# --- local wall time -> instants ------------------------------------------------------------


def subtract_sorted(intervals: Sequence[Interval], holes: Sequence[Interval]) -> list[Interval]:
    """Sorted intervals minus sorted, merged holes, in one pass."""
    out: list[Interval] = []
    j = 0
    for s, e in intervals:
        while j < len(holes) and holes[j][1] <= s:
            j += 1
        cursor, k = s, j
        while k < len(holes) and holes[k][0] < e:
            if holes[k][0] > cursor:
                out.append((cursor, holes[k][0]))
            cursor = max(cursor, holes[k][1])
            k += 1
        if cursor < e:
            out.append((cursor, e))
    return out
