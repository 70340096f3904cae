"""The staff API through the real app (in-process, frozen clock, the test database): clients holding a key."""
from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from nextslot.server.app import create_app
from nextslot.settings import Settings

TUESDAY = "2026-11-24"  # the frozen clock says Monday 23 November 2026, 08:00 UTC (London is on UTC)


def at(clock: str, day: str = TUESDAY) -> str:
    return f"{day}T{clock}:00+00:00"


def phone(n: int) -> str:
    """A UK mobile no other test uses."""
    return f"+447900900{n:03d}"


def staff_app(service) -> FastAPI:
    return create_app(Settings(secret_key="staff-api-tests"), service=service)


@pytest.fixture
def app(service) -> FastAPI:
    return staff_app(service)


@pytest.fixture
def api(service, api_key) -> Iterator[Callable[[int], TestClient]]:
    """A client for a business, holding a fresh key of its own: `api(business_id).get("/v1/...")`."""
    clients: list[TestClient] = []

    def client_for(business_id: int) -> TestClient:
        client = TestClient(staff_app(service), headers={"Authorization": f"Bearer {api_key(business_id)}"})
        clients.append(client.__enter__())  # one event loop for all its requests, not one per request
        return client

    yield client_for
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def clinic(make_business) -> int:
    return make_business("clinic")
