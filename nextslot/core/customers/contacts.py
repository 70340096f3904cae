"""Customer identity: contacts normalised (E.164 phones, checked emails), found or created."""
from __future__ import annotations

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select

from nextslot.core.instants import load_zone, unknown_zone
from nextslot.core.results import Rejected
from nextslot.schemas.commands import CustomerIn
from nextslot.storage.customers import Contact, StoredCustomer
from nextslot.storage.tables import Customer
from nextslot.storage.uow import SqlAlchemyUnitOfWork

STAFF_SOURCES = frozenset({"staff", "console"})  # the business's own people (/v1, the console)
# a conversation over SMS or WhatsApp: the message came from the customer's own number (Twilio's signed webhook), and
# its tools book for that number only (conversations/bound_tools.py), so it is the phone's owner who speaks. A web
# chat, the page, an agent or a voice call has only been told a number.
OWN_NUMBER_SOURCES = frozenset({"sms_chat", "whatsapp_chat"})


def normalize_phone(raw: str, region: str) -> str | Rejected:
    """E.164 from any common format; local numbers are read in the business's country."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        return Rejected(
            "invalid_phone",
            f"'{raw}' is not a valid phone number; give it with the country code, e.g. +44 20 7946 0958.",
            "customer.phone",
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: str) -> str | Rejected:
    try:
        return validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError as error:
        return Rejected("invalid_email", f"'{raw}' is not a valid email address: {error}", "customer.email")


def find_or_create(uow: SqlAlchemyUnitOfWork, business_id: int, region: str, given: CustomerIn,
                   source: str) -> StoredCustomer | Rejected:
    """The business's customer with this phone (else email), created from what was given, or updated from it when
    the caller may (its row as it stands now, as plain values). Only the business's staff (`source`) give a known
    customer another email or zone: a proved email reaches every booking of its customers, so anyone else's would
    be a stranger's key to them, and messages tell times in the customer's zone, so a stranger's would move every
    reminder's clock. Only the staff and the customer herself (her own number writing) rename her or change her
    language and channels: anyone can say a phone number, and her messages go to it in her name and language."""
    phone = normalize_phone(given.phone, region) if given.phone else None
    email = normalize_email(given.email) if given.email else None
    if isinstance(phone, Rejected):
        return phone
    if isinstance(email, Rejected):
        return email
    if not phone and not email:
        return Rejected("contact_required", "Give the customer's phone number or email address.", "customer")
    if given.timezone and load_zone(given.timezone) is None:
        return unknown_zone(given.timezone, "customer.timezone")

    if phone:
        contact = Contact(given.name, email, given.timezone, given.language,
                          [str(c) for c in given.channels] if given.channels else None,
                          "language" in given.model_fields_set, source in STAFF_SOURCES, speaks_for_her(source))
        return uow.customers.upsert_by_phone(business_id, phone, contact)
    assert email is not None  # one of the two was given
    # locked, as the phone's upsert locks its row: an erasure committed meanwhile is waited for and its customer,
    # left without an email, is not found; one waiting for us sees this booking and is refused
    customer = uow.session.scalars(
        select(Customer).where(Customer.business_id == business_id, func.lower(Customer.email) == email.lower())
        .order_by(Customer.id).limit(1).with_for_update()
    ).first()
    if customer is None:
        customer = Customer(business_id=business_id, email=email, name=given.name, timezone=given.timezone,
                            language=given.language, channels=given.channels or ["email"], no_show_count=0)
        uow.session.add(customer)
        uow.session.flush()
        return StoredCustomer.of(customer)
    # what the customer (or her business) just told us is the freshest truth
    if source in STAFF_SOURCES:
        customer.email = email  # as written now (found whatever its case)
        if given.timezone:
            customer.timezone = given.timezone
    if speaks_for_her(source):
        if given.name:
            customer.name = given.name
        if given.channels:
            customer.channels = list(given.channels)
        if "language" in given.model_fields_set:  # stated (a page's, a caller's), not the schema's default
            customer.language = given.language
    return StoredCustomer.of(customer)


def speaks_for_her(source: str) -> bool:
    """Whether a booking through `source` may rename a known customer, or change her language or channels: her
    business's staff, or the customer herself writing from her own number."""
    return source in STAFF_SOURCES or source in OWN_NUMBER_SOURCES
