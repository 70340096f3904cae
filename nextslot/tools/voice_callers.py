"""A voice call's tools for whoever is on the line. Anyone can ring a business's AI receptionist and say a number,
so a number said aloud is anyone's: the lookups by contact (find_appointments, customer_history) reach the bookings
of the number the platform reports as the caller's (its caller id, compared in E.164 however either is written),
or of a phone or email the caller proves in this call with a one-time code (request_code then verify_code, the
public endpoint's tools, here too: a code texted or emailed and read back), and no one else's. A stated contact
that is neither gets `contact_not_proved` before anything is looked up, so the answer is the same whether or not it
books here. A booking code stays enough for its one booking (moving and cancelling take nothing else), as the code
is the customer's own secret; a stranger's number beside it is dropped, never used to offer that number's codes.
A hold is the caller's: only calls from the number that made it convert it, or, the number withheld, only the call
that made it (`holder_of`).

The business's own agents (`/mcp` with its key or an app it approved, OpenAI function calling) keep the staff's
reach: they run the registry as it is."""
from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pydantic import Field, ValidationError, create_model

from nextslot.core.customers.contacts import normalize_phone
from nextslot.core.planning import load_business
from nextslot.core.results import Rejected
from nextslot.schemas import tools as t
from nextslot.storage.outage import database_unreachable
from nextslot.tools.contact_proof import PROOF_SPECS
from nextslot.tools.context import ToolContext
from nextslot.tools.registry import (
    SPECS,
    TOOLS,
    UNAVAILABLE,
    ToolReply,
    ToolSpec,
    error,
    execute,
    execute_spec,
    invalid_arguments,
)

LOOKUPS = ("find_appointments", "customer_history")
ANY_REGION = "ZZ"  # phonenumbers' "unknown region": a number written with its country code is read the same in any
PROOF_TOOLS = {spec.name: spec for spec in PROOF_SPECS}
TAKE_PROOF = frozenset({*LOOKUPS, "reschedule_appointment", "cancel_appointment", "confirm_appointment"})


def with_optional_proof(spec: ToolSpec) -> ToolSpec:
    """The registry's tool as a voice call takes it: the same, plus a `proof` it may pass (the caller's own number
    and a booking code need none)."""
    model: Any = create_model(
        spec.input_model.__name__.removesuffix("In") + "OnCallIn", __base__=spec.input_model,
        proof=(str | None, Field(None, min_length=8, max_length=100, description=t.PROOF)))
    return replace(spec, input_model=model)


# what a voice call offers, as `execute_for_caller` takes it: the voice tool definitions are generated from these
VOICE_SPECS = (*PROOF_SPECS, *(with_optional_proof(spec) if spec.name in TAKE_PROOF else spec for spec in SPECS))

NOT_PROVED = ("Only the number this call comes from, a phone or email proved in this call, or a booking code can "
              "be looked up here. Offer to look up by the booking code, or call request_code with the phone or "
              "email they booked with, then verify_code with the code they read back, and pass the `proof`.")
SAY_NOT_PROVED = ("I can look up appointments for the number you're calling from, or by your booking code. I can "
                  "also text a code to the number you booked with.")
SAY_WITHHELD = ("I can't see the number you're calling from, so I can look up appointments by your booking code, "
                "or I can text a code to the number you booked with.")


def execute_for_caller(name: str, arguments: Mapping[str, Any] | str | None, ctx: ToolContext) -> ToolReply:
    """Run a voice agent's tool call: the registry's tools, and the code tools, with lookups bound to the caller.
    The caller id is a contact proved: a booking of its own number is answered as hers (ToolContext.answers_her)."""
    try:
        number = calling_number(ctx)
        ctx = replace(ctx.proving(number), holder=holder_of(number, ctx.call_id))
    except Exception as exc:
        if database_unreachable(exc):
            return error("temporarily_unavailable", UNAVAILABLE)
        raise
    if name in PROOF_TOOLS:
        return execute_spec(PROOF_TOOLS[name], arguments, ctx)
    args = arguments_of(arguments)
    if name not in TAKE_PROOF or args is None:
        return execute(name, arguments, ctx)  # the registry explains bad arguments
    proof = args.pop("proof", None)
    if name not in LOOKUPS:  # by code: a proof opens nothing more, but the answer is then hers (her language)
        proved = proof_contact(proof, ctx) if isinstance(proof, str) and proof.strip() else None
        return execute(name, args, ctx.proving(proved))
    try:
        given = TOOLS[name].input_model.model_validate(args)
    except ValidationError as exc:
        return invalid_arguments(TOOLS[name], exc)
    try:
        return bound_lookup(name, args, given, proof, ctx)
    except Exception as exc:
        if database_unreachable(exc):  # as the registry answers it: a retry is safe
            return error("temporarily_unavailable", UNAVAILABLE)
        raise


def bound_lookup(name: str, args: dict[str, Any], given: Any, proof: Any, ctx: ToolContext) -> ToolReply:
    """The lookup for the proved contact, else the caller's own number, else refused."""
    if proof is not None:
        return as_proved(name, args, proof, ctx)
    region = country_of(ctx)
    caller = e164(ctx.caller_phone, region)  # None: withheld, or no number ("anonymous", "restricted", ...)
    stated = getattr(given, "phone", None) or None  # an agent may send "" for a parameter it leaves out
    mine = caller if stated is None or e164(stated, region) == caller else None
    if getattr(given, "code", None):  # the code decides; only the caller's own number narrows it
        return execute(name, {**args, "phone": mine if stated else None, "email": None}, ctx)
    if getattr(given, "email", None):
        return not_proved(caller, "email")
    if mine is None:
        return not_proved(caller, "phone")
    return execute(name, {**args, "phone": mine, "email": None}, ctx)


def arguments_of(arguments: Mapping[str, Any] | str | None) -> dict[str, Any] | None:
    """The call's arguments as a dict (None: not a JSON object, for the registry to refuse)."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except (ValueError, RecursionError):
            return None
    if arguments is None:
        return {}
    return dict(arguments) if isinstance(arguments, Mapping) else None


def as_proved(name: str, args: dict[str, Any], proof: Any, ctx: ToolContext) -> ToolReply:
    """The lookup for the contact the proof stands for, whatever contact the arguments name."""
    if not isinstance(proof, str) or not proof.strip():
        return error("proof_required", "`proof` must be the proof verify_code returned.", "proof")
    contact = ctx.service.proven_contact(ctx.business_id, proof)
    if isinstance(contact, Rejected):
        return error(contact.code, contact.message, contact.field)
    phone, email = (None, contact) if "@" in contact else (contact, None)
    return execute(name, {**args, "phone": phone, "email": email}, ctx.proving(contact))


def proof_contact(proof: str, ctx: ToolContext) -> str | None:
    """The contact a proof stands for; None for one that is not (any more) a proof, which changes nothing here."""
    try:
        contact = ctx.service.proven_contact(ctx.business_id, proof)
    except Exception as exc:
        if database_unreachable(exc):
            return None  # the tool itself then answers temporarily_unavailable, or goes on as unproved
        raise
    return None if isinstance(contact, Rejected) else contact


def calling_number(ctx: ToolContext) -> str | None:
    """The caller id in E.164 (None: withheld, or no number); one with its country code needs no read of the
    business's country."""
    raw = (ctx.caller_phone or "").strip()
    if not raw:
        return None
    return e164(raw, ANY_REGION if raw.startswith("+") else country_of(ctx))


def holder_of(number: str | None, call_id: str | None) -> str:
    """Whose a hold made on this call is: calls from the same number convert it, not another caller naming its id
    (ids count up, and a held time drops out of the openings). Every withheld number is one, so a withheld caller's
    hold is its call's (the platform's id of it; without one, no other request's). A digest: a hold is no place for
    a caller's number."""
    who = f"caller:{number}" if number else f"call:{call_id}" if call_id else f"request:{secrets.token_hex(16)}"
    return hashlib.blake2b(who.encode(), digest_size=16).hexdigest()


def country_of(ctx: ToolContext) -> str | None:
    """The business's country: a local number is read in it, as bookings store it."""
    business = ctx.service.read(load_business, ctx.business_id)
    return None if isinstance(business, Rejected) else business.country


def e164(raw: str | None, region: str | None) -> str | None:
    """A number in E.164 however it was written (None: not a number)."""
    if not raw or region is None:
        return None
    found = normalize_phone(raw, region)
    return None if isinstance(found, Rejected) else found


def not_proved(caller: str | None, field: str) -> ToolReply:
    return error("contact_not_proved", NOT_PROVED, field, say=SAY_NOT_PROVED if caller else SAY_WITHHELD)
