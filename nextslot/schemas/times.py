"""Instants as every audience needs them: UTC, business-local, customer-local, and spoken."""
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from pydantic import BaseModel

REPEATS = (" before the clocks go back", " after the clocks go back")  # the first and second showing


def repeat_note(local: datetime, notes: tuple[str, str] = REPEATS) -> str:
    """'' for most wall times; for one the clocks show twice (a fall-back night), which of the two it is."""
    if local.replace(fold=1 - local.fold).utcoffset() == local.utcoffset():
        return ""
    return notes[local.fold]


def clock_time(local: datetime) -> str:
    """'9:30 am', '12 pm', or '1:30 am before the clocks go back': never the same words for two instants."""
    hour = local.hour % 12 or 12
    clock = f"{hour}" if local.minute == 0 else f"{hour}:{local.minute:02d}"
    return f"{clock} {'am' if local.hour < 12 else 'pm'}{repeat_note(local)}"


def spoken_time(instant: datetime, zone: ZoneInfo) -> str:
    """A phrase a voice agent can read aloud: 'Tuesday 25 November at 5:30 pm'."""
    # keyed by the UTC instant: Python hashes and compares two datetimes of one tzinfo by wall time, fold ignored,
    # so a cache keyed by a local 01:30 would say the fall-back night's first 01:30 for its second
    return _spoken_utc(instant.astimezone(UTC), zone)


@lru_cache(maxsize=8192)  # every slot search says the same starts again: a page of four days says 132 of them
def _spoken_utc(instant: datetime, zone: ZoneInfo) -> str:
    local = instant.astimezone(zone)
    return f"{local:%A} {local.day} {local:%B} at {clock_time(local)}"


class TimeView(BaseModel):
    utc: datetime
    business_timezone: str
    business_local: datetime
    customer_local: datetime | None = None
    spoken: str  # in the customer's zone when known, else the place's
    place_timezone: str | None = None  # where it happens, when not in the business's zone: a branch's (or resource's)

    @classmethod
    def of(cls, instant: datetime, business_zone: ZoneInfo, customer_zone: ZoneInfo | None = None,
           place_zone: ZoneInfo | None = None) -> "TimeView":
        place = place_zone if place_zone is not None and place_zone.key != business_zone.key else None
        return cls(
            utc=instant.astimezone(UTC),
            business_timezone=business_zone.key,
            business_local=instant.astimezone(business_zone),
            customer_local=instant.astimezone(customer_zone) if customer_zone else None,
            spoken=spoken_time(instant, customer_zone or place or business_zone),
            place_timezone=place.key if place else None,
        )

    @property
    def place_zone(self) -> ZoneInfo:
        """The zone of where it happens: a branch's own, else the business's. A customer there reads it so."""
        return ZoneInfo(self.place_timezone or self.business_timezone)
