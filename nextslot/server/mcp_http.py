"""MCP over streamable HTTP at /mcp, authenticated with a business API key (bearer).

STUB: helper A replaces this with the real thing (see nextslot/tools/mcp_server.py).
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from nextslot.core.service import BookingService
from nextslot.settings import Settings


def build(service: BookingService, settings: Settings) -> Any:
    return None


@asynccontextmanager
async def running(mcp: Any) -> AsyncIterator[None]:
    yield


def mount(app: FastAPI, mcp: Any) -> None:
    pass
