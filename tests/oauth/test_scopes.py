"""Every tool needs exactly one known scope, and only owners may grant the staff scope."""
from nextslot.oauth import scopes
from nextslot.tools.registry import TOOLS


def test_every_tool_is_mapped_to_a_known_scope():
    assert set(scopes.TOOL_SCOPES) == set(TOOLS)
    assert set(scopes.TOOL_SCOPES.values()) <= set(scopes.SCOPES)


def test_staff_accounts_may_grant_everything_but_the_owner_only_scope():
    assert scopes.grantable("owner") == scopes.ALL
    assert scopes.grantable("staff") == ["availability:read", "bookings:write", "bookings:manage"]


def test_api_keys_may_use_every_tool_and_a_read_only_token_only_the_reads():
    read_only = frozenset({"availability:read"})
    assert scopes.missing_scope("book_appointment", None) is None
    assert scopes.missing_scope("find_available_slots", read_only) is None
    assert scopes.missing_scope("cancel_appointment", read_only) == "bookings:manage"
    assert scopes.missing_scope("a_tool_nobody_mapped", read_only | {"bookings:manage"}) == "staff"
