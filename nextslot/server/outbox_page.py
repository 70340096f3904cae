"""`/outbox`: the messages the local outbox channel 'sent' (NEXTSLOT_LOCAL_OUTBOX, on under `nextslot up` when no
Twilio or SMTP is configured), newest first, as a page that refreshes itself and as JSON (`/outbox.json`).

Only loopback clients are answered: the messages carry customers' manage links.
"""
from __future__ import annotations

import ipaddress
from html import escape

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from nextslot.reminders.channels.local_outbox import outbox_file, read_outbox

router = APIRouter(include_in_schema=False)


PROXIED = ("x-forwarded-for", "forwarded", "x-real-ip")


def from_loopback(request: Request) -> bool:
    """A client on this machine, not a proxy on it relaying someone else, asking for this machine by a loopback
    name: a page whose own domain was made to resolve to 127.0.0.1 (DNS rebinding) sends its domain as Host."""
    if any(h in request.headers for h in PROXIED):
        return False
    return loopback(request.client.host if request.client else "") and loopback(request.url.hostname or "")


def loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _refused() -> Response:
    return JSONResponse({"error": {"code": "forbidden", "message": "The local outbox is shown on this machine only."}},
                        status_code=403)


@router.get("/outbox.json")
def outbox_json(request: Request) -> Response:
    if not from_loopback(request):
        return _refused()
    return JSONResponse({"messages": read_outbox(outbox_file(request.app.state.settings.data_dir))})


@router.get("/outbox")
def outbox_page(request: Request) -> Response:
    if not from_loopback(request):
        return _refused()
    messages = read_outbox(outbox_file(request.app.state.settings.data_dir))
    items = "".join(
        f"<article><header><b>{escape(m.get('channel', ''))}</b> to {escape(m.get('to', ''))} "
        f"<time>{escape(m.get('at', ''))}</time></header>"
        + (f"<h3>{escape(m['subject'])}</h3>" if m.get("subject") else "")
        + f"<pre>{escape(m.get('body', ''))}</pre></article>" for m in messages)
    empty = "<p>Nothing sent yet. Book something and the confirmation appears here.</p>"
    return HTMLResponse(
        "<!doctype html><html lang=en><head><meta charset=utf-8><meta http-equiv=refresh content=3>"
        "<title>nextslot local outbox</title><style>body{font-family:system-ui;max-width:48rem;margin:2rem auto;"
        "padding:0 1rem}article{border:1px solid #ccc;border-radius:6px;padding:.5rem 1rem;margin:1rem 0}"
        "pre{white-space:pre-wrap;font-family:inherit}time{color:#666;font-size:.85em}</style></head><body>"
        "<h1>Local outbox</h1><p>No Twilio or SMTP is configured, so messages are kept here instead of being "
        "sent.</p>" + (items or empty) + "</body></html>")


def install(app: FastAPI) -> None:
    if app.state.settings.local_outbox:
        app.include_router(router)
