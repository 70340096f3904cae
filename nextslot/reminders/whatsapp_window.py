"""WhatsApp's customer service window: for 24 hours after a customer's last message to one of our numbers, that
number may write to them freely; outside it WhatsApp refuses free-form text (Twilio error 63016) and takes only an
approved template. We track the window per customer, business and number from the inbound webhook, send a business's approved template (Twilio's
Content API: a content SID and its variables) outside it, and without one skip WhatsApp for the next channel."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from nextslot.conversations.intake import Incoming, business_for
from nextslot.reminders.channels.base import Content
from nextslot.storage.tables import Business, Customer, WhatsAppWindow

WINDOW = timedelta(hours=24)
# a message must reach WhatsApp while the window is still open: near its end, use the template
MARGIN = timedelta(minutes=5)
OUTSIDE = "outside_window"  # the error code of a WhatsApp attempt skipped for want of a template


def record_inbound(s: Session, phone: str, to: str | None, now: datetime, idle: timedelta) -> list[int]:
    """Open (or extend) the window of every business this message reaches: the one whose number it was written to,
    else each business the number is a customer of, and the one a conversation would be with. Return their ids."""
    owner = s.scalars(select(Business.id).where(Business.details.contains({"conversations": {"numbers": [to]}}))
                      .order_by(Business.id)).first() if to else None
    if owner is not None:
        businesses = {owner}
    else:
        businesses = set(s.scalars(select(Customer.business_id).where(Customer.phone == phone)))
        if (talking := business_for(s, Incoming("whatsapp", phone, "", to=to), now, idle)) is not None:
            businesses.add(talking)
    for business_id in sorted(businesses):  # in id order: two webhooks at once never wait on each other in a cycle
        statement = insert(WhatsAppWindow).values(business_id=business_id, phone=phone, number=to or "",
                                                  last_inbound_at=now)
        s.execute(statement.on_conflict_do_update(
            index_elements=["business_id", "phone", "number"],
            set_={"last_inbound_at": func.greatest(WhatsAppWindow.last_inbound_at, statement.excluded.last_inbound_at)}))
    return sorted(businesses)


def window_open(s: Session, business_id: int, phone: str, number: str, now: datetime,
                length: timedelta = WINDOW) -> bool:
    """Whether the customer wrote to this business's `number` on WhatsApp recently enough for free text from it to
    reach them (a message whose number Twilio did not say counts for any)."""
    last = s.scalar(select(func.max(WhatsAppWindow.last_inbound_at)).where(
        WhatsAppWindow.business_id == business_id, WhatsAppWindow.phone == phone,
        WhatsAppWindow.number.in_((number.removeprefix("whatsapp:"), ""))))
    return last is not None and now < last + length - MARGIN


def approved_content(details: dict[str, Any], language: str, kind: str, values: dict[str, str]) -> Content | None:
    """The business's approved template for this kind of message in this language, filled in; None: it has none
    (then WhatsApp cannot carry the message outside the window). Config checks made the shape right."""
    template = (((details or {}).get("whatsapp_templates") or {}).get(language) or {}).get(kind)
    if not template:
        return None
    names = template.get("variables") or []
    return Content(template["content_sid"], {str(i): one_line(values.get(name, "")) for i, name in
                                             enumerate(names, start=1)})


def one_line(value: str | None) -> str:
    """A template value WhatsApp takes: it refuses a parameter with a line break, a tab or more than four spaces in
    a row (Meta's error 132018, the message failed after Twilio took it), or an empty one."""
    return " ".join((value or "").split()) or "-"
