"""A recurring series booked from the public page: what became of each occurrence, in the visitor's words.

The form (booking_form.py) turns "repeat every N weeks, K times" into a SeriesCreate; booking_page.py sends
it to the core's `book_series` (the tools' and /v1's own path) and hands the outcome here. A taken occurrence
lists its nearest free times, each a link to book it on its own.
"""
from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from starlette.responses import Response

from nextslot.core.links import Links
from nextslot.languages import local_when
from nextslot.schemas.views import SeriesView, ServiceView
from nextslot.server.page_context import PageBusiness, Visitor
from nextslot.server.page_links import manage_path
from nextslot.server.page_problems import BY_CODE
from nextslot.server.page_render import render
from nextslot.server.page_times import SlotChoice, alternatives


@dataclass(frozen=True)
class OccurrenceRow:
    outcome: str  # booked, moved, taken, refused, not_booked
    asked: str  # the time asked for, the local way
    booked: str | None = None  # the time booked (moved: the nearest free one)
    code: str | None = None
    manage: str | None = None  # the booking's own manage link
    problem: str | None = None  # refused: why
    problem_code: str | None = None
    nearest: tuple[SlotChoice, ...] = ()  # taken: the nearest openings, each bookable alone


def series_page(request: Request, business: PageBusiness, offered: ServiceView, visitor: Visitor,
                view: SeriesView) -> Response:
    """The outcome page: 200 when something was booked, else 409 (nothing was, and the rows say why)."""
    links: Links = request.app.state.links
    zone, language = visitor.zone, visitor.language
    rows = []
    for o in view.occurrences:
        b = o.booking
        rows.append(OccurrenceRow(
            o.outcome, local_when(o.requested.utc, zone, language),
            local_when(b.starts_at.utc, zone, language) if b else None, b.code if b else None,
            manage_path(links, business.id, b) if b else None,
            o.problem if language == "en" or o.problem_code not in BY_CODE else None, o.problem_code,
            tuple(alternatives(o.alternatives, zone, language)) if o.outcome == "taken" else ()))
    booked = sum(1 for r in rows if r.code)
    return render(request, "series.html", {
        "business": business, "visitor": visitor, "offered": offered, "view": view, "rows": rows,
        "booked": booked, "base": f"/b/{business.slug}/{offered.key}", "problems": BY_CODE,
    }, status=200 if view.series_id is not None else 409)
