"""Twilio refuses a message body over 1,600 characters (21617), and a refused SMS falls through to email, or reaches
no one. A business's template that could make one that long is refused when the config is stored; a message that is
too long anyway (an older template, names of emoji) goes by SMS with its names shortened, its time, code and links
whole. The real `twilio` client against the fake Twilio API, which refuses a long body like Twilio does."""
from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from nextslot.core.business.config import apply_config
from nextslot.core.business.longest_values import has_bound, longest_values, longest_when
from nextslot.core.business.message_templates import SAMPLES, template_problem
from nextslot.core.links import Links
from nextslot.core.results import Rejected
from nextslot.core.sms_text import SMS_LIMIT, alphabet, sms_length, sms_segments
from nextslot.reminders.channels import TwilioSmsChannel, build_channels
from nextslot.reminders.channels.base import OutgoingMessage
from nextslot.reminders.dispatcher import Dispatcher
from nextslot.reminders.templates import DEFAULTS, render, spoken_when
from nextslot.schemas.commands import BookingCreate, CustomerIn
from nextslot.schemas.config import BusinessConfig
from nextslot.settings import Settings
from nextslot.storage.tables import Business, DeliveryAttempt, Notification
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.conftest import example

PUBLIC_URL = "https://book.example.com"
SECRET = "sms-length-test-secret"
TUESDAY_9 = datetime(2026, 11, 24, 9, tzinfo=UTC)
README = Path(__file__).resolve().parents[2] / "README.md"
CUSTOMER_KINDS = ("confirmation", "reminder", "rescheduled", "cancelled", "waitlist_offer", "deposit_requested")


@pytest.fixture
def wired(fake_twilio, smtp_server, session_factory, clock):
    """A dispatcher sending SMS and WhatsApp through the real twilio client to the fake, and email to a real SMTP
    server, with manage links."""
    settings = Settings(public_url=PUBLIC_URL, **fake_twilio.settings(), **smtp_server.settings())
    return Dispatcher(session_factory, build_channels(settings), clock=clock, links=Links(SECRET, PUBLIC_URL))


def book(service, business: int, name: str, phone: str):
    result = service.book(business, BookingCreate(service="consultation", starts_at=TUESDAY_9, customer=CustomerIn(
        name=name, phone=phone, email="ann@example.com", channels=["sms", "email"])))
    assert hasattr(result, "booking"), result
    return result.booking


def smuggle_templates(session_factory, business: int, templates: dict) -> None:
    """Store templates past every check, as a row written before templates were checked would hold them."""
    with session_factory() as s:
        row = s.get(Business, business)
        row.details = {**row.details, "templates": templates}
        s.commit()


def tries(session_factory, business: int) -> list[tuple[str, str, str | None]]:
    with session_factory() as s:
        return [tuple(r) for r in s.execute(
            select(DeliveryAttempt.channel, DeliveryAttempt.status, DeliveryAttempt.error_code)
            .join(Notification, Notification.id == DeliveryAttempt.notification_id)
            .where(Notification.business_id == business, Notification.kind == "confirmation")
            .order_by(DeliveryAttempt.id))]


def manage_url(business: int, booking) -> str:
    return Links(SECRET, PUBLIC_URL).manage_url(business, booking.code, booking.starts_at.utc)


# --- at config time ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("language", sorted(DEFAULTS))
def test_our_own_templates_fit_a_text_message_with_the_longest_values_in_every_language(language):
    for kind in SAMPLES:
        if not has_bound(kind):
            continue
        template = DEFAULTS[language].get(kind) or DEFAULTS["en"][kind]
        assert template_problem(kind, template, language) is None, (language, kind)


def test_the_longest_time_allowed_for_is_as_long_as_any_time_a_message_says():
    """Every day of seven years (every weekday falls on every date), and the repeated hour of fall-back nights."""
    zone = ZoneInfo("Europe/Berlin")
    days = [datetime(2026, 1, 1, 11, 30, tzinfo=UTC) + timedelta(days=n) for n in range(7 * 366)]
    repeated = [datetime(2026, 10, 25, 0, 30, tzinfo=UTC), datetime(2026, 10, 25, 1, 30, tzinfo=UTC)]
    for language in DEFAULTS:
        said = max((spoken_when(at, zone, language) for at in days + repeated), key=len)
        assert len(said) <= len(longest_when(language)), (said, longest_when(language))


def clinic_with(templates: dict) -> BusinessConfig:
    config = example("clinic")
    config["business"]["slug"] = f"sms-length-{uuid.uuid4().hex[:8]}"
    config["business"]["details"] = {"templates": templates}
    return BusinessConfig.model_validate(config)


def test_a_template_that_could_make_a_text_longer_than_twilio_takes_is_refused_by_name_and_nothing_stored(
        session_factory):
    # fine with the sample values ('Check-up'), 8 x 200 characters with the longest service name
    wordy = "Votre rendez-vous : " + " / ".join(["{{ service }}"] * 8) + ", le {{ when }}."
    config = clinic_with({"en": {"reminder": "See you {{ when }}"}, "fr": {"confirmation": wordy}})
    refused = apply_config(SqlAlchemyUnitOfWork(session_factory), config)

    assert isinstance(refused, Rejected) and refused.code == "invalid_config"
    assert refused.field == "business.details.templates.fr.confirmation"
    [(field, why)] = refused.problems
    assert field == "business.details.templates.fr.confirmation"
    assert "1600" in why and "Twilio" in why and "{{" not in why  # says why, quotes nothing of the template
    with session_factory() as s:
        assert s.scalar(select(Business.id).where(Business.slug == config.business.slug)) is None


def test_a_template_within_the_limit_with_the_longest_values_is_taken(session_factory):
    six = "Hi " + " ".join(["{{ name }}"] * 6) + ": {{ when }}, {{ manage_url }}"
    taken = apply_config(SqlAlchemyUnitOfWork(session_factory), clinic_with({"de": {"confirmation": six}}))
    assert not isinstance(taken, Rejected), taken


def test_the_console_check_of_a_template_says_the_same():
    assert template_problem("waitlist_offer", "{{ name }} " * 9) is not None
    assert template_problem("waitlist_offer", "{{ name }} " * 7) is None


# --- at send time -----------------------------------------------------------------------------------------------

def test_an_older_template_too_long_for_sms_goes_by_sms_with_its_names_shortened_and_time_code_and_link_whole(
        service, make_business, session_factory, wired, fake_twilio, smtp_server):
    business = make_business("clinic")
    smuggle_templates(session_factory, business, {"en": {"confirmation": (
        "Dear " + " and ".join(["{{ name }}"] * 8) + ", {{ service }} is on {{ when }} (code {{ code }}). "
        "Manage it here: {{ manage_url }}")}})
    name = "Annabel " + "Lee-" * 48  # 200 characters: 8 times it is longer than Twilio takes
    booking = book(service, business, name, "+447911123701")

    wired.dispatch_due()

    [sms] = fake_twilio.requests
    body = sms["Body"]
    assert sms["To"] == "+447911123701" and sms_length(body) <= SMS_LIMIT
    assert body.startswith("Dear Annabel Lee-") and "..." in body and name not in body  # shortened, recognisably
    assert "on Tuesday 24 November at 9 am (code " + booking.code + ")." in body
    assert body.endswith("Manage it here: " + manage_url(business, booking))
    assert smtp_server.messages == []  # it did not fall through to email
    assert tries(session_factory, business) == [("sms", "queued", None)]


def test_a_customer_named_in_emoji_gets_our_confirmation_by_sms_not_by_email(
        service, make_business, session_factory, fake_twilio, smtp_server, clock):
    """An emoji takes two places in UCS-2: with 200 of them in each name (the most a name has) and links on a long
    public URL (the most the config check allows for), our own template is longer than Twilio takes."""
    public_url = "https://appointments.riverside-community-health-centre.example.co.uk/south-east-london/bookings"
    links = Links(SECRET, public_url)
    settings = Settings(public_url=public_url, **fake_twilio.settings(), **smtp_server.settings())
    dispatcher = Dispatcher(session_factory, build_channels(settings), clock=clock, links=links)
    config = example("clinic")
    config["services"][0]["name"] = "\N{TOOTH}" * 200
    business = make_business(config, name="\N{HOSPITAL}" * 200)
    name = "\N{SMILING FACE WITH SMILING EYES}" * 200
    booking = book(service, business, name, "+447911123702")
    link = links.manage_url(business, booking.code, booking.starts_at.utc)
    full = render("confirmation", "en", {
        "name": name, "service": "\N{TOOTH}" * 200, "business": "\N{HOSPITAL}" * 200, "code": booking.code,
        "when": "Tuesday 24 November at 9 am", "manage_url": link,
        "calendar_url": links.calendar_url(business, booking.code, booking.starts_at.utc)}).body
    assert sms_length(full) > SMS_LIMIT  # as it would have gone, and been refused with 21617

    dispatcher.dispatch_due()

    [sms] = fake_twilio.requests
    body = sms["Body"]
    assert sms_length(body) <= SMS_LIMIT and alphabet(body) == "UCS-2"
    assert "Tuesday 24 November at 9 am" in body and booking.code in body and link in body
    assert smtp_server.messages == []
    assert tries(session_factory, business) == [("sms", "queued", None)]


def test_the_email_keeps_the_whole_message_when_the_text_message_is_shortened(
        service, make_business, session_factory, wired, fake_twilio, smtp_server):
    business = make_business("clinic")
    smuggle_templates(session_factory, business, {"en": {"confirmation": " / ".join(["{{ name }}"] * 9)}})
    name = "Beatrix " + "Kiddo-" * 32
    # SMS refuses for another reason: the message goes on by email, whole
    fake_twilio.fail_next(to="+447911123703", code=21610, message="Attempt to send to unsubscribed recipient")
    book(service, business, name, "+447911123703")

    wired.dispatch_due()

    [sms] = fake_twilio.requests
    assert sms_length(sms["Body"]) <= SMS_LIMIT and name not in sms["Body"]
    [email] = smtp_server.messages
    assert email.get_body().get_content().strip() == " / ".join([name] * 9)


def test_the_sms_channel_never_hands_twilio_a_body_over_the_limit(fake_twilio):
    """The last guard, for a text with no names to shorten (a chat reply): cut at the limit, not refused."""
    channel = TwilioSmsChannel(fake_twilio.client(), fake_twilio.sms_from)
    long_text = "Your answer: " + "\N{WHITE HEAVY CHECK MARK} fine. " * 200

    result = channel.send(OutgoingMessage("+447911123704", long_text, "", "notification-test"))

    assert result.accepted, result
    [sent] = fake_twilio.requests
    assert sms_length(sent["Body"]) <= SMS_LIMIT and sent["Body"].endswith("...")
    assert long_text.startswith(sent["Body"].removesuffix("...").rstrip())


# --- segments: what our own templates cost ------------------------------------------------------------------------

def typical_values(kind: str, language: str) -> dict[str, str]:
    """An ordinary booking: a short name, a real business and service, links with this public URL."""
    links, code, ends = Links(SECRET, PUBLIC_URL), "K7M4PX", datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    when = spoken_when(ends, ZoneInfo("Europe/London"), language)
    hers = language if language != "en" else None  # her pages' links carry her language, as the dispatcher's do
    return {"name": "Ana Ruiz", "business": "Riverside Clinic", "service": "GP consultation", "code": code,
            "customer": "Ana Ruiz", "when": when, "previous_when": when, "minutes": "15", "party": "1",
            "manage_url": links.manage_url(4242, code, ends, hers), "calendar_url": links.calendar_url(4242, code, ends),
            "pay_url": links.pay_url(4242, code, ends, hers), "deposit": "£15.00", "pay_by": when,
            "offer_url": links.offer_url(4242, 123456, ends)}


def measured() -> dict[str, dict[str, str]]:
    """kind -> language -> 'segments (alphabet)', with typical values."""
    return {kind: {language: f"{sms_segments(text)} ({alphabet(text)})"
                   for language in ("en", "es", "fr", "de")
                   for text in [render(kind, language, typical_values(kind, language)).body]}
            for kind in CUSTOMER_KINDS}


def test_the_readme_says_how_many_segments_our_templates_take_as_measured():
    table = README.read_text().split("<!-- sms-segments -->")[1]
    rows = {m[0]: [cell.strip() for cell in m[1].split("|")] for m in
            re.findall(r"^\| `(\w+)` \|(.*)\|$", table, flags=re.MULTILINE)}
    assert rows == {kind: [by[language] for language in ("en", "es", "fr", "de")]
                    for kind, by in measured().items()}


def test_the_longest_values_give_every_kind_a_bound():
    for kind in CUSTOMER_KINDS:
        assert set(SAMPLES[kind]) <= set(longest_values(kind, "en")), kind
