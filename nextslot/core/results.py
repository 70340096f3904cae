"""Expected outcomes are values: a lost race is an answer, not an error."""
from dataclasses import dataclass
from datetime import datetime

from nextslot.schemas.views import BookingView, HoldView, SeriesView, SlotView


@dataclass(frozen=True)
class Booked:
    booking: BookingView
    replayed: bool = False  # True: an idempotent retry got the first result back


@dataclass(frozen=True)
class Changed:
    """A cancel, confirm or no-show took effect (or had already)."""

    booking: BookingView
    replayed: bool = False


@dataclass(frozen=True)
class Held:
    hold: HoldView
    replayed: bool = False


@dataclass(frozen=True)
class SlotTaken:
    requested: datetime
    alternatives: list[SlotView]  # the openings nearest the requested time, free when computed


@dataclass(frozen=True)
class Slots:
    slots: list[SlotView]


@dataclass(frozen=True)
class Opening:
    """An open start time as a booking page's grid shows it: the instant, and the places left in a class."""

    starts_at: datetime
    seats_left: int | None = None


@dataclass(frozen=True)
class Rejected:
    code: str  # machine-readable reason
    message: str  # a sentence a person (or a model) can act on
    field: str | None = None
    suggestions: tuple[str, ...] = ()  # real values close to what was given (service keys, names)
    problems: tuple[tuple[str, str], ...] = ()  # (field, problem) for each of several wrong fields
    details: tuple[tuple[str, str], ...] = ()  # values the sentence was made of, for an edge to say it otherwise


@dataclass(frozen=True)
class SeriesBooked:
    """A recurring series' outcome, occurrence by occurrence (all-or-none that lost one booked nothing)."""

    series: SeriesView
    replayed: bool = False


@dataclass(frozen=True)
class SeriesChanged:
    """A series cancelled or moved from one occurrence onwards: the bookings changed, in time order."""

    bookings: list[BookingView]


BookingResult = Booked | SlotTaken | Rejected
HoldResult = Held | SlotTaken | Rejected
ChangeResult = Changed | Rejected
