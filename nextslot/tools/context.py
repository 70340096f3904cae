"""Who is calling a tool: the business (from its API key), the channel, and what the platform knows."""
from __future__ import annotations

from dataclasses import dataclass

from nextslot.core.service import BookingService


@dataclass(frozen=True)
class ToolContext:
    service: BookingService
    business_id: int
    channel: str  # mcp, openai, vapi, retell, elevenlabs: recorded as the booking's source and in its history
    caller_phone: str | None = None  # a voice platform's caller id, used when the model gives no phone
    idempotency_key: str | None = None  # a platform's own id for this tool call, used when the model gives none
    language: str | None = None  # the conversation's language: `say` comes in it when the call names none
