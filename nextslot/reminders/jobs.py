"""Reading a claimed notification into what sending it needs: addressees in their order, the message in their
language, the .ics, and WhatsApp's rule (free text within its window, else the approved template)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from nextslot.calendars.feeds import booking_ics
from nextslot.core.clock import Clock
from nextslot.core.customers.replies import opted_out_by_number
from nextslot.core.lent import lent
from nextslot.core.links import Links
from nextslot.core.money import money
from nextslot.core.views import booking_zone, resources_zone
from nextslot.reminders.business_notices import (
    NOTICE_CHANNELS,
    TO_BUSINESS,
    business_addresses,
    notice_values,
)
from nextslot.reminders.channels.base import Channel, Content
from nextslot.reminders.templates import plain_values, render, spoken_when
from nextslot.reminders.whatsapp_window import OUTSIDE, approved_content, window_open
from nextslot.schemas.spoken import language_of
from nextslot.schemas.statuses import BookingStatus
from nextslot.storage.tables import (
    Booking,
    Business,
    Customer,
    DeliveryAttempt,
    Notification,
    Payment,
    Resource,
    WaitlistOffer,
)
from nextslot.telemetry import metrics

CALENDAR_KINDS = ("confirmation", "rescheduled", "cancelled")  # customer messages that carry the .ics
ABOUT_ITS_TIME = ("confirmation", "reminder", "rescheduled")  # messages that ask the customer to come at a time
CONVERSATION_REPLY = "conversation_reply"  # written by nextslot.conversations.engine


@dataclass(frozen=True)
class Job:
    """What sending one claimed notification needs, read while it was claimed."""

    id: int
    lease: datetime
    kind: str
    recipients: dict[str, str]  # channel -> address, in the addressee's order, reachable ones only
    subject: str
    body: str
    calendar: bytes | None = None
    content: Content | None = None  # WhatsApp outside its window: the approved template sent instead of the body
    request_id: str | None = None  # the request that wrote the row: bound while it is sent
    sender: tuple[str, str] | None = None  # (channel, number): a chat reply goes out from the number written to
    text: str | None = None  # the body for SMS and WhatsApp when `body` is longer than Twilio takes (None: `body`)
    retried: bool = False  # claimed before: its sender may have died after the provider took it


class JobReader:
    def __init__(self, channels: dict[str, Channel], clock: Clock, links: Links | None):
        self._channels = channels
        self._clock = clock
        self._links = links  # customers' manage and pay links in messages; None: messages carry none

    @staticmethod
    def load(s: Session, ids: list[int]) -> list[Any]:
        if not ids:
            return []
        return list(s.execute(
            select(Notification, Customer, Resource, Booking, Business)
            .outerjoin(Customer, Customer.id == Notification.customer_id)
            .outerjoin(Resource, Resource.id == Notification.resource_id)
            .outerjoin(Booking, Booking.id == Notification.booking_id)  # none for a waitlist offer
            .join(Business, Business.id == Notification.business_id)
            .where(Notification.id.in_(ids), or_(Customer.id.is_not(None), Resource.id.is_not(None),
                                                 Notification.kind.startswith(TO_BUSINESS, autoescape=True),
                                                 Notification.kind == CONVERSATION_REPLY))
            .order_by(Notification.due_at, Notification.id)  # a conversation's replies go out in order
        ))

    def job(self, s: Session, row: Any, lease: datetime) -> Job:
        n, customer, staff, booking, business = row
        if n.kind == CONVERSATION_REPLY:  # a chat answer: its text as written, on the conversation's channel first
            recipients = reply_recipients(n, customer, self._channels, opted_out_by_number(lent(s), n.payload["to"]))
            self._within_whatsapp_window(s, n, recipients, None)  # free text only: no template says it
            sender = (n.payload["channel"], n.payload["from"]) if n.payload.get("from") else None
            return Job(n.id, lease, n.kind, recipients, n.payload.get("subject", ""), n.payload["text"],
                       request_id=n.request_id, sender=sender, retried=n.attempts > 1)
        to_business = n.kind.startswith(TO_BUSINESS)
        if to_business:  # a notice to the business itself, about its own set-up
            zone, language = ZoneInfo(business.timezone), "en"
            addresses, preferred, opted_out = business_addresses(business), NOTICE_CHANNELS, []
        elif staff is not None:  # a message to the staff member, in the business's language and their own zone
            zone, language = ZoneInfo(staff.own_timezone or business.timezone), "en"
            addresses = {"email": staff.email, "sms": staff.phone}
            name, preferred, opted_out = staff.name, ["email", "sms"], []
        else:
            zone = ZoneInfo(customer.timezone) if customer.timezone else place_zone(s, n, booking, business)
            language = language_of(customer.language)  # 'es-MX' is Spanish, as the tools read it
            addresses = {"whatsapp": customer.phone, "sms": customer.phone, "email": customer.email}
            name, preferred = customer.name or "there", customer.channels
            opted_out = [*customer.opted_out, *opted_out_by_number(lent(s), customer.phone)]
        if to_business:
            values = notice_values(n.payload, business, zone)
        elif booking is None:  # a waitlist offer: a time, not yet a booking
            offer_expires = datetime.fromisoformat(n.payload["expires_at"])
            values = {"name": name, "business": business.name, "service": n.payload["service"],
                      "when": spoken_when(datetime.fromisoformat(n.payload["starts_at"]), zone, language),
                      "minutes": str(minutes_left(n.payload["minutes"], offer_expires, self._clock())),
                      "party": str(n.payload.get("party_size", 1)),
                      # the link outlives the offer by a day: a late tap gets the openings, not a dead page
                      "offer_url": self._links.offer_url(n.business_id, n.offer_id, offer_expires + timedelta(days=1))
                      if self._links and n.offer_id else ""}
        else:
            previous = n.payload.get("previous_starts_at")
            values = {
                "name": name, "business": business.name, "service": booking.service.name, "code": booking.code,
                "customer": booking.customer.name, "when": spoken_when(booking.starts_at, zone, language),
                "previous_when": spoken_when(datetime.fromisoformat(previous), zone, language) if previous else "",
                **self._link_values(s, n.kind, booking, zone, language),
            }
        values = plain_values(values)  # for the template and WhatsApp's approved one alike
        message = render(n.kind, language, values, (business.details or {}).get("templates"), business.id)
        recipients = {c: addresses[c] for c in preferred
                      if c in self._channels and addresses.get(c) and c not in n.gave_up_on and c not in opted_out}
        ics = booking_ics(s, business, booking, self._clock()) \
            if booking and n.kind in CALENDAR_KINDS and "email" in recipients else None  # only emails attach it
        content = None if to_business or staff is not None else self._within_whatsapp_window(
            s, n, recipients, approved_content(business.details or {}, language, n.kind, values))
        return Job(n.id, lease, n.kind, recipients, message.subject, message.body, ics, content, n.request_id,
                   text=message.text if message.text != message.body else None, retried=n.attempts > 1)

    def _within_whatsapp_window(self, s: Session, n: Notification, recipients: dict[str, str],
                                template: Content | None) -> Content | None:
        """WhatsApp's rule: free text within its window of the customer's last message, else the approved template;
        with none, WhatsApp is skipped for the next channel and the reason stored as an attempt. Return the
        template to send on WhatsApp (None: the free text)."""
        channel = self._channels.get("whatsapp")
        window = getattr(channel, "session_window", None)
        if "whatsapp" not in recipients or window is None:
            return None
        now = self._clock()
        sender = (n.payload.get("from") if n.kind == CONVERSATION_REPLY and n.payload.get("channel") == "whatsapp"
                  else None) or getattr(channel, "from_number", "")  # the number it will go out from
        if window_open(s, n.business_id, recipients["whatsapp"], sender, now, window):
            return None
        if template is not None:
            return template
        why = (f"outside WhatsApp's {window.total_seconds() / 3600:g}-hour window of the customer's last message, "
               f"and no approved template for {n.kind}" + ("" if n.kind == CONVERSATION_REPLY else " in their language"))
        s.add(DeliveryAttempt(business_id=n.business_id, notification_id=n.id, channel="whatsapp",
                              recipient=recipients.pop("whatsapp"), provider_id=None, status="skipped",
                              error_code=OUTSIDE, error_message=why, created_at=now, updated_at=now,
                              history=[{"status": "skipped", "at": now.isoformat(), "error_code": OUTSIDE}]))
        n.gave_up_on, n.last_error = [*n.gave_up_on, "whatsapp"], f"whatsapp: {why}"
        metrics.DELIVERIES.labels("whatsapp", "skipped_outside_window").inc()
        metrics.FALLBACKS.labels("whatsapp").inc()
        return None

    def _link_values(self, s: Session, kind: str, booking: Booking, zone: ZoneInfo, language: str) -> dict[str, str]:
        values = {"manage_url": "", "calendar_url": "", "pay_url": "", "deposit": "", "pay_by": ""}
        if self._links is None or kind.startswith("staff_"):
            return values
        # her pages open in her language: they never take it from her record, which a stranger's link would show
        hers = language if language != "en" else None  # English is the record's default: the browser decides
        values["manage_url"] = self._links.manage_url(booking.business_id, booking.code, booking.starts_at, hers)
        values["calendar_url"] = self._links.calendar_url(booking.business_id, booking.code, booking.starts_at)
        if kind == "deposit_requested":
            payment = s.scalars(select(Payment).where(Payment.booking_id == booking.id)).one()
            values["pay_url"] = self._links.pay_url(booking.business_id, booking.code, payment.expires_at, hers)
            values["deposit"] = money(payment.amount_minor, payment.currency).display
            values["pay_by"] = spoken_when(payment.expires_at, zone, language)
        return values


def out_of_date(s: Session, n: Notification, booking: Booking | None, now: datetime) -> bool:
    """Whether a message asking the customer to come is about a time the booking no longer has (cancelled, expired
    or moved since it was written), or offers a time that is no longer on offer (answered, or lapsed). A move or
    cancel voids pending ones; this catches one already sent whose receipt never came, which would otherwise go
    out again on the next channel."""
    if n.kind == "waitlist_offer" and n.offer_id is not None:
        offer = s.get(WaitlistOffer, n.offer_id)
        return offer is not None and (offer.status != "open" or offer.expires_at <= now)
    if booking is None or n.kind not in ABOUT_ITS_TIME or n.booking_id is None:
        return False
    if booking.status in (BookingStatus.CANCELLED, BookingStatus.EXPIRED):
        return True
    written_for = n.payload.get("starts_at")
    return written_for is not None and datetime.fromisoformat(written_for) != booking.starts_at


def overtaken(s: Session, n: Notification, now: datetime) -> bool:
    """Whether a later reminder of the same booking is due too (the scheduler was down): that one alone goes out,
    not the same reminder twice in one minute."""
    return n.kind == "reminder" and s.scalar(select(Notification.id).where(
        Notification.booking_id == n.booking_id, Notification.kind == "reminder", Notification.id != n.id,
        Notification.due_at > n.due_at, Notification.due_at <= now,
        Notification.status.not_in(("void", "failed"))).limit(1)) is not None


def minutes_left(minutes: int, expires_at: datetime, now: datetime) -> int:
    """The offer's minutes still to run: a second try on another channel does not promise the first's again."""
    return max(1, min(minutes, math.ceil((expires_at - now).total_seconds() / 60)))


def place_zone(s: Session, n: Notification, booking: Booking | None, business: Business) -> ZoneInfo:
    """Where the booking (or the offered time) is: its branch's zone, which a customer with no zone of their own
    reads its time in (a Los Angeles branch's 9 am, not New York's 12 pm)."""
    zone = ZoneInfo(business.timezone)
    if booking is not None:
        return booking_zone(lent(s), booking.id, zone)
    offer = s.get(WaitlistOffer, n.offer_id) if n.offer_id is not None else None
    return resources_zone(lent(s), offer.resource_ids or (), zone) if offer is not None else zone


def reply_recipients(n: Notification, customer: Customer | None, channels: dict[str, Channel],
                     number_opted_out: list[str]) -> dict[str, str]:
    """A conversation's reply goes back where the customer wrote; a failed WhatsApp message falls back to SMS
    (the same number), an email to nothing else (an address is no number to text)."""
    first = n.payload["channel"]
    opted_out = [*(customer.opted_out if customer is not None else []), *number_opted_out]
    order = (first, "sms") if first == "whatsapp" else (first,)
    return {c: n.payload["to"] for c in order if c in channels and c not in n.gave_up_on and c not in opted_out}


