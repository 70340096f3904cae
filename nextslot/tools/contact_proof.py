"""The tools a customer's own assistant uses to prove the customer's phone or email (request_code, verify_code),
and the lookups and changes that then take that proof: the public endpoint's tools beyond the registry's.

A proof is an argument, not a session: the public endpoint is stateless HTTP, and an assistant keeps it the way
it keeps a hold_id. Whoever presents it acts for that one contact and no other (the server binds the tools)."""
from __future__ import annotations

from typing import Any

from pydantic import Field, create_model

from nextslot.core.customers.proofs import CODE_MINUTES, PROOF_MINUTES
from nextslot.core.results import Rejected
from nextslot.schemas import tool_results as r
from nextslot.schemas import tools as t
from nextslot.tools.context import ToolContext
from nextslot.tools.registry import TOOLS, Effects, ToolSpec
from nextslot.tools.render import problem

SENDS = Effects(read_only=False, destructive=False, idempotent=False, open_world=True)  # a message goes out
CHECKS = Effects(read_only=False, destructive=False, idempotent=False, open_world=False)  # spends a try


def request_code(ctx: ToolContext, args: t.RequestCodeIn) -> r.CodeSentOut | r.ToolProblem:
    sent = ctx.service.request_contact_code(ctx.business_id, args.contact)
    if isinstance(sent, Rejected):
        return problem(sent)
    by = "a text message" if sent.channel == "sms" else "email"
    return r.CodeSentOut(outcome="code_sent", challenge=sent.challenge, expires_at=sent.expires_at.isoformat(),
                         sent_by=sent.channel,  # type: ignore[arg-type]
                         say=f"If that is the contact you booked with, a six-digit code is on its way by {by}. "
                             f"It works for {CODE_MINUTES} minutes: please read it to me.")


def verify_code(ctx: ToolContext, args: t.VerifyCodeIn) -> r.ContactProvedOut | r.ToolProblem:
    proved = ctx.service.verify_contact_code(ctx.business_id, args.challenge, args.code)
    if isinstance(proved, Rejected):
        return problem(proved)
    return r.ContactProvedOut(outcome="proved", proof=proved.proof, expires_at=proved.expires_at.isoformat(),
                              say="Thank you, that's the right code. I can look up and change your bookings now.")


PROOF_SPECS = (
    ToolSpec(
        "request_code",
        "Start here when the customer wants to find, move or cancel a booking they already have: send a one-time "
        "code to the phone number or email they booked with. Then ask them for the code and call verify_code "
        "with it and the returned `challenge`. The answer is the same whether or not the contact has bookings.",
        t.RequestCodeIn, r.CodeSentOut, request_code, SENDS,
    ),
    ToolSpec(
        "verify_code",
        "Check the code the customer received (with the `challenge` from request_code). The returned `proof` "
        f"lets find_appointments, reschedule_appointment and cancel_appointment act on that contact's own "
        f"bookings for {PROOF_MINUTES} minutes. Five wrong tries end a code.",
        t.VerifyCodeIn, r.ContactProvedOut, verify_code, CHECKS,
    ),
)
NEEDS_PROOF = ("find_appointments", "reschedule_appointment", "cancel_appointment")


def with_proof(spec: ToolSpec) -> ToolSpec:
    """The registry's tool as the public endpoint offers it: the same, plus a required `proof`."""
    model: Any = create_model(
        spec.input_model.__name__.removesuffix("In") + "WithProofIn", __base__=spec.input_model,
        proof=(str, Field(min_length=8, max_length=100, description=t.PROOF)))
    extra = (" On this public endpoint it needs the `proof` from verify_code and only reaches the bookings of the "
             "phone or email proved (whatever phone or email is given).")
    return ToolSpec(spec.name, spec.description + extra, model, spec.output_model, spec.handler, spec.effects)


PROVED_TOOLS = tuple(with_proof(TOOLS[name]) for name in NEEDS_PROOF)
