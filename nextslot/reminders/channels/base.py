"""What the dispatcher sends and what a channel answers: the only contract between them."""
from dataclasses import dataclass
from typing import Literal, Protocol

ChannelName = Literal["whatsapp", "sms", "email"]


@dataclass(frozen=True)
class Content:
    """An approved WhatsApp template to send instead of the free text: Twilio's ContentSid and ContentVariables."""

    sid: str
    variables: dict[str, str]  # "1" -> value, "2" -> value, ...


@dataclass(frozen=True)
class OutgoingMessage:
    to: str  # E.164 phone for sms/whatsapp (without the "whatsapp:" prefix), or an email address
    body: str
    subject: str  # email only
    reference: str  # e.g. "notification-123": in logs, the Message-ID and headers; never customer data
    calendar: bytes | None = None  # the booking as .ics: attached to emails, ignored by text channels
    content: Content | None = None  # WhatsApp outside its 24-hour window: this template, not the body
    sender: str | None = None  # E.164: send from this number of the account, not the channel's own


@dataclass(frozen=True)
class SendResult:
    accepted: bool  # the provider took the message
    provider_id: str | None  # Twilio Message SID, or the email Message-ID
    # accepted: queued / sent / delivered (an SMTP accept counts as delivered: email has no receipts);
    # refused: failed
    status: str
    error_code: str | None = None  # Twilio's code as text (e.g. "21211"), an SMTP reply code, or "network"
    error_message: str | None = None
    # True: worth retrying the same channel later (timeouts, connection errors, HTTP 429/5xx, SMTP 4xx);
    # False: permanent, move to the next channel
    transient: bool = False


class Channel(Protocol):
    name: ChannelName

    def send(self, message: OutgoingMessage) -> SendResult:
        """Never raises for provider or network errors: they come back as a refused result."""
        ...
