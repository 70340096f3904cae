"""The staff REST API at /v1, for staff tools and dashboards: the catalog, bookings and the calendar.

Authenticated with a business API key (`Authorization: Bearer nsk_...`); a thin adapter over the core,
documented at /docs and /openapi.json.
"""
from __future__ import annotations

from fastapi import FastAPI

from nextslot.server.staff_api import (
    bookings,
    business,
    calendar,
    calendars,
    customers,
    data_rights,
    errors,
    resources,
    services,
    webhooks,
)
from nextslot.server.staff_api.fallback import fallback_router

ROUTERS = [bookings.router, calendar.router, calendars.router, data_rights.router, customers.router, resources.router,
           services.router, business.router, webhooks.router]


def install(app: FastAPI) -> None:
    """Add the /v1 routes and answer their errors in the API's shape."""
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(fallback_router(ROUTERS))  # last: only what no /v1 route took
    errors.register(app)
