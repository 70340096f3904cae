"""Console sign-in: staff accounts with argon2id password hashes, and sessions kept as hashes of a cookie.

A session ends at its expiry (a shift, by default) or at sign-out, and carries its own CSRF token. A wrong
password and an unknown email take the same time and give the same answer, so sign-in does not tell
which emails have accounts.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, or_, select
from sqlalchemy.dialects.postgresql import insert

from nextslot.core import audit
from nextslot.core.accounts.api_keys import hash_key
from nextslot.core.booking.records import mask
from nextslot.core.results import Rejected
from nextslot.schemas.inputs import CONTROL
from nextslot.storage.tables import SignInFailure, StaffAccount, StaffSession
from nextslot.storage.uow import SqlAlchemyUnitOfWork

log = logging.getLogger(__name__)
ROLES = ("owner", "staff")
# per account (business and email), whatever the address: FREE_TRIES wrong ones, then growing waits
FREE_TRIES, FIRST_LOCK, LONGEST_LOCK = 5, timedelta(seconds=30), timedelta(minutes=15)
FORGET_AFTER = timedelta(hours=1)  # wrong tries this long ago count no more
MIN_PASSWORD = 10
MAX_NAME = 100  # the name is the actor (`Write.actor`, at most 100) in the history of every change the person makes
hasher = PasswordHasher()
UNKNOWN_HASH = hasher.hash(secrets.token_urlsafe(16))  # checked against when the email is unknown


@dataclass(frozen=True)
class SignedIn:
    """Who a console request comes from: their business, name and role, and the session's CSRF token."""

    session_id: int
    account_id: int
    business_id: int
    name: str
    email: str
    role: str
    csrf_token: str
    expires_at: datetime

    @property
    def is_owner(self) -> bool:
        return self.role == "owner"


def create_account(uow: SqlAlchemyUnitOfWork, business_id: int, email: str, name: str, role: str,
                   password: str) -> int | Rejected:
    """A new account, or a refusal (weak password, unknown role, email taken at this business)."""
    refused = account_problem(email, role, password) or name_problem(name.strip() or email.strip())
    if refused:
        return refused
    with uow:
        taken = uow.session.scalar(select(StaffAccount.id).where(
            StaffAccount.business_id == business_id, func.lower(StaffAccount.email) == email.strip().lower()))
        if taken:
            return Rejected("email_taken", f"{email} already has an account here.", "email")
        account = StaffAccount(business_id=business_id, email=email.strip(), name=name.strip() or email.strip(),
                               role=role, password_hash=hasher.hash(password), active=True)
        uow.session.add(account)
        uow.session.flush()
        audit.record(uow, business_id, "staff_account.created", account.email, {"role": [None, role]})
        uow.commit()
        return account.id


def reset_password(uow: SqlAlchemyUnitOfWork, business_id: int, email: str, password: str) -> bool:
    """Give an existing account a new password and end its sessions; False when there is no such account."""
    if account_problem(email, "owner", password):
        raise ValueError("a password given to reset_password must be a valid one")
    with uow:
        account = uow.session.scalars(select(StaffAccount).where(
            StaffAccount.business_id == business_id, func.lower(StaffAccount.email) == email.strip().lower())
        ).one_or_none()
        if account is None:
            return False
        account.password_hash, account.active = hasher.hash(password), True
        uow.session.execute(delete(StaffSession).where(StaffSession.account_id == account.id))
        audit.record(uow, business_id, "staff_account.password_reset", account.email)
        uow.commit()
        return True


def switch_off(uow: SqlAlchemyUnitOfWork, business_id: int, account_id: int, by_account_id: int,
               now: datetime) -> str | Rejected:
    """Someone has left: the account signs in no more and its sessions end at once (its apps' grants are the
    OAuth side's to end). Return its email, or a refusal: not one of this business's live accounts, your own (an
    owner cannot lock themselves out by a click), or the last owner (no one could manage the console again)."""
    with uow:
        s = uow.session
        # the owners locked in id order: two owners switching each other off at once cannot both succeed
        owners = list(s.scalars(select(StaffAccount).where(
            StaffAccount.business_id == business_id, StaffAccount.role == "owner", StaffAccount.active)
            .order_by(StaffAccount.id).with_for_update()))
        account = s.scalars(select(StaffAccount).where(
            StaffAccount.id == account_id, StaffAccount.business_id == business_id, StaffAccount.active)
            .with_for_update()).one_or_none()
        if account is None:
            return Rejected("unknown_account", "No such account here (or it is already switched off).", "account")
        if account.id == by_account_id:
            return Rejected("own_account", "You cannot switch off your own account; another owner can.", "account")
        if account.role == "owner" and len(owners) <= 1:
            return Rejected("last_owner", "This is the last owner: add another owner first.", "account")
        account.active = False
        s.execute(delete(StaffSession).where(StaffSession.account_id == account.id))
        audit.record(uow, business_id, "staff_account.switched_off", account.email)
        uow.commit()
        return account.email


def account_problem(email: str, role: str, password: str) -> Rejected | None:
    if role not in ROLES:
        return Rejected("invalid_role", f"A role is one of {', '.join(ROLES)}.", "role")
    if "@" not in email or len(email) > 320:
        return Rejected("invalid_email", "Give the email address the person signs in with.", "email")
    if len(password) < MIN_PASSWORD:
        return Rejected("weak_password", f"A password needs at least {MIN_PASSWORD} characters.", "password")
    return None


def name_problem(name: str) -> Rejected | None:
    """A name that cannot stand as the actor of a booking change (too long, a control character) is refused here,
    when the account is made, not at each of its changes."""
    if len(name) > MAX_NAME or CONTROL.search(name) or "\n" in name or "\r" in name:
        return Rejected("invalid_name", f"Give the person's name on one line, at most {MAX_NAME} characters.",
                        "name")
    return None


@dataclass(frozen=True)
class Locked:
    """Too many wrong tries for this email: no password is checked until the wait is over."""

    wait_seconds: int


def lockout(failures: int) -> timedelta:
    """None for the first FREE_TRIES, then 30 s, doubling with each wrong try, at most LONGEST_LOCK: it always
    ends, so an attacker slows the owner down but cannot lock them out for good."""
    return min(FIRST_LOCK * 2 ** (failures - FREE_TRIES), LONGEST_LOCK) if failures >= FREE_TRIES else timedelta(0)


@dataclass(frozen=True)
class Device:
    """A browser's mark of an earlier sign-in to the account (a cookie that outlives sign-out), and the secret that
    signs such marks."""

    mark: str
    secret: str


def device_mark(secret: str, account: StaffAccount) -> str:
    """The mark a browser keeps after signing in to this account: signed, so it cannot be made up, and over the
    password's hash, so a new password (after a leak, or someone's leaving) ends every browser's."""
    text = f"console-device:{account.id}:{account.password_hash}".encode()
    return hmac.new(secret.encode(), text, hashlib.sha256).hexdigest()


def sign_in(uow: SqlAlchemyUnitOfWork, business_id: int, email: str, password: str, now: datetime,
            lifetime: timedelta, device: Device | None = None) -> tuple[str, SignedIn, str] | Locked | Rejected:
    """A new session's cookie value, who it is for and the browser's new mark (when `device` gave the secret), one
    refusal for every kind of wrong answer, or Locked.

    The lock is for guesses from elsewhere: a browser whose mark says it signed in to this account before is not
    stopped by it, or one wrong try every fifteen minutes from anywhere would keep the owner out for good (its
    address still has the per-address budget)."""
    key = email.strip().lower()[:320]
    with uow:
        s = uow.session
        # the row lock queues tries at one account across every server process, so none slips past the count
        failed = None
        while failed is None:  # a sign-in that succeeded meanwhile may have deleted the row in between
            s.execute(insert(SignInFailure).values(business_id=business_id, email=key, failures=0,
                                                   last_failed_at=now).on_conflict_do_nothing())
            failed = s.get(SignInFailure, (business_id, key), with_for_update=True, populate_existing=True)
        account = s.scalars(select(StaffAccount).where(
            StaffAccount.business_id == business_id, func.lower(StaffAccount.email) == key,
            StaffAccount.active)).one_or_none()
        known = device is not None and account is not None and hmac.compare_digest(
            device.mark.encode(), device_mark(device.secret, account).encode())
        until = failed.locked_until if failed.locked_until is not None and failed.locked_until > now else None
        locked = until is not None
        if until is not None and not known:
            return Locked(math.ceil((until - now).total_seconds()))
        if not password_matches(account.password_hash if account else UNKNOWN_HASH, password) or account is None:
            count_failure(uow, failed, now)
            uow.commit()
            return Rejected("sign_in_failed", "That email and password do not match an account here.", "password")
        if not locked:  # a lock someone else ran up stays theirs when the owner's own browser gets past it
            s.delete(failed)
        if hasher.check_needs_rehash(account.password_hash):
            account.password_hash = hasher.hash(password)
        token = secrets.token_urlsafe(32)
        session = StaffSession(account_id=account.id, business_id=account.business_id, token_hash=hash_key(token),
                               csrf_token=secrets.token_urlsafe(24), expires_at=now + lifetime)
        uow.session.add(session)
        uow.session.execute(delete(StaffSession).where(StaffSession.account_id == account.id,
                                                       StaffSession.expires_at <= now))
        uow.session.flush()
        signed_in = signed_in_as(session, account)
        mark = device_mark(device.secret, account) if device is not None else ""
        uow.commit()
        return token, signed_in, mark


def count_failure(uow: SqlAlchemyUnitOfWork, failed: SignInFailure, now: datetime) -> None:
    if now - failed.last_failed_at > FORGET_AFTER:
        failed.failures = 0
    failed.failures, failed.last_failed_at = failed.failures + 1, now
    wait = lockout(failed.failures)
    failed.locked_until = now + wait if wait else None
    log.warning("console sign-in to business %s failed for %s: %d wrong in a row%s", failed.business_id,
                mask(failed.email), failed.failures, f", locked for {wait}" if wait else "")  # never the password
    uow.session.execute(delete(SignInFailure).where(  # forget old tries of this business, known emails or not
        SignInFailure.business_id == failed.business_id, SignInFailure.last_failed_at < now - FORGET_AFTER,
        or_(SignInFailure.locked_until.is_(None), SignInFailure.locked_until < now)))


def password_matches(stored_hash: str, password: str) -> bool:
    try:
        return hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def session_for(uow: SqlAlchemyUnitOfWork, token: str, now: datetime) -> SignedIn | None:
    """The live session a cookie names, or None (unknown, expired, or its account switched off)."""
    with uow:
        row = uow.session.execute(
            select(StaffSession, StaffAccount).join(StaffAccount, StaffAccount.id == StaffSession.account_id)
            .where(StaffSession.token_hash == hash_key(token), StaffSession.expires_at > now, StaffAccount.active)
        ).one_or_none()
        return signed_in_as(*row) if row else None


def sign_out(uow: SqlAlchemyUnitOfWork, session_id: int) -> None:
    with uow:
        uow.session.execute(delete(StaffSession).where(StaffSession.id == session_id))
        uow.commit()


def signed_in_as(signed_in: StaffSession, account: StaffAccount) -> SignedIn:
    return SignedIn(signed_in.id, account.id, account.business_id, account.name, account.email, account.role,
                    signed_in.csrf_token, signed_in.expires_at)


def csrf_matches(expected: str, given: str | None) -> bool:
    return given is not None and given != "" and secrets.compare_digest(expected.encode(), given.encode())


def staff_accounts(uow: SqlAlchemyUnitOfWork, business_id: int) -> list[dict[str, str]]:
    """The active accounts, owners first: who can sign in to the console."""
    return [{"id": str(a.id), "name": a.name, "email": a.email, "role": a.role} for a in uow.session.scalars(
        select(StaffAccount).where(StaffAccount.business_id == business_id, StaffAccount.active)
        .order_by(StaffAccount.role, StaffAccount.name))]
