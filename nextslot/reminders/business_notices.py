"""Notices to the business itself about its own set-up (a webhook endpoint turned off): where they go and
what they say. The dispatcher sends them like any message, on these channels in this order."""
from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from nextslot.core.customers.contacts import normalize_phone
from nextslot.reminders.templates import spoken_when
from nextslot.storage.tables import Business

TO_BUSINESS = "business_"  # kinds with this prefix have no customer, booking or staff member: the business
NOTICE_CHANNELS = ["email", "sms"]
UNREACHABLE = "no channel can reach the business: give it an email (sent with SMTP) or a phone (Twilio SMS)"


def business_addresses(business: Business) -> dict[str, str | None]:
    """Its own email from the config, and its phone read in its country for SMS (none if it cannot be read)."""
    details = business.details or {}
    phone = normalize_phone(str(details["phone"]), business.country) if details.get("phone") else None
    return {"email": details.get("email"), "sms": phone if isinstance(phone, str) else None}


def notice_values(payload: dict[str, Any], business: Business, zone: ZoneInfo) -> dict[str, str]:
    """The notice's facts as template values, its instant (`at`) spoken in the business's zone."""
    return {**{key: str(value) for key, value in payload.items()}, "business": business.name,
            "when": spoken_when(datetime.fromisoformat(payload["at"]), zone, "en")}
