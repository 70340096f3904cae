"""Clients, grants, codes and tokens over our tables: what the mcp package's provider protocol asks for,
as plain functions over a unit of work (one transaction each). Every secret handed out is random and
kept only as its SHA-256 hash; lookups are by hash."""
from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.dialects.postgresql import insert

from nextslot.core import audit
from nextslot.core.accounts.api_keys import hash_key
from nextslot.oauth.tables import OAuthClient, OAuthCode, OAuthGrant, OAuthToken
from nextslot.schemas.inputs import CONTROL
from nextslot.storage.tables import StaffAccount
from nextslot.storage.uow import SqlAlchemyUnitOfWork

ACCESS_LIFETIME = timedelta(hours=1)
REFRESH_LIFETIME = timedelta(days=30)
CODE_LIFETIME = timedelta(minutes=5)
MAX_CLIENT_ID = 2048  # a registered client's id is short; a metadata document's is its URL
TOUCH_EVERY = timedelta(minutes=5)  # last_used_at is for people: no write on every tool call
ACCESS_PREFIX, REFRESH_PREFIX, CODE_PREFIX = "nso_", "nsr_", "nsc_"  # API keys are nsk_
Secret = TypeVar("Secret", OAuthCode, OAuthToken)


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Issued:
    access_token: str
    refresh_token: str
    expires_in: int
    scopes: list[str]


@dataclass(frozen=True)
class CodeRecord:
    grant_id: int
    client_id: str
    scopes: list[str]
    resource: str
    code_challenge: str
    redirect_uri: str
    redirect_uri_explicit: bool
    expires_at: datetime


@dataclass(frozen=True)
class TokenRecord:
    """A live access or refresh token: its grant, business, scopes and resource."""

    grant_id: int
    client_id: str
    business_id: int
    scopes: list[str]
    resource: str
    expires_at: datetime


@dataclass(frozen=True)
class ConnectedApp:
    grant_id: int
    client_name: str
    redirect_hosts: list[str]
    scopes: list[str]
    granted_by: str
    created_at: datetime
    last_used_at: datetime | None
    connected_until: datetime


def save_client(uow: SqlAlchemyUnitOfWork, client_id: str, name: str, info: dict[str, Any]) -> None:
    with uow:
        uow.session.add(OAuthClient(client_id=client_id, name=name[:200], info=info))
        uow.commit()


def remember_client(uow: SqlAlchemyUnitOfWork, client_id: str, name: str, info: dict[str, Any]) -> None:
    """Record (or refresh) a client known from its metadata document, so grants can name it."""
    with uow:
        uow.session.execute(insert(OAuthClient).values(client_id=client_id, name=name[:200], info=info)
                            .on_conflict_do_update(index_elements=["client_id"],
                                                   set_={"name": name[:200], "info": info}))
        uow.commit()


def client_info(uow: SqlAlchemyUnitOfWork, client_id: str) -> dict[str, Any] | None:
    if len(client_id) > MAX_CLIENT_ID or CONTROL.search(client_id):  # no such id; NUL the database refuses (a 500)
        return None
    with uow:
        client = uow.session.get(OAuthClient, client_id)
        return dict(client.info) if client else None


def approve(uow: SqlAlchemyUnitOfWork, *, client_id: str, business_id: int, account_id: int, scopes: list[str],
            resource: str, code_challenge: str, redirect_uri: str, redirect_uri_explicit: bool,
            now: datetime) -> str:
    """Record the person's consent as a grant and return a fresh authorization code for it."""
    code = new_secret(CODE_PREFIX)
    with uow:
        grant = OAuthGrant(client_id=client_id, business_id=business_id, account_id=account_id,
                           scopes=" ".join(scopes), resource=resource)
        uow.session.add(grant)
        uow.session.flush()
        uow.session.add(OAuthCode(code_hash=hash_key(code), grant_id=grant.id, business_id=business_id, code_challenge=code_challenge,
                                  redirect_uri=redirect_uri, redirect_uri_explicit=redirect_uri_explicit,
                                  expires_at=now + CODE_LIFETIME))
        who = uow.session.scalar(select(StaffAccount.email).where(StaffAccount.id == account_id))
        audit.record(uow, business_id, "oauth.connected", f"{client_id} (grant {grant.id})",
                     {"scopes": [None, scopes]}, actor=who or f"account {account_id}", channel="console")
        uow.commit()
    return code


def find_code(uow: SqlAlchemyUnitOfWork, code: str, now: datetime) -> CodeRecord | None:
    """The code's record if it was never used; a used one is a replay, and its grant is revoked (RFC 6749
    §4.1.2: tokens issued from a code presented twice should not live on)."""
    with uow:
        unused = unused_with_grant(uow, OAuthCode, now, OAuthCode.code_hash == hash_key(code))
        if unused is None:
            return None
        found, grant = unused
        if grant.revoked_at is not None:
            return None
        return CodeRecord(grant.id, grant.client_id, grant.scopes.split(), grant.resource, found.code_challenge,
                          found.redirect_uri, found.redirect_uri_explicit, found.expires_at)


def unused_with_grant(uow: SqlAlchemyUnitOfWork, model: type[Secret], now: datetime,
                      *where: ColumnElement[bool]) -> tuple[Secret, OAuthGrant] | None:
    """The code or token found and its grant, or None: none found, or found used already, which is a replay,
    so its grant is revoked (committed)."""
    # an app acts for the person who approved it: once their account is switched off, its codes and tokens are none
    row = uow.session.execute(select(model, OAuthGrant).join(OAuthGrant, OAuthGrant.id == model.grant_id)
                              .join(StaffAccount, StaffAccount.id == OAuthGrant.account_id)
                              .where(*where, StaffAccount.active)).one_or_none()
    if row is None:
        return None
    found, grant = row
    if found.used_at is not None:
        grant.revoked_at = grant.revoked_at or now
        uow.commit()
        return None
    return found, grant


def redeem_code(uow: SqlAlchemyUnitOfWork, code: str, now: datetime) -> Issued | None:
    """Use the code (once: of two racing requests one wins) and issue the grant's first tokens."""
    return use_and_issue(uow, OAuthCode, now, lambda grant: grant.scopes.split(),
                         OAuthCode.code_hash == hash_key(code))


def use_and_issue(uow: SqlAlchemyUnitOfWork, model: type[Secret], now: datetime,
                  scopes: Callable[[OAuthGrant], list[str]], *where: ColumnElement[bool]) -> Issued | None:
    """Mark the live code or token used (once: of two racing requests one wins) and issue a new pair under its
    grant, with the scopes chosen from the grant's; None when it is used, expired or its grant revoked."""
    with uow:
        grant_id = uow.session.scalar(
            update(model).where(*where, model.used_at.is_(None), model.expires_at > now)
            .values(used_at=now).returning(model.grant_id))
        if grant_id is None:  # used by a racing request a moment ago is a replay too: its grant is revoked
            unused_with_grant(uow, model, now, *where)
            return None
        grant = uow.session.get(OAuthGrant, grant_id)
        if grant is None or grant.revoked_at is not None or not approver_active(uow, grant):
            uow.rollback()
            return None
        issued = issue(uow, grant, scopes(grant), now)
        uow.commit()
        return issued


def issue(uow: SqlAlchemyUnitOfWork, grant: OAuthGrant, scopes: list[str], now: datetime) -> Issued:
    access, refresh = new_secret(ACCESS_PREFIX), new_secret(REFRESH_PREFIX)
    joined = " ".join(scopes)
    uow.session.add_all([
        OAuthToken(token_hash=hash_key(access), grant_id=grant.id, business_id=grant.business_id, kind="access", scopes=joined,
                   expires_at=now + ACCESS_LIFETIME),
        OAuthToken(token_hash=hash_key(refresh), grant_id=grant.id, business_id=grant.business_id, kind="refresh", scopes=joined,
                   expires_at=now + REFRESH_LIFETIME),
    ])
    grant.connected_until = now + REFRESH_LIFETIME
    return Issued(access, refresh, int(ACCESS_LIFETIME.total_seconds()), scopes)


def find_token(uow: SqlAlchemyUnitOfWork, token: str, kind: str, now: datetime) -> TokenRecord | None:
    """A live token of this kind. A refresh token presented after it was used is a replay: its grant is
    revoked, so the thief and the app alike must ask the person again."""
    with uow:
        unused = unused_with_grant(uow, OAuthToken, now, OAuthToken.token_hash == hash_key(token),
                                   OAuthToken.kind == kind)
        if unused is None:
            return None
        found, grant = unused
        if grant.revoked_at is not None or found.expires_at <= now:
            return None
        if kind == "access" and (grant.last_used_at is None or grant.last_used_at < now - TOUCH_EVERY):
            grant.last_used_at = now
            uow.commit()
        return TokenRecord(grant.id, grant.client_id, grant.business_id, found.scopes.split(), grant.resource,
                           found.expires_at)


def rotate(uow: SqlAlchemyUnitOfWork, refresh_token: str, scopes: list[str], now: datetime) -> Issued | None:
    """Use the refresh token (once) and issue a new pair with at most its scopes; the old access tokens of
    this grant stay valid until they expire (an hour at most)."""
    return use_and_issue(uow, OAuthToken, now, lambda grant: [s for s in scopes if s in grant.scopes.split()],
                         OAuthToken.token_hash == hash_key(refresh_token), OAuthToken.kind == "refresh")


def approver_active(uow: SqlAlchemyUnitOfWork, grant: OAuthGrant) -> bool:
    """An app acts for the person who approved it: once their account is switched off, it acts no more (a refresh
    reads the grant by id; a token or code lookup joins the account instead)."""
    return bool(uow.session.scalar(select(StaffAccount.active).where(StaffAccount.id == grant.account_id)))


def end_account_grants(uow: SqlAlchemyUnitOfWork, business_id: int, account_id: int, now: datetime) -> int:
    """End every grant the account approved (it was switched off); return how many."""
    with uow:
        ended = uow.session.scalars(update(OAuthGrant).where(
            OAuthGrant.business_id == business_id, OAuthGrant.account_id == account_id,
            OAuthGrant.revoked_at.is_(None)).values(revoked_at=now).returning(OAuthGrant.client_id)).all()
        for client_id in ended:
            audit.record(uow, business_id, "oauth.disconnected", f"{client_id} (its approver's account switched off)")
        uow.commit()
        return len(ended)


def revoke_grant(uow: SqlAlchemyUnitOfWork, grant_id: int, now: datetime, business_id: int | None = None) -> bool:
    """End a grant and with it every token issued under it; with business_id, only that business's."""
    with uow:
        query = update(OAuthGrant).where(OAuthGrant.id == grant_id, OAuthGrant.revoked_at.is_(None))
        if business_id is not None:
            query = query.where(OAuthGrant.business_id == business_id)
        ended = uow.session.execute(query.values(revoked_at=now).returning(OAuthGrant.business_id,
                                                                           OAuthGrant.client_id)).first()
        if ended is not None:  # by staff (Disconnect, business_id given) or by the app itself (/revoke)
            audit.record(uow, ended.business_id, "oauth.disconnected", f"{ended.client_id} (grant {grant_id})",
                         **({} if business_id is not None else {"actor": "the app (/revoke)", "channel": "oauth"}))
        uow.commit()
        return ended is not None


def connected_apps(uow: SqlAlchemyUnitOfWork, business_id: int, now: datetime) -> list[ConnectedApp]:
    """The business's live grants, newest first, for the console's Settings."""
    with uow:
        rows = uow.session.execute(
            select(OAuthGrant, OAuthClient, StaffAccount)
            .join(OAuthClient, OAuthClient.client_id == OAuthGrant.client_id)
            .join(StaffAccount, StaffAccount.id == OAuthGrant.account_id)
            .where(OAuthGrant.business_id == business_id, OAuthGrant.revoked_at.is_(None),
                   OAuthGrant.connected_until > now)
            .order_by(OAuthGrant.created_at.desc(), OAuthGrant.id.desc())).all()
        return [ConnectedApp(grant.id, client.name, redirect_hosts(client.info), grant.scopes.split(),
                             account.name, grant.created_at, grant.last_used_at, grant.connected_until)
                for grant, client, account in rows]


def redirect_hosts(info: dict[str, Any]) -> list[str]:
    from urllib.parse import urlsplit

    return sorted({urlsplit(str(uri)).netloc for uri in info.get("redirect_uris") or []})
