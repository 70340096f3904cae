"""Per-business secrets for the voice webhooks: Vapi and ElevenLabs send a shared secret, Retell signs with the
business's Retell API key. Each is set with `nextslot voice-secret` and looked up by business slug."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert

from nextslot.core import audit
from nextslot.storage import queries
from nextslot.storage.tables import VoiceIntegration
from nextslot.storage.uow import SqlAlchemyUnitOfWork

Platform = Literal["vapi", "retell", "elevenlabs"]


@dataclass(frozen=True)
class VoiceBusiness:
    business_id: int
    secret: str | None  # None: this platform is not set up for the business


def new_secret() -> str:
    """A random shared secret (Vapi, ElevenLabs send whatever we choose); Retell's key comes from Retell."""
    return secrets.token_urlsafe(32)


def set_secret(uow: SqlAlchemyUnitOfWork, business_id: int, platform: Platform, secret: str) -> None:
    """Store (or replace) the business's secret for a platform."""
    with uow:
        uow.session.execute(
            insert(VoiceIntegration)
            .values(business_id=business_id, platform=platform, secret=secret)
            .on_conflict_do_update(index_elements=["business_id", "platform"],
                                   set_={"secret": secret, "created_at": func.now()})
        )
        audit.record(uow, business_id, "voice_secret.set", platform)  # never the secret itself
        uow.commit()


def voice_business(uow: SqlAlchemyUnitOfWork, slug: str, platform: Platform) -> VoiceBusiness | None:
    """The business behind a webhook path and its secret for the platform; None for an unknown slug."""
    with uow:
        uow.reads_first()  # one read: no transaction around it
        found = queries.voice_secret(uow.session, slug, platform)
    return VoiceBusiness(*found) if found is not None else None
