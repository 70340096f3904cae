"""The channels against real parts: the real `twilio` client talking to a fake Messages API on loopback, and
smtplib talking to a real SMTP server (aiosmtpd)."""
from __future__ import annotations

import json
import re
import socket
from dataclasses import replace

from evals.fakes import FakeSmtpServer, FakeTwilio
from evals.loopback import free_port
from nextslot.reminders.channels import (
    Content,
    OutgoingMessage,
    SmtpEmailChannel,
    TwilioSmsChannel,
    TwilioWhatsAppChannel,
    build_channels,
    twilio_client,
)
from nextslot.settings import Settings

CALLBACK = "https://book.example.com/webhooks/twilio/status"
REMINDER = OutgoingMessage(to="+4915123456789", body="See you tomorrow at 10:00.", subject="Your appointment",
                           reference="notification-7-attempt-1")


def sms(fake: FakeTwilio, timeout: float = 5.0) -> TwilioSmsChannel:
    return TwilioSmsChannel(fake.client(timeout), fake.sms_from, CALLBACK)


def test_sms_is_sent_with_from_body_and_status_callback(fake_twilio):
    result = sms(fake_twilio).send(REMINDER)

    assert result.accepted and result.status == "queued" and not result.transient
    assert re.fullmatch(r"SM[0-9a-f]{32}", result.provider_id)
    assert fake_twilio.requests == [{"To": "+4915123456789", "From": fake_twilio.sms_from,
                                     "Body": "See you tomorrow at 10:00.",
                                     "StatusCallback": f"{CALLBACK}?ref=notification-7-attempt-1&channel=sms"}]


def test_whatsapp_numbers_carry_the_whatsapp_prefix(fake_twilio):
    channel = TwilioWhatsAppChannel(fake_twilio.client(), "whatsapp:" + fake_twilio.whatsapp_from, CALLBACK)
    fake_twilio.customer_wrote(REMINDER.to)  # within WhatsApp's 24-hour window: free text goes

    result = channel.send(REMINDER)

    assert result.accepted and result.provider_id.startswith("SM")
    [request] = fake_twilio.requests
    assert request["To"] == "whatsapp:+4915123456789"
    assert request["From"] == "whatsapp:" + fake_twilio.whatsapp_from
    assert request["StatusCallback"] == f"{CALLBACK}?ref=notification-7-attempt-1&channel=whatsapp"


def test_invalid_number_is_a_permanent_refusal_with_twilios_code(fake_twilio):
    fake_twilio.fail_next(to="+4915123456789", status=400, code=21211, message="Invalid 'To' Phone Number")

    result = sms(fake_twilio).send(REMINDER)

    assert (result.accepted, result.provider_id, result.status) == (False, None, "failed")
    assert result.error_code == "21211" and not result.transient
    assert "Invalid 'To' Phone Number" in result.error_message


def test_whatsapp_refusal_leaves_sms_working(fake_twilio):
    fake_twilio.fail_whatsapp()
    whatsapp = TwilioWhatsAppChannel(fake_twilio.client(), fake_twilio.whatsapp_from)

    assert whatsapp.send(REMINDER).error_code == "63016"
    assert whatsapp.send(REMINDER).error_code == "63016"
    assert sms(fake_twilio).send(REMINDER).accepted


def test_whatsapp_free_text_outside_the_window_is_refused_and_a_template_goes_with_its_variables(fake_twilio):
    whatsapp = TwilioWhatsAppChannel(fake_twilio.client(), fake_twilio.whatsapp_from, CALLBACK)
    sid = fake_twilio.approve_template("Hi {{1}}, see you {{2}}.")
    templated = replace(REMINDER, content=Content(sid, {"1": "Ana", "2": "Tuesday at 9:30 — ¿vale?"}))

    refused = whatsapp.send(REMINDER)  # the customer never wrote: WhatsApp takes no free text
    assert (refused.accepted, refused.error_code, refused.transient) == (False, "63016", False)
    sent = whatsapp.send(templated)
    assert sent.accepted
    request = fake_twilio.requests[-1]
    assert request["ContentSid"] == sid and "Body" not in request
    assert json.loads(request["ContentVariables"]) == {"1": "Ana", "2": "Tuesday at 9:30 — ¿vale?"}
    assert fake_twilio.whatsapp_texts(REMINDER.to) == ["Hi Ana, see you Tuesday at 9:30 — ¿vale?."]
    unknown = whatsapp.send(replace(REMINDER, content=Content("HX" + "0" * 32, {"1": "Ana"})))
    assert (unknown.accepted, unknown.error_code) == (False, "21655")
    assert sms(fake_twilio).send(templated).accepted  # SMS has no templates: the free text goes
    assert fake_twilio.requests[-1]["Body"] == REMINDER.body and "ContentSid" not in fake_twilio.requests[-1]

    fake_twilio.customer_wrote(REMINDER.to)  # now inside the window: free text goes
    assert whatsapp.send(REMINDER).accepted


def test_twilio_server_errors_and_rate_limits_are_transient(fake_twilio):
    fake_twilio.fail_next(status=500, code=20500, message="An internal server error has occurred")
    fake_twilio.fail_next(status=429, code=20429, message="Too Many Requests")
    channel = sms(fake_twilio)

    first, second, third = channel.send(REMINDER), channel.send(REMINDER), channel.send(REMINDER)

    assert (first.accepted, first.error_code, first.transient) == (False, "20500", True)
    assert (second.accepted, second.error_code, second.transient) == (False, "20429", True)
    assert third.accepted


def test_wrong_credentials_are_permanent(fake_twilio):
    channel = TwilioSmsChannel(twilio_client(fake_twilio.account_sid, "wrong", api_url=fake_twilio.url),
                               fake_twilio.sms_from)

    result = channel.send(REMINDER)

    assert (result.accepted, result.error_code, result.transient) == (False, "20003", False)


def test_twilio_unreachable_is_transient():
    client = twilio_client(FakeTwilio.account_sid, FakeTwilio.auth_token, api_url=f"http://127.0.0.1:{free_port()}")

    result = TwilioSmsChannel(client, FakeTwilio.sms_from).send(REMINDER)

    assert (result.accepted, result.status, result.error_code, result.transient) == (False, "failed", "network", True)


def test_twilio_timeout_is_transient(fake_twilio):
    fake_twilio.hang_next(seconds=0.5)

    result = sms(fake_twilio, timeout=0.2).send(REMINDER)

    assert (result.accepted, result.error_code, result.transient) == (False, "network", True)


def email_channel(server: FakeSmtpServer, **options) -> SmtpEmailChannel:
    return SmtpEmailChannel("127.0.0.1", server.port, "Nextslot <bookings@nextslot.test>", **options)


def test_email_is_received_with_subject_body_and_message_id(smtp_server):
    message = OutgoingMessage(to="ada@example.com", body="See you tomorrow at 10:00.", subject="Your appointment",
                              reference="notification-7-attempt-1")

    result = email_channel(smtp_server).send(message)

    assert result.accepted and result.status == "delivered" and result.error_code is None
    [received] = smtp_server.messages
    assert received["Subject"] == "Your appointment"
    assert received["To"] == "ada@example.com"
    assert received["From"] == "Nextslot <bookings@nextslot.test>"
    assert "".join(received["Message-ID"].split()) == result.provider_id  # long ids are folded in transit
    assert re.fullmatch(r"<.*notification-7-attempt-1@nextslot\.test>", result.provider_id)
    assert received["X-Nextslot-Reference"] == "notification-7-attempt-1"
    assert received.get_content().strip() == "See you tomorrow at 10:00."
    assert smtp_server.envelopes == [("bookings@nextslot.test", ["ada@example.com"])]


def test_email_logs_in_when_credentials_are_set(smtp_server):
    channel = email_channel(smtp_server, username=smtp_server.username, password=smtp_server.password)

    assert channel.send(REMINDER).accepted
    assert smtp_server.logins == [smtp_server.username]


def test_refused_login_is_permanent(smtp_server):
    result = email_channel(smtp_server, username=smtp_server.username, password="wrong").send(REMINDER)

    assert (result.accepted, result.error_code, result.transient) == (False, "535", False)


def test_unknown_mailbox_550_is_permanent(smtp_server):
    smtp_server.refuse_next(550, "5.1.1 No such user", at="RCPT")

    result = email_channel(smtp_server).send(REMINDER)

    assert (result.accepted, result.status, result.error_code, result.transient) == (False, "failed", "550", False)
    assert "No such user" in result.error_message
    assert smtp_server.messages == []


def test_greylisting_451_is_transient(smtp_server):
    smtp_server.refuse_next(451, "4.7.1 Try again later", at="DATA")

    result = email_channel(smtp_server).send(REMINDER)

    assert (result.accepted, result.error_code, result.transient) == (False, "451", True)
    assert email_channel(smtp_server).send(REMINDER).accepted


def test_smtp_connection_refused_is_transient():
    result = SmtpEmailChannel("127.0.0.1", free_port(), "bookings@nextslot.test").send(REMINDER)

    assert (result.accepted, result.error_code, result.transient) == (False, "network", True)


def test_silent_smtp_server_times_out_as_transient():
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts connections, never greets
        port = silent.getsockname()[1]
        result = SmtpEmailChannel("127.0.0.1", port, "bookings@nextslot.test", timeout=0.2).send(REMINDER)

    assert (result.accepted, result.error_code, result.transient) == (False, "network", True)


def test_build_channels_builds_only_configured_channels(fake_twilio, smtp_server):
    assert build_channels(Settings()) == {}
    assert set(build_channels(Settings(**smtp_server.settings()))) == {"email"}
    assert set(build_channels(Settings(**{**fake_twilio.settings(), "twilio_whatsapp_from": None}))) == {"sms"}
    assert set(build_channels(Settings(**{**fake_twilio.settings(), "twilio_auth_token": None}))) == set()
    everything = build_channels(Settings(**fake_twilio.settings(), **smtp_server.settings(),
                                         public_url="https://book.example.com/"))
    assert {name: channel.name for name, channel in everything.items()} == {
        "sms": "sms", "whatsapp": "whatsapp", "email": "email"}

    fake_twilio.customer_wrote(REMINDER.to)
    assert everything["whatsapp"].send(REMINDER).accepted
    assert everything["email"].send(REMINDER).accepted
    assert fake_twilio.requests[0]["StatusCallback"] == f"{CALLBACK}?ref=notification-7-attempt-1&channel=whatsapp"
    assert smtp_server.messages[0]["To"] == REMINDER.to
