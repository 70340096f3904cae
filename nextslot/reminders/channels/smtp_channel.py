"""Email through an SMTP relay. The relay's acceptance is all we ever learn, so accepted means 'delivered'."""
from __future__ import annotations

import logging
import smtplib
import ssl
from contextlib import closing, suppress
from email.message import EmailMessage
from email.utils import make_msgid, parseaddr

from email_validator import EmailNotValidError, validate_email

from nextslot.reminders.channels.base import ChannelName, OutgoingMessage, SendResult

log = logging.getLogger(__name__)


class SmtpEmailChannel:
    """Send plain-text email, one SMTP session per message."""

    name: ChannelName = "email"

    def __init__(self, host: str, port: int, sender: str, username: str | None = None, password: str | None = None,
                 starttls: bool = False, timeout: float = 10.0):
        self.host, self.port, self.sender = host, port, sender
        self.username, self.password = username, password
        self.starttls, self.timeout = starttls, timeout
        # fixed here: make_msgid would otherwise look up this machine's FQDN for every message
        self.domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"

    def send(self, message: OutgoingMessage) -> SendResult:
        """Hand the message to the relay; a refusal or a network failure is a result, not an exception."""
        email = self._compose(message)
        try:
            self._deliver(email)
        except smtplib.SMTPNotSupportedError as exc:  # an OSError too, but this relay will never take the address
            log.warning("email %s: the relay takes no address beyond ASCII (no SMTPUTF8)", message.reference)
            return SendResult(False, None, "failed", "smtputf8", str(exc))
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            return self._refused(message, code, reply)
        except smtplib.SMTPResponseException as exc:
            return self._refused(message, exc.smtp_code, exc.smtp_error)
        except OSError as exc:  # refused, timed out, dropped, TLS trouble: the relay may be back later
            log.warning("email %s: network error %s", message.reference, type(exc).__name__)
            return SendResult(False, None, "failed", "network", str(exc) or type(exc).__name__, transient=True)
        log.info("email %s: accepted as %s", message.reference, email["Message-ID"])
        return SendResult(True, email["Message-ID"], "delivered")

    def _compose(self, message: OutgoingMessage) -> EmailMessage:
        email = EmailMessage()
        email["From"] = self.sender
        email["To"] = ascii_address(message.to)
        # one line: a business's name may hold a line break, and a header with one is refused (the whole email)
        email["Subject"] = " ".join(message.subject.split())
        email["Message-ID"] = make_msgid(idstring=message.reference, domain=self.domain)
        email["X-Nextslot-Reference"] = message.reference
        email.set_content(message.body)
        if message.calendar:  # calendar apps offer "add to calendar" for a text/calendar part
            email.add_attachment(message.calendar, maintype="text", subtype="calendar", filename="appointment.ics")
        return email

    def _deliver(self, email: EmailMessage) -> None:
        with closing(smtplib.SMTP(self.host, self.port, timeout=self.timeout)) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(email)
            with suppress(OSError):  # the relay has the message: a failed goodbye must not cause a second send
                smtp.quit()

    def _refused(self, message: OutgoingMessage, code: int, reply: bytes | str) -> SendResult:
        text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
        log.warning("email %s: refused with %s", message.reference, code)
        return SendResult(False, None, "failed", str(code), text, transient=400 <= code < 500)


def ascii_address(address: str) -> str:
    """The address with its domain in ASCII (IDNA: 'ann@müller.de' -> 'ann@xn--mller-kva.de'), which every relay
    takes; only a local part beyond ASCII needs a relay that speaks SMTPUTF8 (most do not)."""
    try:
        return validate_email(address, check_deliverability=False).ascii_email or address
    except EmailNotValidError:
        return address
