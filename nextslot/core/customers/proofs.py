"""A customer proving their phone or email to a business's public endpoint, so their own assistant may find,
move and cancel their bookings there: a one-time code goes to the contact through the outbox, and the code given
back within ten minutes (five tries) earns a proof that lasts thirty.

Whoever asks holds a random challenge; the code is checked against the challenge, so nobody else can spend a
code's tries. The answer to a request is the same whether or not the contact books here (a code is only sent
when it does), so the endpoint tells a stranger nothing about who the customers are. A contact gets at most
three codes an hour, whoever asks for them.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select

from nextslot.core.customers.contacts import normalize_email, normalize_phone
from nextslot.core.results import Rejected
from nextslot.storage.tables import Business, ContactProof, Customer, Notification
from nextslot.storage.uow import SqlAlchemyUnitOfWork

CODE_MINUTES, CODE_TRIES, PROOF_MINUTES = 10, 5, 30
CODES_PER_CONTACT, CODES_WINDOW = 3, timedelta(hours=1)
CHALLENGE_PREFIX, PROOF_PREFIX = "nsv_", "nsp_"  # OAuth codes are nsc_
OUTBOX_KIND = "conversation_reply"  # sent as written, to payload["to"] on payload["channel"] (the dispatcher's)


@dataclass(frozen=True)
class CodeRequested:
    challenge: str  # to send back with the code
    expires_at: datetime
    channel: str  # sms or email: where the code went, if the contact books here


@dataclass(frozen=True)
class ContactProved:
    proof: str
    contact: str
    expires_at: datetime


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def code_digest(challenge: str, code: str) -> str:
    return hmac.new(challenge.encode(), code.encode(), hashlib.sha256).hexdigest()


def normalized_contact(raw: str, region: str) -> str | Rejected:
    raw = raw.strip()
    found = normalize_email(raw) if "@" in raw else normalize_phone(raw, region)
    if isinstance(found, Rejected):
        return Rejected(found.code, found.message, "contact")
    return found.lower() if "@" in found else found


def request_code(uow: SqlAlchemyUnitOfWork, business_id: int, contact: str, now: datetime) -> CodeRequested | Rejected:
    """Send a one-time code to the contact if it is one of the business's customers; answer alike either way."""
    with uow:
        s = uow.session
        business = s.get(Business, business_id)
        if business is None:
            return Rejected("unknown_business", "There is no such business.")
        address = normalized_contact(contact, business.country)
        if isinstance(address, Rejected):
            return address
        customer = s.scalar(select(Customer.id).where(
            Customer.business_id == business_id,
            or_(Customer.phone == address, func.lower(Customer.email) == address)).limit(1))
        issued = issue_code(uow, business_id, address, customer is not None, now)
        if isinstance(issued, Rejected):
            return issued
        challenge, code = issued
        expires = now + timedelta(minutes=CODE_MINUTES)
        channel = "email" if "@" in address else "sms"
        if customer is not None:
            s.add(Notification(business_id=business_id, customer_id=customer, kind=OUTBOX_KIND, due_at=now,
                               status="pending", attempts=0, payload={
                                   "text": f"Your {business.name} code is {code}. It is valid for {CODE_MINUTES} "
                                           "minutes. Never share it.",
                                   "channel": channel, "to": address, "subject": business.name}))
        uow.commit()
        return CodeRequested(challenge, expires, channel)


def issue_code(uow: SqlAlchemyUnitOfWork, business_id: int, address: str, known: bool,
               now: datetime) -> tuple[str, str] | Rejected:
    """A one-time code for the contact and the challenge it is checked against, recorded whether or not the contact
    books here: every code counts towards the contact's three an hour, whoever asks and through which door (this
    endpoint, the booking page's chat)."""
    s = uow.session
    # one at a time per contact, so racing requests cannot each see room for one more
    s.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(f"proof:{business_id}:{address}", 0))))
    recent = s.scalar(select(func.count()).select_from(ContactProof).where(
        ContactProof.business_id == business_id, ContactProof.contact == address,
        ContactProof.created_at > now - CODES_WINDOW)) or 0
    if recent >= CODES_PER_CONTACT:
        return Rejected("too_many_codes", f"No more codes for this contact for now (at most {CODES_PER_CONTACT} "
                                          "an hour). Try again later, or use the link in a booking message.",
                        "contact")
    challenge, code = CHALLENGE_PREFIX + secrets.token_urlsafe(24), f"{secrets.randbelow(10**6):06d}"
    s.add(ContactProof(business_id=business_id, contact=address, known=known, challenge_hash=digest(challenge),
                       code_hash=code_digest(challenge, code), tries=0,
                       code_expires_at=now + timedelta(minutes=CODE_MINUTES), created_at=now))
    return challenge, code


def verify_code(uow: SqlAlchemyUnitOfWork, business_id: int, challenge: str, code: str,
                now: datetime) -> ContactProved | Rejected:
    """Turn the right code, given back in time, into a proof of its contact."""
    with uow:
        s = uow.session
        row = s.scalars(select(ContactProof).where(
            ContactProof.business_id == business_id, ContactProof.challenge_hash == digest(challenge.strip()))
            .with_for_update()).one_or_none()
        if row is None:
            return Rejected("unknown_challenge", "That challenge is not one this business gave; call request_code "
                                                 "first and send its challenge back.", "challenge")
        if row.proof_hash is not None:
            return Rejected("code_used", "That code was already used; call request_code for a new one.", "code")
        if row.code_expires_at <= now or row.tries >= CODE_TRIES:
            return Rejected("code_expired", "That code has expired or was tried too often; call request_code for "
                                            "a new one.", "code")
        right = row.known and hmac.compare_digest(row.code_hash, code_digest(challenge.strip(), code.strip()))
        if not right:
            row.tries += 1
            uow.commit()
            left = CODE_TRIES - row.tries
            return Rejected("wrong_code", f"That is not the code we sent. {left} tr{'y' if left == 1 else 'ies'} "
                                          "left.", "code")
        proof = PROOF_PREFIX + secrets.token_urlsafe(32)
        row.proof_hash, row.proof_expires_at = digest(proof), now + timedelta(minutes=PROOF_MINUTES)
        uow.commit()
        return ContactProved(proof, row.contact, row.proof_expires_at)


def proven_contact(uow: SqlAlchemyUnitOfWork, business_id: int, proof: str, now: datetime) -> str | Rejected:
    """The phone or email a live proof at this business stands for."""
    with uow:
        row = uow.session.execute(select(ContactProof.contact, ContactProof.proof_expires_at).where(
            ContactProof.business_id == business_id, ContactProof.proof_hash == digest(proof.strip()))).one_or_none()
        if row is None:
            return Rejected("proof_required", "That proof is unknown here. Ask the customer for their phone or email, "
                                              "call request_code, then verify_code with the code they receive.",
                            "proof")
        if row.proof_expires_at is None or row.proof_expires_at <= now:
            return Rejected("proof_expired", f"That proof has expired (they last {PROOF_MINUTES} minutes); call "
                                             "request_code again.", "proof")
        return str(row.contact)
