"""What the dispatcher sends and what a channel answers: the only contract between them."""
from dataclasses import dataclass
from typing import Literal, Protocol

ChannelName = Literal["whatsapp", "sms", "email"]


@dataclass(frozen=True)
class OutgoingMessage:
    to: str            # E.164 phone for sms/whatsapp (WITHOUT the "whatsapp:" prefix), or an email address
    body: str
    subject: str       # used by email only
    reference: str     # e.g. "notification-123-attempt-2": goes in logs / email Message-ID / headers; never customer data


@dataclass(frozen=True)
class SendResult:
    accepted: bool                 # the provider took the message
    provider_id: str | None        # Twilio Message SID, or the email Message-ID
    status: str                    # accepted: 'queued'|'sent'|'delivered' (SMTP accept => 'delivered': no receipts for email); refused: 'failed'
    error_code: str | None = None  # Twilio error code as a string (e.g. "21211"), an SMTP reply code, or "network"
    error_message: str | None = None
    transient: bool = False        # True: worth retrying the same channel later (timeouts, connection errors, HTTP 429/5xx, SMTP 4xx); False: permanent, move to the next channel


class Channel(Protocol):
    name: ChannelName

    def send(self, message: OutgoingMessage) -> SendResult: ...   # never raises for provider/network errors
