"""How long a text message is as SMS carries it, and how to make one fit Twilio's limit.

SMS has two alphabets: GSM-7 (160 characters in one segment, 153 in each part of a longer one; the extension
characters such as €, [ and { take two places) and UCS-2, used for the whole message as soon as one character is
outside GSM-7 (an emoji, a curly quote, 'ó'): 70 in one segment, 67 in each part, and a character outside the
Basic Multilingual Plane (most emoji) takes two places. Each segment is billed. Twilio refuses a body over 1,600
characters (error 21617), counting such characters as more than one, so lengths here are counted in the places
the alphabet spends: septets for GSM-7, UTF-16 code units for UCS-2.
"""
from __future__ import annotations

import gsm0338  # noqa: F401 - registers the 'gsm03.38' codec

SMS_LIMIT = 1600  # Twilio's limit on a message body, on every channel (SMS and WhatsApp)
ELLIPSIS = "..."  # three dots, not '…': that one is not GSM-7 and would make the whole message UCS-2
SEGMENT = {"GSM-7": (160, 153), "UCS-2": (70, 67)}  # places in a lone segment, and in each part of a long one


def alphabet(text: str) -> str:
    """'GSM-7' if every character has a place in the GSM 03.38 alphabet (with its extension), else 'UCS-2'."""
    try:
        text.encode("gsm03.38")
    except UnicodeEncodeError:
        return "UCS-2"
    return "GSM-7"


def places(char: str, alphabet_name: str) -> int:
    """The places one character takes: two for a GSM-7 extension character or a UCS-2 surrogate pair."""
    if alphabet_name == "GSM-7":
        return len(char.encode("gsm03.38"))
    return len(char.encode("utf-16-le")) // 2


def sms_length(text: str) -> int:
    """The message's length in the places its alphabet spends (what Twilio's 1,600 limit is measured in)."""
    name = alphabet(text)
    return len(text.encode("gsm03.38")) if name == "GSM-7" else len(text.encode("utf-16-le")) // 2


def sms_segments(text: str) -> int:
    """The segments the message is sent (and billed) as: a character is never split across two of them."""
    name = alphabet(text)
    alone, part = SEGMENT[name]
    if sms_length(text) <= alone:
        return 1
    count, used = 1, 0
    for char in text:
        size = places(char, name)
        if used + size > part:
            count, used = count + 1, 0
        used += size
    return count


def shortened(text: str, length: int) -> str:
    """The text cut to at most `length` places, ending in '...' when it was cut."""
    if sms_length(text) <= length:
        return text
    if length <= len(ELLIPSIS):
        return ""
    cut = text
    while cut and sms_length(cut.rstrip() + ELLIPSIS) > length:
        over = sms_length(cut.rstrip() + ELLIPSIS) - length
        cut = cut[:len(cut) - max(1, over // 2)]  # a character takes at most two places: never cuts too much
    return cut.rstrip() + ELLIPSIS if cut else ""
