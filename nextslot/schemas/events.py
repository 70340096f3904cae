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
    previous_starts_at: datetime | None = Field(None, description="booking.rescheduled: where it was before")
    notification: NotificationSummary | None = Field(None, description="notification.*: the message concerned")


class Event(BaseModel):
    id: str = Field(description="Unique per event; the same on every retry, so receivers can drop duplicates")
    type: EventType
    version: Literal[1] = 1
    created_at: datetime
    business: str = Field(description="The business's slug")
    data: BookingEventData


def event_json_schema() -> dict[str, Any]:
    return Event.model_json_schema()
