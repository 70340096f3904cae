"""Delivery with real parts: the twilio library against a fake Twilio API, a real SMTP server, Twilio's
signed status callbacks posted to the running server, and two scheduler processes on one database."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import httpx2
from icalendar import Calendar
from sqlalchemy import func, insert, select
from twilio.request_validator import RequestValidator

from nextslot.reminders.channels import build_channels
from nextslot.reminders.dispatcher import Dispatcher
from nextslot.schemas.commands import BookingCreate, CustomerIn
from nextslot.settings import Settings
from nextslot.storage.tables import Booking, DeliveryAttempt, Notification
from tests.reminders.conftest import whatsapp_window

PUBLIC_URL = "https://book.example.com"  # what Twilio calls; the test server sits behind it, as behind a proxy


def settings_for(fake_twilio, smtp_server, **more) -> Settings:
    return Settings(public_url=PUBLIC_URL, **fake_twilio.settings(), **smtp_server.settings(), **more)


def book(service, business: int, start: datetime, phone: str = "+447911123456") -> Booking:
    result = service.book(business, BookingCreate(
        service="consultation", starts_at=start,
        customer=CustomerIn(name="Ann Lee", phone=phone, email="ann@example.com")))
    return result.booking


def post_status(server_url: str, auth_token: str, form: dict[str, str], signed: bool = True) -> httpx2.Response:
    url = f"{PUBLIC_URL}/webhooks/twilio/status"
    headers = {"X-Twilio-Signature": RequestValidator(auth_token).compute_signature(url, form)} if signed else {}
    return httpx2.post(f"{server_url}/webhooks/twilio/status", data=form, headers=headers)


def test_whatsapp_refused_then_sms_undelivered_then_email_each_attempt_logged(
        service, make_business, session_factory, clock, fake_twilio, smtp_server, live_server):
    settings = settings_for(fake_twilio, smtp_server)
    channels = build_channels(settings)
    assert set(channels) == {"whatsapp", "sms", "email"}
    dispatcher = Dispatcher(session_factory, channels, clock=clock)
    clinic = make_business("clinic")
    booking = book(service, clinic, datetime(2026, 11, 24, 9, tzinfo=UTC))
    whatsapp_window(session_factory, clinic, "+447911123456", clock())  # free text may go: WhatsApp is tried
    fake_twilio.customer_wrote("+447911123456")
    fake_twilio.fail_whatsapp(code=63003, message="Channel could not find To address")  # not on WhatsApp

    dispatcher.dispatch_due()
    whatsapp, sms = fake_twilio.requests
    assert whatsapp["To"] == "whatsapp:+447911123456" and sms["To"] == "+447911123456"
    assert sms["StatusCallback"].startswith(f"{PUBLIC_URL}/webhooks/twilio/status?ref=notification-")
    assert sms["StatusCallback"].endswith("&channel=sms") and booking.code in sms["Body"]
    with session_factory() as s:
        sid = s.scalars(select(DeliveryAttempt.provider_id).where(DeliveryAttempt.channel == "sms",
                                                                  DeliveryAttempt.provider_id.is_not(None))
                        .order_by(DeliveryAttempt.id.desc())).first()

    with live_server(frozen=True, settings=settings) as server:
        form = {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "30003"}
        assert post_status(server.url, fake_twilio.auth_token, form, signed=False).status_code == 403
        assert post_status(server.url, "not-the-token", form).status_code == 403
        for _ in range(2):  # Twilio can repeat a callback: the second changes nothing
            assert post_status(server.url, fake_twilio.auth_token, form).status_code == 204
        assert post_status(server.url, fake_twilio.auth_token, {"MessageStatus": "sent"}).status_code == 400

    dispatcher.dispatch_due()
    [email] = smtp_server.messages
    assert email["To"] == "ann@example.com" and booking.code in email.get_body(("plain",)).get_content()
    [ics] = [part for part in email.iter_attachments() if part.get_content_type() == "text/calendar"]
    [event] = Calendar.from_ical(ics.get_payload(decode=True)).walk("VEVENT")
    assert event.decoded("dtstart") == booking.starts_at.utc and booking.code in str(event["description"])
    with session_factory() as s:
        notification = s.scalars(select(Notification).where(Notification.booking_id == booking.id,
                                                            Notification.kind == "confirmation")).one()
        tried = s.scalars(select(DeliveryAttempt).where(DeliveryAttempt.notification_id == notification.id)
                          .order_by(DeliveryAttempt.id)).all()
    assert notification.status == "delivered" and notification.gave_up_on == ["whatsapp", "sms"]
    assert [(a.channel, a.status, a.error_code) for a in tried] == [
        ("whatsapp", "failed", "63003"), ("sms", "undelivered", "30003"), ("email", "delivered", None)]
    assert [h["status"] for h in tried[1].history] == ["queued", "undelivered"]


def test_two_scheduler_processes_send_a_thousand_due_messages_exactly_once(
        service, make_business, session_factory, database_url, fake_twilio, smtp_server, tmp_path):
    clinic = make_business("clinic")
    booking = book(service, clinic, datetime(2026, 11, 24, 10, tzinfo=UTC), phone="+447911123499")
    now = datetime.now(UTC)
    whatsapp_window(session_factory, clinic, "+447911123499", now)  # the customer just wrote: free text on WhatsApp
    fake_twilio.customer_wrote("+447911123499")
    with session_factory() as s:
        s.execute(insert(Notification), [
            {"business_id": clinic, "booking_id": booking.id, "customer_id": booking.customer.id, "kind": "confirmation",
             "due_at": now - timedelta(seconds=1), "status": "pending", "attempts": 0, "payload": {}}
            for _ in range(1000)])
        s.commit()
    env = {**os.environ, "NEXTSLOT_DATABASE_URL": database_url, "NEXTSLOT_DISPATCH_INTERVAL_SECONDS": "0.2",
           **{f"NEXTSLOT_{k.upper()}": str(v) for k, v in {**fake_twilio.settings(), **smtp_server.settings()}.items()}}
    logs = [tmp_path / f"scheduler-{i}.log" for i in range(2)]
    schedulers = [subprocess.Popen([sys.executable, "-m", "nextslot.cli", "scheduler"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=log.open("w")) for log in logs]
    try:
        deadline = time.monotonic() + 90  # correctness, not speed: `nextslot bench` measures speed
        while time.monotonic() < deadline:
            with session_factory() as s:
                left = s.scalar(select(func.count()).select_from(Notification).where(
                    Notification.business_id == clinic, Notification.status.in_(("pending", "sending"))))
            if left == 0:
                break
            time.sleep(0.2)
    finally:
        for p in schedulers:  # stop both before waiting: a survivor would take later tests' messages
            p.terminate()
        for p in schedulers:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    logs = [log.read_text() for log in logs]
    assert left == 0, logs
    with session_factory() as s:
        total = s.scalar(select(func.count()).select_from(Notification).where(
            Notification.business_id == clinic, Notification.status != "void"))  # late reminders are dropped
        per_notification = s.execute(
            select(DeliveryAttempt.notification_id, func.count()).join(Notification).where(
                Notification.business_id == clinic).group_by(DeliveryAttempt.notification_id)).all()
    assert total == 1001  # ours and the booking's own confirmation
    assert len(per_notification) == total and {n for _, n in per_notification} == {1}
    whatsapp = [r for r in fake_twilio.requests if r["To"] == "whatsapp:+447911123499"]
    assert len(whatsapp) == total
    assert all("scheduler started" in log for log in logs)  # both really ran
