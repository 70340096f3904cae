"""A fake of Google's OAuth endpoints and Calendar API v3 (the parts nextslot uses) on loopback, for the real
Google client libraries to talk to.

OAuth: a consent page (`/o/oauth2/auth`, an "Allow" button a browser presses), the token endpoint (authorization
code with PKCE S256 checked, refresh token; a revoked grant answers `invalid_grant`), revocation. Calendar:
events.list with `timeMin`/`timeMax`, `privateExtendedProperty`, `singleEvents` (weekly or daily RRULEs expanded
into instances with their own ids), sync tokens (an expired one answers 410), pages; insert with client-chosen ids
(409 when taken), update, delete (the event turns `cancelled`, as Google keeps it), watch channels and
channels.stop. A change made by the test (`add`, `change`, `cancel`) notifies every live channel like Google does
(`X-Goog-*` headers).
"""
from __future__ import annotations

import base64
import hashlib
import html
import itertools
import secrets
import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlencode

import httpx2
from dateutil.rrule import rrulestr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from evals.loopback import LiveServer

SCOPE = "https://www.googleapis.com/auth/calendar.events"


def _error(status: int, reason: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": status, "message": message, "errors": [{"reason": reason}]}},
                        status_code=status)


class FakeGoogle:
    client_id = "fake-google-client.apps.googleusercontent.com"
    client_secret = "fake-google-secret"

    def __init__(self, account: str = "okafor@example.com") -> None:
        self.account = account
        self.lock = threading.Lock()
        self.seq = itertools.count(1)
        self.events: dict[str, dict[str, Any]] = {}  # id -> event (masters with recurrence included)
        self.changed: dict[str, int] = {}  # id -> seq of its last change
        self.oldest_token = 0  # sync tokens older than this answer 410
        self.codes: dict[str, dict[str, Any]] = {}
        self.refresh_tokens: dict[str, bool] = {}  # token -> still valid
        self.access_tokens: dict[str, datetime] = {}  # token -> expiry
        self.channels: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) of Calendar API calls
        self.token_requests: list[dict[str, str]] = []
        self.notifications: list[int] = []  # status codes our server answered
        self.page_size = 2500
        self.access_lifetime = timedelta(hours=1)
        self.down = False  # True: every Calendar API call answers 503
        self.granted_scope = SCOPE
        routes = [
            Route("/o/oauth2/auth", self._consent, methods=["GET"]),
            Route("/o/oauth2/approve", self._approve, methods=["POST"]),
            Route("/token", self._token, methods=["POST"]),
            Route("/revoke", self._revoke, methods=["POST"]),
            Route("/calendar/v3/calendars/{cid}/events", self._list, methods=["GET"]),
            Route("/calendar/v3/calendars/{cid}/events", self._insert, methods=["POST"]),
            Route("/calendar/v3/calendars/{cid}/events/watch", self._watch, methods=["POST"]),
            Route("/calendar/v3/calendars/{cid}/events/{eid}", self._update, methods=["PUT"]),
            Route("/calendar/v3/calendars/{cid}/events/{eid}", self._delete, methods=["DELETE"]),
            Route("/calendar/v3/channels/stop", self._stop, methods=["POST"]),
        ]
        self._server = LiveServer(Starlette(routes=routes))
        self.url = self._server.url

    def __enter__(self) -> FakeGoogle:
        self._server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.__exit__(*exc)

    def settings(self) -> dict[str, Any]:
        return {"google_client_id": self.client_id, "google_client_secret": self.client_secret,
                "google_auth_url": f"{self.url}/o/oauth2/auth", "google_token_url": f"{self.url}/token",
                "google_revoke_url": f"{self.url}/revoke", "google_calendar_api_url": f"{self.url}/calendar/v3/"}

    # --- what a test does in the calendar (as the staff member would in Google Calendar) ---------------

    def add(self, summary: str, start: datetime | str, end: datetime | str, push: bool = True,
            **fields: Any) -> str:
        """An event: datetimes timed, `date` strings (YYYY-MM-DD) all-day; `recurrence=["RRULE:..."]` repeats."""
        eid = fields.pop("id", None) or secrets.token_hex(8)
        event = {"id": eid, "summary": summary, "status": "confirmed", "start": _when(start), "end": _when(end),
                 **fields}
        self._store(event)
        if push:
            self.notify()
        return eid

    def change(self, eid: str, push: bool = True, **fields: Any) -> None:
        with self.lock:
            event = dict(self.events[eid])
        event.update({k: _when(v) if k in ("start", "end") else v for k, v in fields.items()})
        self._store(event)
        if push:
            self.notify()

    def cancel(self, eid: str, push: bool = True) -> None:
        self.change(eid, push, status="cancelled")

    def expire_sync_tokens(self) -> None:
        with self.lock:
            self.oldest_token = next(self.seq)

    def revoke_all(self) -> None:
        with self.lock:
            for token in self.refresh_tokens:
                self.refresh_tokens[token] = False
            self.access_tokens.clear()

    def expire_access_tokens(self) -> None:
        with self.lock:
            self.access_tokens.clear()

    def live(self) -> list[dict[str, Any]]:
        """Our view of the calendar: events not cancelled."""
        with self.lock:
            return [dict(e) for e in self.events.values() if e.get("status") != "cancelled"]

    def notify(self, channel_id: str | None = None, token: str | None = None, state: str = "exists") -> list[int]:
        """Call each live channel's address like Google does; return the status codes answered."""
        answers = []
        with self.lock:
            channels = [dict(c) for c in self.channels.values() if channel_id in (None, c["id"])]
        for c in channels:
            headers = {"X-Goog-Channel-ID": c["id"], "X-Goog-Channel-Token": token or c.get("token") or "",
                       "X-Goog-Resource-ID": c["resourceId"], "X-Goog-Resource-State": state,
                       "X-Goog-Message-Number": str(next(self.seq)), "X-Goog-Resource-URI": "events"}
            try:
                answers.append(httpx2.post(c["address"], headers=headers, timeout=10).status_code)
            except httpx2.HTTPError:
                answers.append(0)
        self.notifications.extend(answers)
        return answers

    def _store(self, event: dict[str, Any]) -> None:
        with self.lock:
            seq = next(self.seq)
            event["etag"] = f'"{seq}"'
            event["updated"] = datetime.now(UTC).isoformat()
            self.events[event["id"]] = event
            self.changed[event["id"]] = seq

    # --- OAuth -------------------------------------------------------------------------------------------

    async def _consent(self, request: Request) -> Response:
        q = request.query_params
        if q.get("client_id") != self.client_id or q.get("code_challenge_method") != "S256":
            return HTMLResponse("<h1>Error 400: invalid_request</h1>", status_code=400)
        fields = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                         for k, v in q.items())
        return HTMLResponse(f"""<!doctype html><title>Sign in - Google Accounts</title>
            <h1>nextslot wants to access your Google Account</h1><p>{html.escape(self.account)}</p>
            <p>See, edit, share and permanently delete all the calendars you can access</p>
            <form method="post" action="/o/oauth2/approve">{fields}<button name="decision" value="allow">Allow</button>
            <button name="decision" value="deny">Cancel</button></form>""")

    async def _approve(self, request: Request) -> Response:
        form = dict(await request.form())
        target = form["redirect_uri"]
        if form.get("decision") != "allow":
            return RedirectResponse(f"{target}?{urlencode({'error': 'access_denied', 'state': form['state']})}", 303)
        code = secrets.token_urlsafe(16)
        with self.lock:
            self.codes[code] = form
        query = {"code": code, "state": form["state"], "scope": self.granted_scope}
        return RedirectResponse(f"{target}?{urlencode(query)}", 303)

    def approve_url(self, auth_url: str) -> str:
        """Press "Allow" without a browser: the redirect (with the code) the consent page would send."""
        page = httpx2.get(auth_url, timeout=10)
        page.raise_for_status()
        from urllib.parse import parse_qsl, urlsplit
        form = dict(parse_qsl(urlsplit(auth_url).query))
        answer = httpx2.post(f"{self.url}/o/oauth2/approve", data={**form, "decision": "allow"}, timeout=10)
        return answer.headers["location"]

    async def _token(self, request: Request) -> Response:
        form = dict(await request.form())
        self.token_requests.append({k: v for k, v in form.items() if k == "grant_type"})
        basic = request.headers.get("authorization", "")
        if basic.startswith("Basic "):  # client credentials in HTTP basic auth (RFC 6749 2.3.1), as oauthlib sends
            client_id, _, client_secret = base64.b64decode(basic[6:]).decode().partition(":")
            form.setdefault("client_id", unquote(client_id))
            form.setdefault("client_secret", unquote(client_secret))
        if (form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        with self.lock:
            if form.get("grant_type") == "authorization_code":
                asked = self.codes.pop(form.get("code", ""), None)
                challenge = base64.urlsafe_b64encode(hashlib.sha256(form.get("code_verifier", "").encode())
                                                     .digest()).decode().rstrip("=")
                if asked is None or asked["redirect_uri"] != form.get("redirect_uri") \
                        or asked["code_challenge"] != challenge:
                    return JSONResponse({"error": "invalid_grant"}, status_code=400)
                refresh = secrets.token_urlsafe(24) if asked.get("access_type") == "offline" else None
                if refresh:
                    self.refresh_tokens[refresh] = True
            elif form.get("grant_type") == "refresh_token":
                refresh = None
                if not self.refresh_tokens.get(form.get("refresh_token", "")):
                    return JSONResponse({"error": "invalid_grant", "error_description": "Token has been expired "
                                         "or revoked."}, status_code=400)
            else:
                return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
            access = secrets.token_urlsafe(24)
            self.access_tokens[access] = datetime.now(UTC) + self.access_lifetime
        body = {"access_token": access, "expires_in": int(self.access_lifetime.total_seconds()),
                "scope": self.granted_scope, "token_type": "Bearer"}
        if refresh:
            body["refresh_token"] = refresh
        return JSONResponse(body)

    async def _revoke(self, request: Request) -> Response:
        token = (await request.form()).get("token") or request.query_params.get("token", "")
        with self.lock:
            if token in self.refresh_tokens:
                self.refresh_tokens[token] = False
            self.access_tokens.pop(token, None)
        return Response(status_code=200)

    # --- Calendar API --------------------------------------------------------------------------------

    def _authorized(self, request: Request) -> Response | None:
        self.requests.append((request.method, request.url.path))
        if self.down:
            return _error(503, "backendError", "Backend Error")
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        with self.lock:
            expiry = self.access_tokens.get(token)
        if expiry is None or expiry < datetime.now(UTC):
            return _error(401, "authError", "Invalid Credentials")
        return None

    async def _list(self, request: Request) -> Response:
        if (refused := self._authorized(request)) is not None:
            return refused
        q = request.query_params
        with self.lock:
            now_seq = next(self.seq)
            if q.get("syncToken"):
                since = int(q["syncToken"].removeprefix("sync-"))
                if since < self.oldest_token:
                    return _error(410, "fullSyncRequired", "Sync token is no longer valid, a full sync is required.")
                ids = [i for i, s in self.changed.items() if s > since]
                window = None
            else:
                ids = list(self.events)
                window = (_parse(q["timeMin"]) if q.get("timeMin") else None,
                          _parse(q["timeMax"]) if q.get("timeMax") else None)
            items: list[dict[str, Any]] = []
            for eid in ids:
                event = self.events[eid]
                if q.get("singleEvents") == "true" and event.get("recurrence"):
                    items.extend(_instances(event))
                else:
                    items.append(dict(event))
        if window is not None:
            items = [e for e in items if e.get("status") != "cancelled" and _touches(e, window)]
        for wanted in q.getlist("privateExtendedProperty"):  # "name=value", each one to match
            name, _, value = wanted.partition("=")
            items = [e for e in items if ((e.get("extendedProperties") or {}).get("private") or {}).get(name) == value]
        start = int(q.get("pageToken") or 0)
        size = min(int(q.get("maxResults") or 250), self.page_size)
        page = {"kind": "calendar#events", "summary": self.account, "items": items[start:start + size]}
        if start + size < len(items):
            page["nextPageToken"] = str(start + size)
        else:
            page["nextSyncToken"] = f"sync-{now_seq}"
        return JSONResponse(page)

    async def _insert(self, request: Request) -> Response:
        if (refused := self._authorized(request)) is not None:
            return refused
        body = await request.json()
        eid = body.get("id") or secrets.token_hex(8)
        with self.lock:
            if eid in self.events:
                return _error(409, "duplicate", "The requested identifier already exists.")
        self._store({**body, "id": eid, "status": body.get("status", "confirmed")})
        with self.lock:
            return JSONResponse(self.events[eid])

    async def _update(self, request: Request) -> Response:
        if (refused := self._authorized(request)) is not None:
            return refused
        eid = request.path_params["eid"]
        with self.lock:
            if eid not in self.events:
                return _error(404, "notFound", "Not Found")
        self._store({**(await request.json()), "id": eid})
        with self.lock:
            return JSONResponse(self.events[eid])

    async def _delete(self, request: Request) -> Response:
        if (refused := self._authorized(request)) is not None:
            return refused
        eid = request.path_params["eid"]
        with self.lock:
            event = self.events.get(eid)
            if event is None:
                return _error(404, "notFound", "Not Found")
            if event.get("status") == "cancelled":
                return _error(410, "deleted", "Resource has been deleted")
        self._store({**event, "status": "cancelled"})
        return Response(status_code=204)

    async def _watch(self, request: Request) -> Response:
        if (refused := self._authorized(request)) is not None:
            return refused
        body = await request.json()
        ttl = int((body.get("params") or {}).get("ttl", 604800))
        expiration = datetime.now(UTC) + timedelta(seconds=min(ttl, 604800))
        channel = {"kind": "api#channel", "id": body["id"], "resourceId": secrets.token_hex(10),
                   "resourceUri": f"{self.url}/calendar/v3/calendars/{request.path_params['cid']}/events",
                   "token": body.get("token"), "address": body["address"],
                   "expiration": str(int(expiration.timestamp() * 1000))}
        with self.lock:
            self.channels[body["id"]] = channel
        return JSONResponse({k: v for k, v in channel.items() if k not in ("token", "address")})

    async def _stop(self, request: Request) -> Response:
        if (refused := self._authorized(request)) is not None:
            return refused
        body = await request.json()
        with self.lock:
            channel = self.channels.get(body.get("id"))
            if channel is None or channel["resourceId"] != body.get("resourceId"):
                return _error(404, "notFound", "Channel not found")
            del self.channels[body["id"]]
        return Response(status_code=204)


def _when(value: datetime | str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        return {"date": value}
    return {"dateTime": value.isoformat(), "timeZone": "UTC"}


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _bounds(event: dict[str, Any]) -> tuple[datetime, datetime]:
    def one(v: dict[str, Any]) -> datetime:
        if "dateTime" in v:
            return _parse(v["dateTime"])
        return datetime.fromisoformat(v["date"]).replace(tzinfo=UTC)
    return one(event["start"]), one(event["end"])


def _touches(event: dict[str, Any], window: tuple[datetime | None, datetime | None]) -> bool:
    start, end = _bounds(event)
    return (window[1] is None or start < window[1]) and (window[0] is None or end > window[0])


def _instances(master: dict[str, Any]) -> list[dict[str, Any]]:
    """A recurring event's occurrences (at most a year's worth), each with Google's `{id}_{start}` id."""
    start, end = _bounds(master)
    rule = rrulestr("\n".join(master["recurrence"]), dtstart=start)
    out = []
    for n, at in enumerate(rule):
        if n >= 366:
            break
        suffix = at.strftime("%Y%m%dT%H%M%SZ") if "dateTime" in master["start"] else at.strftime("%Y%m%d")
        instance = {k: v for k, v in master.items() if k != "recurrence"}
        instance.update(id=f"{master['id']}_{suffix}", recurringEventId=master["id"],
                        start=_shifted(master["start"], at), end=_shifted(master["end"], at + (end - start)))
        out.append(instance)
    return out


def _shifted(value: dict[str, Any], at: datetime) -> dict[str, Any]:
    if "dateTime" in value:
        return {"dateTime": at.isoformat(), "timeZone": value.get("timeZone", "UTC")}
    return {"date": at.date().isoformat()}
