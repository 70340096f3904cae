"""Making a message fit a text message: Twilio refuses a body over 1,600 characters (error 21617), and a refused SMS
would fall through to email, or reach no one. Templates are checked against the longest values when they are stored
(core/business/longest_values.py); a message that is too long anyway (an older template, a name of emoji, which SMS
sends in two places each) has its free-text values shortened, never its time, code or links."""
from __future__ import annotations

import logging

from nextslot.core.business.message_templates import render_text
from nextslot.core.sms_text import SMS_LIMIT, shortened, sms_length

log = logging.getLogger(__name__)
# names and other free text, which a customer still recognises shortened; everything else (the time, the code, the
# links, the amount) is what the message is for
FREE_TEXT = ("name", "customer", "business", "service", "staff", "account", "reason", "url")


def fits(text: str, limit: int = SMS_LIMIT) -> bool:
    return sms_length(text) <= limit


def fitted(template: str, values: dict[str, str], limit: int = SMS_LIMIT) -> str | None:
    """The template rendered within `limit`, its free-text values cut to the longest length that lets it fit; None
    if even the shortest do not (the template's own text is too long), or if it fails with them."""
    free = [key for key in FREE_TEXT if isinstance(values.get(key), str) and values[key]]
    best, low, high = None, 0, max((sms_length(values[key]) for key in free), default=0)
    try:
        while low <= high:  # a binary search for the longest cap: a dozen renderings of ~0.01 ms at most
            cap = (low + high) // 2
            text = render_text(template, {**values, **{key: shortened(values[key], cap) for key in free}})
            if fits(text, limit):
                best, low = text, cap + 1
            else:
                high = cap - 1
    except Exception:  # noqa: BLE001 - a template that fails on shortened values: ours is tried next
        return None
    return best
