"""Connecting and disconnecting an app are account changes: the audit log says who, for which app and scopes."""
from __future__ import annotations

from sqlalchemy import select

from nextslot.core import audit
from nextslot.core.accounts.staff import create_account
from nextslot.core.clock import utcnow
from nextslot.oauth import grants
from nextslot.oauth.tables import OAuthGrant
from nextslot.storage.uow import SqlAlchemyUnitOfWork


def test_an_app_connected_and_disconnected_is_in_the_audit_log(make_business, session_factory):
    clinic = make_business("clinic")
    uow = SqlAlchemyUnitOfWork(session_factory)
    account = create_account(uow, clinic, "grantor@clinic.example", "Gina", "owner", "a-long-password-1")
    grants.save_client(uow, "client-audit-1", "Audit App", {"redirect_uris": ["https://app.example/cb"]})
    grants.approve(uow, client_id="client-audit-1", business_id=clinic, account_id=account,
                   scopes=["availability:read", "bookings:write"], resource="https://book.example/mcp",
                   code_challenge="x" * 43, redirect_uri="https://app.example/cb", redirect_uri_explicit=True,
                   now=utcnow())
    with session_factory() as s:
        grant_id = s.scalar(select(OAuthGrant.id).where(OAuthGrant.business_id == clinic))
    with audit.acting_as("grantor@clinic.example", "console"):
        assert grants.revoke_grant(uow, grant_id, utcnow(), business_id=clinic)
    assert not grants.revoke_grant(uow, grant_id, utcnow(), business_id=clinic)  # once: one entry
    entries = audit.entries(uow, clinic, 10)
    assert [(e.action, e.actor, e.channel) for e in entries[:2]] == [
        ("oauth.disconnected", "grantor@clinic.example", "console"),
        ("oauth.connected", "grantor@clinic.example", "console")]
    assert entries[1].changes == {"scopes": [None, ["availability:read", "bookings:write"]]}
    assert entries[1].target.startswith("client-audit-1")
