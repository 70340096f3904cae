"""Signed links a customer uses without an account: manage (reschedule, cancel) a booking, pay its deposit,
take a waitlist offer.

A link names the business and the booking code and carries its own expiry (the booking's start for a
manage link, the payment deadline for a pay link); the signature covers all three, so none can be
changed, and a link is refused after its expiry. Several server processes must share the secret.
"""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from itsdangerous import BadSignature, URLSafeSerializer

from nextslot.core.results import Rejected


@dataclass(frozen=True)
class LinkTarget:
    business_id: int
    code: str
    expires_at: datetime


class Links:
    PURPOSES = ("manage", "pay", "offer")

    def __init__(self, secret: str, public_url: str):
        self._signers = {p: URLSafeSerializer(secret, salt=f"nextslot-{p}") for p in self.PURPOSES}
        self.public_url = public_url.rstrip("/")

    def token(self, purpose: str, business_id: int, code: str, expires_at: datetime) -> str:
        return self._signers[purpose].dumps([business_id, code, int(expires_at.timestamp())])

    def manage_url(self, business_id: int, code: str, expires_at: datetime, language: str | None = None) -> str:
        """The manage page's link; `language` opens it in that language (the customer's, in her own messages: the
        page never takes it from her record, as whoever booked with her number holds the link too)."""
        return f"{self.public_url}/m/{self.token('manage', business_id, code, expires_at)}{in_language(language)}"

    def calendar_url(self, business_id: int, code: str, expires_at: datetime) -> str:
        """The booking as an .ics file (the manage token; served at /ics/booking/<token>.ics)."""
        return f"{self.public_url}/ics/booking/{self.token('manage', business_id, code, expires_at)}.ics"

    def pay_url(self, business_id: int, code: str, expires_at: datetime, language: str | None = None) -> str:
        return f"{self.public_url}/pay/{self.token('pay', business_id, code, expires_at)}{in_language(language)}"

    def offer_url(self, business_id: int, offer_id: int, expires_at: datetime) -> str:
        return f"{self.public_url}/w/{self.token('offer', business_id, str(offer_id), expires_at)}"

    def read(self, purpose: str, token: str, now: datetime) -> LinkTarget | Rejected:
        """The booking a link points at, or why the link cannot be used."""
        try:
            business_id, code, expires = self._signers[purpose].loads(token)
            target = LinkTarget(int(business_id), str(code), datetime.fromtimestamp(int(expires), UTC))
        except (BadSignature, ValueError, TypeError):
            return Rejected("link_invalid", "This link is not valid. Use the link from your confirmation.", "token")
        if now >= target.expires_at:
            return Rejected("link_expired", "This link has expired.", "token")
        return target


def in_language(language: str | None) -> str:
    return f"?lang={language}" if language else ""


def load_secret(configured: str | None, data_dir: Path) -> str:
    """The configured secret, else one generated once and kept in data_dir (fine for a single machine)."""
    if configured:
        return configured
    path = data_dir / "secret_key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        draft = data_dir / f"secret_key.{secrets.token_hex(4)}"
        draft.touch(mode=0o600)
        draft.write_text(secrets.token_urlsafe(48))
        try:
            os.link(draft, path)  # first process wins; the others read its key
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()
