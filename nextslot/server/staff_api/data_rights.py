"""/v1/customers/export, /v1/customers/erase and /v1/audit-log: a customer's data request, and who changed what."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel, Field

from nextslot.core import audit
from nextslot.core.customers.data_rights import erase_customer, export_customer
from nextslot.schemas.inputs import Input
from nextslot.server.staff_api.deps import BookingServiceDep, Caller, ok
from nextslot.server.staff_api.errors import documented
from nextslot.server.staff_api.routers import staff_router

router = staff_router("/v1")


class CustomerRef(Input):
    id: int | None = Field(None, ge=1, description="The customer's id")
    phone: str | None = Field(None, max_length=40, description="The customer's phone (local format is fine)")
    email: str | None = Field(None, max_length=320)

    def who(self) -> dict[str, Any]:
        return {k: v for k, v in (("customer_id", self.id), ("phone", self.phone), ("email", self.email)) if v}


class EraseRequest(CustomerRef):
    cancel_upcoming: bool = Field(False, description="Cancel the customer's upcoming bookings first (else they "
                                                     "are a reason to refuse)")


class ErasedAnswer(BaseModel):
    erased: int
    bookings: int
    cancelled: int
    messages: int
    conversations: int
    already: bool


@router.get("/customers/export", tags=["customers"], responses=documented(409))
def export(wanted: Annotated[CustomerRef, Query()], caller: Caller, service: BookingServiceDep) -> dict[str, Any]:
    """Everything stored about one customer (by id, phone or email): bookings with their history, messages and
    delivery attempts, replies, waitlist, deposits and conversations. The export is recorded in the audit log."""
    return ok(export_customer(service.uow(), caller.business_id, service.now(), **wanted.who()))


@router.post("/customers/erase", tags=["customers"], responses=documented(409))
def erase(wanted: EraseRequest, caller: Caller, service: BookingServiceDep) -> ErasedAnswer:
    """Remove a customer's personal data; their bookings, claims and history stay, anonymous (cannot be undone)."""
    erased = ok(erase_customer(service.uow(), caller.business_id, service.now(),
                               cancel_upcoming=wanted.cancel_upcoming, **wanted.who()))
    return ErasedAnswer(erased=erased.customer_id, bookings=erased.bookings, cancelled=erased.cancelled,
                        messages=erased.messages, conversations=erased.conversations, already=erased.already)


class AuditQuery(Input):
    limit: int = Field(100, ge=1, le=500)
    before_id: int | None = Field(None, ge=1, description="Older than this entry (the last id of a page)")


class AuditEntryView(BaseModel):
    id: int
    at: str
    actor: str
    channel: str
    action: str
    target: str
    changes: dict[str, Any]
    request_id: str | None


class AuditLog(BaseModel):
    entries: list[AuditEntryView]


@router.get("/audit-log", tags=["business"])
def audit_log(wanted: Annotated[AuditQuery, Query()], caller: Caller, service: BookingServiceDep) -> AuditLog:
    """Configuration and account changes, newest first: who (a console account, an API key's name, the CLI's
    user), when, through which channel, and what changed."""
    found = audit.entries(service.uow(), caller.business_id, wanted.limit, wanted.before_id)
    return AuditLog(entries=[AuditEntryView(**e.as_json()) for e in found])
