"""Someone leaves: an owner switches their console account off. Their open sessions end at once, they sign in no
more, and the apps they connected (claude.ai, ChatGPT...) stop acting for them; an owner cannot switch off their
own account or the last owner. The in-process app, the real database."""
from __future__ import annotations

import json
import re

from sqlalchemy import select

from nextslot.core.accounts.staff import create_account, switch_off
from nextslot.core.clock import utcnow
from nextslot.core.results import Rejected
from nextslot.oauth import grants
from nextslot.storage.tables import AuditEntry, Business, StaffAccount
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.server.test_cli import nextslot
from tests.server.test_console import PASSWORD, clients, console, csrf_of  # noqa: F401 - the signed-in console


def account_id(session_factory, business_id: int, email: str) -> int:
    with session_factory() as s:
        return s.scalar(select(StaffAccount.id).where(StaffAccount.business_id == business_id,
                                                      StaffAccount.email == email))


def connected_app(session_factory, business_id: int, account: int) -> grants.Issued:
    """An app the account approved, its code redeemed: a live access and refresh token."""
    uow = SqlAlchemyUnitOfWork(session_factory)
    grants.save_client(uow, f"app-{account}", "Helper App", {"redirect_uris": ["https://app.example/cb"]})
    code = grants.approve(uow, client_id=f"app-{account}", business_id=business_id, account_id=account,
                          scopes=["availability:read", "bookings:write"], resource="https://book.example/mcp",
                          code_challenge="x" * 43, redirect_uri="https://app.example/cb", redirect_uri_explicit=True,
                          now=utcnow())
    issued = grants.redeem_code(uow, code, utcnow())
    assert issued is not None
    return issued


def test_a_switched_off_account_loses_its_sessions_its_sign_in_and_its_apps_at_once(
        console, make_business, session_factory):  # noqa: F811
    clinic = make_business("clinic")
    owner, slug = console(clinic, "owner", email="boss@example.com")
    desk, _ = console(clinic, "staff", email="desk@example.com")
    leaver = account_id(session_factory, clinic, "desk@example.com")
    app = connected_app(session_factory, clinic, leaver)
    uow = SqlAlchemyUnitOfWork(session_factory)
    assert grants.find_token(uow, app.access_token, "access", utcnow()) is not None
    assert desk.get(f"/console/{slug}").status_code == 200

    settings = owner.get(f"/console/{slug}/settings").text
    assert f"/settings/staff/{leaver}/off" in settings
    answer = owner.post(f"/console/{slug}/settings/staff/{leaver}/off", data={"csrf": csrf_of(settings)})
    assert answer.status_code == 303

    assert desk.get(f"/console/{slug}").status_code == 303  # to the sign-in page: the session is gone
    again = desk.post(f"/console/{slug}/login", data={"email": "desk@example.com", "password": PASSWORD})
    assert again.status_code == 401  # the same answer as a wrong password: it tells no one the account exists
    assert grants.find_token(uow, app.access_token, "access", utcnow()) is None
    assert grants.rotate(uow, app.refresh_token, ["availability:read"], utcnow()) is None
    assert "desk@example.com" not in owner.get(f"/console/{slug}/settings").text
    with session_factory() as s:
        actions = set(s.scalars(select(AuditEntry.action).where(AuditEntry.business_id == clinic)))
    assert {"staff_account.switched_off", "oauth.disconnected"} <= actions


def test_an_app_stops_with_its_approvers_account_even_if_its_grant_was_not_ended(make_business, session_factory):
    """The console ends the grants right after the account; should that second step never run, the account's
    state alone stops the app (and a password reset that turns the account on again does not revive it)."""
    clinic = make_business("clinic")
    uow = SqlAlchemyUnitOfWork(session_factory)
    boss = create_account(uow, clinic, "boss@example.com", "Boss", "owner", PASSWORD)
    desk = create_account(uow, clinic, "desk@example.com", "Desk", "staff", PASSWORD)
    app = connected_app(session_factory, clinic, desk)
    assert switch_off(uow, clinic, desk, boss, utcnow()) == "desk@example.com"
    assert grants.find_token(uow, app.access_token, "access", utcnow()) is None
    assert grants.rotate(uow, app.refresh_token, ["availability:read"], utcnow()) is None


def test_no_one_switches_off_their_own_account_the_last_owner_or_another_business_account(
        console, make_business, session_factory):  # noqa: F811
    clinic, garage = make_business("clinic"), make_business("garage")
    owner, slug = console(clinic, "owner", email="boss@example.com")
    console(clinic, "owner", email="partner@example.com")
    console(garage, "staff", email="mechanic@example.com")
    boss, partner = (account_id(session_factory, clinic, e) for e in ("boss@example.com", "partner@example.com"))
    mechanic = account_id(session_factory, garage, "mechanic@example.com")

    def off(target: int):
        csrf = csrf_of(owner.get(f"/console/{slug}/settings").text)
        return owner.post(f"/console/{slug}/settings/staff/{target}/off", data={"csrf": csrf})

    mine = off(boss)
    assert mine.status_code == 422 and 'data-code="own_account"' in mine.text
    theirs = off(mechanic)
    assert theirs.status_code == 422 and 'data-code="unknown_account"' in theirs.text
    assert off(partner).status_code == 303
    # the partner's own request, racing, arrives after: the boss is now the last owner
    last = switch_off(SqlAlchemyUnitOfWork(session_factory), clinic, boss, partner, utcnow())
    assert isinstance(last, Rejected) and last.code == "last_owner"
    with session_factory() as s:
        active = dict(s.execute(select(StaffAccount.email, StaffAccount.active).where(
            StaffAccount.business_id.in_((clinic, garage)))).all())
    assert active == {"boss@example.com": True, "partner@example.com": False, "mechanic@example.com": True}


def test_a_staff_member_cannot_switch_anyone_off(console, make_business, session_factory):  # noqa: F811
    clinic = make_business("clinic")
    console(clinic, "owner", email="boss@example.com")
    desk, slug = console(clinic, "staff", email="desk@example.com")
    boss = account_id(session_factory, clinic, "boss@example.com")
    csrf = csrf_of(desk.get(f"/console/{slug}/settings").text)
    refused = desk.post(f"/console/{slug}/settings/staff/{boss}/off", data={"csrf": csrf})
    assert refused.status_code == 403 and re.search("[Oo]wners only", refused.text)
    with session_factory() as s:
        assert s.scalar(select(StaffAccount.active).where(StaffAccount.id == boss)) is True


def test_the_command_line_switches_an_account_off_and_refuses_the_last_owner(database_url, make_business,
                                                                             session_factory):
    clinic = make_business("clinic")
    uow = SqlAlchemyUnitOfWork(session_factory)
    create_account(uow, clinic, "boss@example.com", "Boss", "owner", PASSWORD)
    desk = create_account(uow, clinic, "desk@example.com", "Desk", "staff", PASSWORD)
    app = connected_app(session_factory, clinic, desk)
    with session_factory() as s:
        slug = s.get(Business, clinic).slug
    done = nextslot(database_url, "staff-account", slug, "DESK@example.com", "--off")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"email": "desk@example.com", "switched_off": True, "apps_disconnected": 1}
    assert grants.find_token(uow, app.access_token, "access", utcnow()) is None
    last = nextslot(database_url, "staff-account", slug, "boss@example.com", "--off")
    assert last.returncode == 2 and json.loads(last.stderr)["error"] == "last_owner"
