"""Events sent to a business's webhook endpoints: versioned, documented by the JSON schema of these models.

Receivers check `Nextslot-Signature: t=<unix seconds>,v1=<hex>` where hex is
HMAC-SHA256(endpoint secret, f"{t}.{raw body}") and reject a t more than five minutes old.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from nextslot.schemas.views import BookingView

EventType = Literal["booking.created", "booking.rescheduled", "booking.cancelled", "booking.confirmed",
                    "booking.no_show", "booking.expired", "deposit.paid", "waitlist.offer_accepted",
                    "fee.charged", "fee.failed",
                    "notification.delivered",
                    "notification.failed"]
EVENT_TYPES: tuple[str, ...] = EventType.__args__  # type: ignore[attr-defined]


class NotificationSummary(BaseModel):
    id: int
    kind: str = Field(description="confirmation, reminder, rescheduled, cancelled, staff_...")
    status: str = Field(description="delivered, or failed / unconfirmed (accepted, never confirmed)")
    channel: str | None = Field(description="the channel of the last attempt")
    attempts: int


class BookingEventData(BaseModel):
    booking: BookingView
    booking_version: int = Field(description=(
        "How many changes the booking's history holds as this event shows it (its .ics SEQUENCE is one less): "
        "a later state of the booking has a higher one, so an event whose booking_version is lower than one "
        "already applied for the same booking is stale; events about the same state (a message's outcome) share "
        "it"))
    previous_starts_at: datetime | None = Field(None, description="booking.rescheduled: where it was before")
    notification: NotificationSummary | None = Field(None, description="notification.*: the message concerned")


class Event(BaseModel):
    id: str = Field(description="Unique per event; the same on every retry, so receivers can drop duplicates")
    type: EventType
    version: Literal[1] = 1
    sequence: int = Field(ge=1, description=(
        "This endpoint's event number: 1, 2, 3 ... in the order the events were committed, none skipped. An event "
        "retried after a later one arrives with the lower number; a number not yet seen is an event still being "
        "retried, or one given up on (the endpoint was turned off)"))
    created_at: datetime
    business: str = Field(description="The business's slug")
    data: BookingEventData


def event_json_schema() -> dict[str, Any]:
    return Event.model_json_schema()
