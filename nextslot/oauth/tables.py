"""The OAuth tables: registered clients, grants (a person's consent for one app at one business), and the
codes and tokens issued under a grant, each kept only as a SHA-256 hash."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from nextslot.storage.tables import Base, Id, _business, _created, _id, _parent


class OAuthClient(Base):
    """A client registered through RFC 7591. Its secret is not stored: it is derived from the id with the
    server's secret key, so a copy of the database holds no client credentials."""

    __tablename__ = "oauth_clients"
    client_id: Mapped[str] = mapped_column(String(2048), primary_key=True)  # a metadata document's: its URL
    name: Mapped[str] = mapped_column(String(200))
    info: Mapped[dict[str, Any]]  # the registered metadata, without the secret
    created_at: Mapped[datetime] = _created()


class OAuthGrant(Base):
    """One approval: this app may act for this business with these scopes until revoked. Revoking it
    ends every token issued under it at once."""

    __tablename__ = "oauth_grants"
    __table_args__ = (_parent("account_id", "staff_accounts", cascade=True),)
    id: Mapped[int] = _id()
    client_id: Mapped[str] = mapped_column(String(2048), ForeignKey("oauth_clients.client_id", ondelete="CASCADE"),
                                           index=True)
    business_id: Mapped[int] = _business()
    account_id: Mapped[int] = mapped_column(Id)
    scopes: Mapped[str] = mapped_column(Text)  # space-separated, as OAuth writes them
    resource: Mapped[str] = mapped_column(Text)  # RFC 8707: the /mcp URL its tokens are for
    created_at: Mapped[datetime] = _created()
    connected_until: Mapped[datetime | None]  # the newest refresh token's expiry; None until the code is redeemed
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class OAuthCode(Base):
    """An authorization code: five minutes, once. A second try at a used code revokes its grant."""

    __tablename__ = "oauth_codes"
    __table_args__ = (_parent("grant_id", "oauth_grants", cascade=True),)
    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    business_id: Mapped[int] = mapped_column(Id, ForeignKey("businesses.id"), primary_key=True)  # the grant's
    grant_id: Mapped[int] = mapped_column(Id, index=True)
    code_challenge: Mapped[str] = mapped_column(String(128))
    redirect_uri: Mapped[str] = mapped_column(Text)
    redirect_uri_explicit: Mapped[bool] = mapped_column(Boolean)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class OAuthToken(Base):
    """An access or refresh token. A refresh token is used once (rotation); presenting it again revokes
    the grant, since one of the two presenters has stolen it."""

    __tablename__ = "oauth_tokens"
    __table_args__ = (_parent("grant_id", "oauth_grants", cascade=True),)
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    business_id: Mapped[int] = mapped_column(Id, ForeignKey("businesses.id"), primary_key=True)  # the grant's
    grant_id: Mapped[int] = mapped_column(Id, index=True)
    kind: Mapped[str] = mapped_column(String(8))  # access | refresh
    scopes: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()

