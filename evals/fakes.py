"""Small real servers on loopback for the message channels: a fake of Twilio's Messages API (Starlette under
uvicorn) and a real SMTP server (aiosmtpd). Both keep what they receive and fail on demand.

Shared by the tests and `nextslot bench load` (aiosmtpd comes with the test extra: `pip install -e ".[test]"`).
"""
from __future__ import annotations

import base64
import email
import email.policy
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl

import anyio
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from twilio.rest import Client

from evals.loopback import LiveServer, free_port
from nextslot.reminders.channels import twilio_client


@dataclass
class _Failure:
    matches: Callable[[str], bool]  # on the request's To
    status: int
    code: int
    message: str
    times: int | None  # None: every matching request


WHATSAPP_WINDOW = timedelta(hours=24)


class FakeTwilio:
    """Twilio's `POST /2010-04-01/Accounts/{sid}/Messages.json` on loopback: checks basic auth, records each
    request's form in `requests` (and each message it took in `accepted`, by SID), answers 201 like Twilio, or
    the scripted error.

    WhatsApp's rules as Twilio applies them: free text (`Body`) from a number only within 24 hours of the customer's
    last message to that number (`customer_wrote`, which Twilio would know from relaying it; the fake's `clock` can
    be a test's), else 63016;
    an approved template (`ContentSid` from `approve_template`, `ContentVariables` a JSON object) at any time, its
    placeholders filled in (the text is kept as the accepted message's `Body`).
    A `Body` over 1,600 characters is refused with 21617, like Twilio does on every channel."""

    account_sid = "AC" + "0" * 32
    auth_token = "fake-auth-token"
    sms_from = "+15005550006"
    whatsapp_from = "+14155238886"

    def __init__(self, clock: Callable[[], datetime] | None = None, whatsapp_window: bool = True) -> None:
        self.requests: list[dict[str, str]] = []
        self.accepted: dict[str, dict[str, str]] = {}  # SID -> form of each message taken (a real one goes out)
        self.accepted_at: dict[str, float] = {}  # SID -> when it was taken (time.monotonic), for latency figures
        self.templates: dict[str, str] = {}  # approved ContentSid -> its text with {{1}}, {{2}} ...
        # (customer's number, our number they wrote to), E.164 -> when they last wrote on WhatsApp
        self.last_inbound: dict[tuple[str, str], datetime] = {}
        self.clock = clock or (lambda: datetime.now(UTC))
        self.whatsapp_window = whatsapp_window  # False: free text to WhatsApp at any time (not like the real one)
        self.url = ""
        self._failures: list[_Failure] = []
        self._hang_seconds = 0.0
        self._outage: tuple[str, float, float] | None = None  # (kind, until on the monotonic clock, hang seconds)
        self._server = LiveServer(Starlette(routes=[
            Route("/2010-04-01/Accounts/{sid}/Messages.json", self._create_message, methods=["POST"])]))

    def __enter__(self) -> FakeTwilio:
        self.url = self._server.__enter__().url
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.__exit__(*exc)

    def fail_next(self, to: str | None = None, status: int = 400, code: int = 21211,
                  message: str = "The 'To' number is not a valid phone number.", times: int | None = 1) -> None:
        """Answer the next `times` requests (None: all of them) to `to` (e.g. "whatsapp:+4930...", None: any)
        with this Twilio error."""
        self._failures.append(_Failure(lambda got: to is None or got == to, status, code, message, times))

    def fail_whatsapp(self, status: int = 400, code: int = 63016,
                      message: str = "Failed to send freeform message because you are outside the allowed window.",
                      times: int | None = None, numbers: Callable[[str], bool] | None = None) -> None:
        """Refuse WhatsApp sends (all of them unless `times`, to every number unless `numbers` picks some);
        SMS still goes through."""
        self._failures.append(_Failure(
            lambda got: got.startswith("whatsapp:") and (numbers is None or numbers(got.removeprefix("whatsapp:"))),
            status, code, message, times))

    def customer_wrote(self, phone: str, to: str | None = None, at: datetime | None = None) -> None:
        """The customer sent a WhatsApp message to `to` (default: our WhatsApp number), now or `at`: free text from
        that number reaches them for 24 hours."""
        key = (phone.removeprefix("whatsapp:"), (to or self.whatsapp_from).removeprefix("whatsapp:"))
        self.last_inbound[key] = at or self.clock()

    def approve_template(self, text: str) -> str:
        """Approve a WhatsApp template (placeholders {{1}}, {{2}} ...); return its ContentSid."""
        sid = "HX" + secrets.token_hex(16)
        self.templates[sid] = text
        return sid

    def whatsapp_texts(self, phone: str) -> list[str]:
        """What the customer would read on WhatsApp, in order: free text as given, templates filled in."""
        return [form.get("Body", "") for form in self.accepted.values() if form.get("To") == f"whatsapp:{phone}"]

    def outage(self, kind: str, seconds: float, hang: float = 15.0) -> None:
        """For the next `seconds`, answer every request with Twilio's 500 (`kind="errors"`), or hold it `hang`
        seconds, longer than a client waits, and then refuse it with 503 (`kind="timeouts"`): either way
        nothing is sent, so a retry is the only copy that goes out."""
        self._outage = (kind, time.monotonic() + seconds, hang)

    def hang_next(self, seconds: float = 2.0) -> None:
        """Keep the next request waiting this long before answering, for client timeouts."""
        self._hang_seconds = seconds

    def client(self, timeout: float = 5.0) -> Client:
        """A real `twilio.rest.Client` pointed at this fake."""
        return twilio_client(self.account_sid, self.auth_token, api_url=self.url, timeout=timeout)

    def settings(self) -> dict[str, str]:
        """Settings values that make `build_channels` send SMS and WhatsApp here."""
        return {"twilio_account_sid": self.account_sid, "twilio_auth_token": self.auth_token,
                "twilio_sms_from": self.sms_from, "twilio_whatsapp_from": self.whatsapp_from,
                "twilio_api_url": self.url}

    async def _create_message(self, request: Request) -> JSONResponse:
        form = dict(parse_qsl((await request.body()).decode()))
        self.requests.append(form)
        if self._outage and time.monotonic() < self._outage[1]:
            kind, _, hang = self._outage
            if kind == "timeouts":
                await anyio.sleep(hang)
                return _twilio_error(503, 20503, "Service Unavailable")
            return _twilio_error(500, 20500, "Internal Server Error")
        if self._hang_seconds:
            seconds, self._hang_seconds = self._hang_seconds, 0.0
            await anyio.sleep(seconds)
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if request.headers.get("authorization") != expected or request.path_params["sid"] != self.account_sid:
            return _twilio_error(401, 20003, "Authenticate")
        if failure := next((f for f in self._failures if f.matches(form.get("To", ""))), None):
            if failure.times is not None:
                failure.times -= 1
                if failure.times == 0:
                    self._failures.remove(failure)
            return _twilio_error(failure.status, failure.code, failure.message)
        if len(form.get("Body", "").encode("utf-16-le")) // 2 > 1600:  # an emoji counts twice, as at Twilio
            return _twilio_error(400, 21617, "The concatenated message body exceeds the 1600 character limit")
        if (refusal := self._whatsapp_refusal(form)) is not None:
            return refusal
        if form.get("ContentSid"):  # what the customer gets is the template, filled in
            variables = json.loads(form.get("ContentVariables") or "{}")
            form = {**form, "Body": re.sub(r"\{\{(\d+)\}\}", lambda m: str(variables.get(m.group(1), m.group(0))),
                                            self.templates[form["ContentSid"]])}
        sid = "SM" + secrets.token_hex(16)
        self.accepted_at[sid] = time.monotonic()
        self.accepted[sid] = form
        now = format_datetime(datetime.now(UTC), usegmt=True)
        return JSONResponse(status_code=201, content={
            "account_sid": self.account_sid, "api_version": "2010-04-01", "body": form.get("Body"),
            "date_created": now, "date_updated": now, "date_sent": None, "direction": "outbound-api",
            "error_code": None, "error_message": None, "from": form.get("From"), "messaging_service_sid": None,
            "num_media": "0", "num_segments": "1", "price": None, "price_unit": "USD", "sid": sid,
            "status": "queued", "to": form.get("To"),
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json"})


    def _whatsapp_refusal(self, form: dict[str, str]) -> JSONResponse | None:
        """Twilio's answer to a template it does not know or variables it cannot read, and WhatsApp's to free
        text outside the window; None: the message goes out."""
        if sid := form.get("ContentSid"):
            if sid not in self.templates:
                return _twilio_error(400, 21655, "The ContentSid is Invalid")
            try:
                variables = json.loads(form.get("ContentVariables") or "{}")
            except ValueError:
                variables = None
            if not isinstance(variables, dict) or not all(isinstance(v, str) and v for v in variables.values()):
                return _twilio_error(400, 21656, "The ContentVariables Parameter is invalid")
            if any(re.search(r"[\n\t]| {5}", v) for v in variables.values()):
                # WhatsApp fails such a message after Twilio took it (Meta's 132018); the fake refuses it at once
                return _twilio_error(400, 63049, "Template parameter format mismatch: new lines, tabs or more "
                                                 "than 4 consecutive spaces")
            return None
        to = form.get("To", "")
        if self.whatsapp_window and to.startswith("whatsapp:"):
            last = self.last_inbound.get((to.removeprefix("whatsapp:"), form.get("From", "").removeprefix("whatsapp:")))
            if last is None or self.clock() >= last + WHATSAPP_WINDOW:
                return _twilio_error(400, 63016, "Failed to send freeform message because you are outside the "
                                                 "allowed window. If you are using WhatsApp, please use a Message "
                                                 "Template.")
        return None


def _twilio_error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={
        "code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status})


class FakeSmtpServer:
    """A real SMTP server (aiosmtpd) on loopback. Keeps each message it accepts in `messages` (parsed), takes
    AUTH from `username`/`password` (optional), and refuses on demand. `smtputf8=False`: a relay that takes no
    address beyond ASCII (no SMTPUTF8), as many do."""

    username = "mailer"
    password = "mail-secret"

    def __init__(self, smtputf8: bool = True) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []  # (MAIL FROM, RCPT TOs) of each accepted message
        self.logins: list[str] = []
        self._refusals: dict[str, str] = {}  # SMTP command -> reply, once
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port,
                                      authenticator=self._authenticate, auth_require_tls=False,
                                      enable_SMTPUTF8=smtputf8)

    def __enter__(self) -> FakeSmtpServer:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    def refuse_next(self, code: int = 550, text: str = "5.1.1 Mailbox unavailable", at: str = "RCPT") -> None:
        """Answer the next RCPT (a recipient refused) or DATA (the message refused) with this reply."""
        self._refusals[at] = f"{code} {text}"

    def settings(self) -> dict[str, Any]:
        """Settings values that make `build_channels` send email here."""
        return {"smtp_host": "127.0.0.1", "smtp_port": self.port, "smtp_sender": "bookings@nextslot.test"}

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        if refusal := self._refusals.pop("RCPT", None):
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if refusal := self._refusals.pop("DATA", None):
            return refusal
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = auth_data == LoginPassword(self.username.encode(), self.password.encode())
        if ok:
            self.logins.append(self.username)
        return AuthResult(success=ok, handled=False)  # unhandled: aiosmtpd answers a failure with 535
