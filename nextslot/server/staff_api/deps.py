"""What every /v1 route depends on: the booking service, and the caller, whose business API key (the bearer
token) decides the business every query is scoped to."""
from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from nextslot.core import audit
from nextslot.core.accounts.key_cache import ApiKeyCache
from nextslot.core.accounts.key_holders import KeyHolder
from nextslot.core.results import Rejected
from nextslot.core.service import BookingService
from nextslot.server.staff_api.errors import Refused

T = TypeVar("T")
bearer = HTTPBearer(auto_error=False, scheme_name="ApiKey",
                    description="A business API key, `nsk_...` (create one with `nextslot api-key SLUG`).")


async def booking_service(request: Request) -> BookingService:
    """Async, as every dependency here that does no I/O: FastAPI sends a plain `def` dependency to a worker thread,
    a hop that costs more than the dependency itself."""
    return request.app.state.service


async def checked_key(request: Request) -> KeyHolder:
    """The live key's holder, or 401 (missing, unknown and revoked keys alike). A key this process checked a
    moment ago is answered from memory, without a database round trip or a worker thread."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    keys: ApiKeyCache = request.app.state.api_keys
    holder = None
    if scheme.lower() == "bearer" and (token := token.strip()):
        holder = keys.remembered(token) or await run_in_threadpool(keys.look_up, request.app.state.service.uow(), token)
    if holder is None:
        raise Refused(Rejected("unauthorized", "Send a live business API key: Authorization: Bearer nsk_..."),
                      401, headers={"WWW-Authenticate": "Bearer"})
    return holder


class KeyCheckedRoute(APIRoute):
    """A /v1 route that checks the API key before FastAPI reads the body (it reads bodies before it runs any
    dependency): a caller without a key cannot make the server read and parse a large body first."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            request.state.caller = await checked_key(request)
            audit.act_as(f"api key {request.state.caller.name}", "api")  # the endpoint runs in this context
            return await handler(request)

        return checked


async def calling_key(request: Request,
                      _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> KeyHolder:
    """The holder KeyCheckedRoute found (the bearer dependency is there for the OpenAPI document)."""
    return request.state.caller


def read(service: BookingService, query: Callable[..., T], *args: Any) -> T:
    """Run a core read query in a transaction of its own."""
    return service.read(query, *args)


def ok(result: T | Rejected) -> T:
    """The result, or the rejection answered as an error."""
    if isinstance(result, Rejected):
        raise Refused(result)
    return result


BookingServiceDep = Annotated[BookingService, Depends(booking_service)]
Caller = Annotated[KeyHolder, Depends(calling_key)]
