"""What an OAuth grant may do: four scopes, the tools each opens, and who may grant them.

`staff` reads across a customer's whole history (messages, no-shows, deposits). A grant lasts weeks and
goes to an app outside the business, so only an owner may hand that out; staff accounts may grant the
other three, which are what the console lets them do for one caller at a time anyway.
"""
from __future__ import annotations

AVAILABILITY_READ, BOOKINGS_WRITE, BOOKINGS_MANAGE, STAFF = (
    "availability:read", "bookings:write", "bookings:manage", "staff")

SCOPES: dict[str, str] = {  # in the order the consent page lists them
    AVAILABILITY_READ: "See services, opening hours and free times",
    BOOKINGS_WRITE: "Make new bookings, holds and waitlist entries",
    BOOKINGS_MANAGE: "Look up, move, confirm and cancel existing bookings",
    STAFF: "Read a customer's whole history (messages, no-shows, deposits)",
}
ALL = list(SCOPES)
OWNER_ONLY = frozenset({STAFF})
DEFAULT = [AVAILABILITY_READ, BOOKINGS_WRITE, BOOKINGS_MANAGE]  # ticked when a client asks for nothing

TOOL_SCOPES: dict[str, str] = {
    "list_services": AVAILABILITY_READ,
    "get_business_info": AVAILABILITY_READ,
    "find_available_slots": AVAILABILITY_READ,
    "hold_slot": BOOKINGS_WRITE,
    "book_appointment": BOOKINGS_WRITE,
    "book_series": BOOKINGS_WRITE,
    "join_waitlist": BOOKINGS_WRITE,
    "find_appointments": BOOKINGS_MANAGE,
    "reschedule_appointment": BOOKINGS_MANAGE,
    "cancel_appointment": BOOKINGS_MANAGE,
    "confirm_appointment": BOOKINGS_MANAGE,
    "customer_history": STAFF,
}


def grantable(role: str) -> list[str]:
    """The scopes a console account of this role may grant to an app."""
    return [s for s in ALL if role == "owner" or s not in OWNER_ONLY]


def missing_scope(tool: str, scopes: frozenset[str] | None) -> str | None:
    """The scope a token lacks for this tool, or None. `scopes` None means an API key: every tool.
    A tool nobody mapped needs `staff`, so a new tool is closed until someone decides."""
    if scopes is None:
        return None
    needed = TOOL_SCOPES.get(tool, STAFF)
    return None if needed in scopes else needed
