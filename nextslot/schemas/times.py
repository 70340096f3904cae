"""Instants as every audience needs them: UTC, business-local, customer-local, and spoken."""
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from pydantic import BaseModel


def spoken_time(instant: datetime, zone: ZoneInfo) -> str:
    """A phrase a voice agent can read aloud: 'Tuesday 25 November at 5:30 pm'."""
    local = instant.astimezone(zone)
    hour = local.hour % 12 or 12
    clock = f"{hour}" if local.minute == 0 else f"{hour}:{local.minute:02d}"
    return f"{local:%A} {local.day} {local:%B} at {clock} {'am' if local.hour < 12 else 'pm'}"


class TimeView(BaseModel):
    utc: datetime
    business_timezone: str
    business_local: datetime
    customer_local: datetime | None = None
    spoken: str  # in the customer's zone when known, else the business's

    @classmethod
    def of(cls, instant: datetime, business_zone: ZoneInfo, customer_zone: ZoneInfo | None = None) -> "TimeView":
        return cls(
            utc=instant.astimezone(UTC),
            business_timezone=business_zone.key,
            business_local=instant.astimezone(business_zone),
            customer_local=instant.astimezone(customer_zone) if customer_zone else None,
            spoken=spoken_time(instant, customer_zone or business_zone),
        )
