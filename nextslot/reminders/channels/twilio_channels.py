"""SMS and WhatsApp through Twilio's Messages API; delivery receipts arrive later at the status callback."""
from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import requests
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from nextslot.core.sms_text import SMS_LIMIT, shortened, sms_length
from nextslot.reminders.channels.base import ChannelName, OutgoingMessage, SendResult

log = logging.getLogger(__name__)


def twilio_client(account_sid: str, auth_token: str, api_url: str | None = None, timeout: float = 10.0) -> Client:
    """Build a Twilio client that gives up after `timeout` seconds (the library's default is to wait forever)."""
    client = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=timeout))
    if api_url:
        client.api.base_url = api_url  # twilio has no base-URL option; Messages live on the Api domain
    return client


def within_limit(message: OutgoingMessage) -> str:
    """The body, cut at Twilio's limit if it is longer (the last guard: the dispatcher already shortened a
    templated message's names to fit, so this cuts only a text that has no names to shorten)."""
    if sms_length(message.body) <= SMS_LIMIT:
        return message.body
    log.warning("%s: a body of %s characters was cut to Twilio's %s", message.reference, sms_length(message.body),
                SMS_LIMIT)
    return shortened(message.body, SMS_LIMIT)


class TwilioSmsChannel:
    """Send text messages from a Twilio number, asking Twilio to report delivery to `status_callback`."""

    name: ChannelName = "sms"
    prefix = ""
    session_window: timedelta | None = None  # SMS takes free text at any time

    def __init__(self, client: Client, from_number: str, status_callback: str | None = None):
        self.client = client
        self.from_number = from_number.removeprefix(self.prefix)
        self.status_callback = status_callback

    def send(self, message: OutgoingMessage) -> SendResult:
        """Hand the message to Twilio; a refusal or a network failure is a result, not an exception."""
        text: dict[str, Any] = {"body": within_limit(message)}
        if message.content is not None and self.session_window is not None:
            text = {"content_sid": message.content.sid,
                    "content_variables": json.dumps(message.content.variables, ensure_ascii=False)}
        try:
            sender = (message.sender or self.from_number).removeprefix(self.prefix)
            sent = self.client.messages.create(to=self.prefix + message.to, from_=self.prefix + sender,
                                               status_callback=self.callback_for(message), **text)
        except TwilioRestException as exc:
            return self._refused(message, exc.status, exc.code, exc.msg)
        except TwilioServiceException as exc:  # the RFC 9457 error shape of Twilio's newer APIs
            return self._refused(message, exc.status, exc.code, exc.detail or exc.title)
        except (requests.ConnectionError, requests.Timeout) as exc:
            log.warning("%s %s: network error %s", self.name, message.reference, type(exc).__name__)
            return SendResult(False, None, "failed", "network", str(exc), transient=True)
        log.info("%s %s: accepted as %s", self.name, message.reference, sent.sid)
        return SendResult(True, sent.sid, sent.status or "queued")

    def callback_for(self, message: OutgoingMessage) -> str | None:
        """The status callback, naming what the message was sent as (its reference, never customer data): if this
        process dies before recording the send, its receipt tells the dispatcher taking over not to send it again."""
        if not self.status_callback:
            return None
        joiner = "&" if "?" in self.status_callback else "?"
        return f"{self.status_callback}{joiner}{urlencode({'ref': message.reference, 'channel': self.name})}"

    def _refused(self, message: OutgoingMessage, status: int, code: int | None, text: str) -> SendResult:
        transient = status == 429 or status >= 500  # rate limits and Twilio's own trouble pass; the rest won't
        log.warning("%s %s: refused, HTTP %s, code %s", self.name, message.reference, status, code)
        return SendResult(False, None, "failed", str(code or status), text, transient)


class TwilioWhatsAppChannel(TwilioSmsChannel):
    """WhatsApp through the same API: both numbers carry the `whatsapp:` prefix."""

    name: ChannelName = "whatsapp"
    prefix = "whatsapp:"
    # WhatsApp takes a business's free text only this long after the customer's last message; else a template
    session_window: timedelta | None = timedelta(hours=24)
