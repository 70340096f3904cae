"""Google Calendar: the OAuth grant (authorization code with PKCE, offline access, one scope), incremental
reading with sync tokens, push through watch channels, and our bookings written as events.

Everything goes through Google's own libraries: `google-auth-oauthlib` for the consent flow, `google-auth` for
refreshing, `google-api-python-client` (its bundled discovery document, no discovery request) for the Calendar
API. Each base URL is a setting, so tests point the real libraries at a loopback fake.

Reading: recurring events are expanded by Google (`singleEvents`), so every stored item is one occurrence with
its own id. The first read of a window lists it (`timeMin`/`timeMax`) and keeps the `nextSyncToken`; later reads
of the same window ask only what changed since (deleted and cancelled items come back as `status: cancelled`;
a series deleted as a whole may come back as the series' own id only, so its stored occurrences, which keep the
series' id, go with it). Changes that cannot say what became of stored occurrences (a series listing some of them
but not others stored: one cut short need not list those it lost; or events stored before series ids were kept)
are settled by reading the window at once. A token Google no longer honours (410 Gone) means reading the window
again. Transparent ("free") items, working locations, events the staff member declined, and the events we wrote
block nothing; all-day events block the whole local day of the resource; tentative ones block, as over CalDAV.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import google.auth.transport.requests
import google_auth_httplib2
import httplib2
import requests
from google.auth.exceptions import RefreshError
from google.oauth2.credentials import Credentials
from google_auth_oauthlib.flow import Flow
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from nextslot.calendars.busy_time import instant, merged
from nextslot.calendars.grants import GrantRefused, Tokens
from nextslot.calendars.provider import (
    BookingEvent,
    CalendarSource,
    Channel,
    Interval,
    Reading,
    StoredEvents,
    SyncState,
    Throttled,
    TokenRejected,
    retry_after,
)
from nextslot.core.instants import load_zone

SCOPES = ["https://www.googleapis.com/auth/calendar.events"]  # read and write events; nothing else
KEY = "nextslotBooking"  # the private extended property our events carry
TIMEOUT = 30
PAGE = 2500  # the most events.list returns per page
PAGES = 1000  # pages of one listing (2.5 million events): more is a server paging in circles
SLOW_DOWN = {"ratelimitexceeded", "userratelimitexceeded", "quotaexceeded", "rate_limit_exceeded"}  # 403 reasons


class GoogleOAuth:
    """The consent flow and token refreshes against Google's (or a fake's) OAuth endpoints."""

    def __init__(self, client_id: str, client_secret: str, auth_url: str, token_url: str, revoke_url: str):
        self.client_id, self.client_secret = client_id, client_secret
        self.auth_url, self.token_url, self.revoke_url = auth_url, token_url, revoke_url

    def _flow(self, redirect_uri: str, code_verifier: str | None = None) -> Flow:
        config = {"web": {"client_id": self.client_id, "client_secret": self.client_secret,
                          "auth_uri": self.auth_url, "token_uri": self.token_url}}
        return Flow.from_client_config(config, scopes=SCOPES, redirect_uri=redirect_uri, code_verifier=code_verifier,
                                       autogenerate_code_verifier=True)

    def start(self, redirect_uri: str, state: str) -> tuple[str, dict[str, Any]]:
        """The consent page's URL, and what finishing needs kept (sealed) until the browser comes back."""
        flow = self._flow(redirect_uri)
        url, _ = flow.authorization_url(state=state, access_type="offline", prompt="consent",
                                        include_granted_scopes="false")
        return url, {"code_verifier": flow.code_verifier, "redirect_uri": redirect_uri}

    def finish(self, kept: dict[str, Any], query: dict[str, str]) -> Tokens:
        """Exchange the code the browser brought back for tokens (the PKCE verifier proves it is our flow)."""
        flow = self._flow(kept["redirect_uri"], kept["code_verifier"])
        flow.fetch_token(code=query["code"], timeout=TIMEOUT)
        credentials = flow.credentials
        granted = set(credentials.granted_scopes or credentials.scopes or [])
        if not set(SCOPES) <= granted:  # granular consent: the box for calendar events was left unticked
            raise GrantRefused("scope_not_granted")
        return Tokens(credentials.token, credentials.refresh_token, aware(credentials.expiry), " ".join(sorted(granted)))

    def refresh(self, refresh_token: str) -> Tokens:
        credentials = Credentials(token=None, refresh_token=refresh_token, token_uri=self.token_url,
                                  client_id=self.client_id, client_secret=self.client_secret)
        session = requests.Session()
        try:
            credentials.refresh(google.auth.transport.requests.Request(session))
        except RefreshError as error:
            data = error.args[1] if len(error.args) > 1 and isinstance(error.args[1], dict) else {}
            if data.get("error") in ("invalid_grant", "unauthorized_client"):
                raise GrantRefused(str(data["error"])) from None
            if data.get("error") == "invalid_client":  # our client id or secret: every grant stands, fix the settings
                raise RuntimeError("Google refused this server's client credentials (invalid_client): "
                                   "check NEXTSLOT_GOOGLE_CLIENT_ID and NEXTSLOT_GOOGLE_CLIENT_SECRET") from None
            raise  # Google is down or slow: try again later, the grant stands
        finally:
            session.close()
        rotated = credentials.refresh_token if credentials.refresh_token != refresh_token else None
        return Tokens(credentials.token, rotated, aware(credentials.expiry))

    def revoke(self, token: str) -> None:
        """Best effort: a disconnect goes ahead whatever Google answers."""
        requests.post(self.revoke_url, data={"token": token}, timeout=TIMEOUT)


def aware(expiry: datetime | None) -> datetime | None:
    return expiry.replace(tzinfo=UTC) if expiry is not None and expiry.tzinfo is None else expiry


class GoogleCalendar:
    """The Google Calendar provider."""

    pushes = True

    def __init__(self, oauth: GoogleOAuth | None, api_url: str):
        self.oauth = oauth
        self.api_url = api_url

    @contextmanager
    def connect(self, source: CalendarSource, allow_private: bool = False) -> Iterator[Any]:
        # the API's URL is our own setting, not the business's: no address check is needed
        # no refreshing in here: a 401 comes back to the engine, which refreshes through the grant
        http = google_auth_httplib2.AuthorizedHttp(Credentials(token=source.access_token),
                                                   http=httplib2.Http(timeout=TIMEOUT), refresh_status_codes=())
        service = build("calendar", "v3", http=http, static_discovery=True, cache_discovery=False,
                        client_options={"api_endpoint": self.api_url})
        try:
            yield service
        finally:
            service.close()

    # --- reading ---------------------------------------------------------------------------------

    def read(self, service: Any, source: CalendarSource, since: SyncState, since_window: Interval | None,
             window: Interval, stored: Callable[[], StoredEvents]) -> Reading:
        items, token, known = None, None, None
        if since_window == window and since.sync_token:
            try:
                items, token = listed(service, source, syncToken=since.sync_token)
            except HttpError as error:
                if error.status_code != 410:  # 410: the token is too old or invalid: read the window afresh
                    raise api_error(error) from None
            if items == []:
                return Reading("unchanged", SyncState(token, None), {}, set(), None)
            if items is not None and not told_enough(items, known := stored()):
                items = None  # the changes cannot say what became of some stored occurrences: the window can
        how = "changes" if items is not None else "window"
        if items is None:
            try:
                items, token = listed(service, source, timeMin=window[0].isoformat(),
                                      timeMax=window[1].isoformat())
            except HttpError as error:
                raise api_error(error) from None
        state = SyncState(token, None)
        known = stored() if known is None else known
        put: StoredEvents = {}
        gone: set[str] = set()
        for item in items:
            if item.get("status") == "cancelled":
                gone.add(item["id"])
                put.pop(item["id"], None)
            else:
                put[item["id"]] = (item.get("etag"), json.dumps(kept(item), sort_keys=True))
                gone.discard(item["id"])
        if how == "window":
            gone |= known.keys() - put.keys()
        if how == "changes" and (series := {i["id"] for i in items if i.get("status") == "cancelled"}):
            # a series deleted as a whole may come back as its own id only, never one of its occurrences' ids
            gone |= {k for k, (_, data) in known.items() if json.loads(data).get("series") in series}
        gone &= known.keys()
        put = {k: v for k, v in put.items() if known.get(k) != v}
        texts = [data for k, (_, data) in known.items() if k not in gone and k not in put]
        return Reading(how, state, put, gone, busy_intervals(texts + [d for _, d in put.values()], source.zone,
                                                             window, source.own))

    # --- writing ---------------------------------------------------------------------------------

    def put(self, service: Any, source: CalendarSource, event: BookingEvent, remote_id: str | None) -> str:
        body = {"id": event_id(event.key), "summary": event.summary, "description": event.description,
                "start": {"dateTime": event.starts_at.isoformat(), "timeZone": event.zone},
                "end": {"dateTime": event.ends_at.isoformat(), "timeZone": event.zone},
                "status": "confirmed", "transparency": "opaque",
                "extendedProperties": {"private": {KEY: event.key}}}
        events, calendar = service.events(), source.calendar_ref or "primary"
        try:
            try:  # a fixed id: a second insert of the same booking is refused with 409, never a duplicate
                return events.insert(calendarId=calendar, body=body, sendUpdates="none").execute()["id"]
            except HttpError as error:
                if error.status_code != 409:
                    raise
            return events.update(calendarId=calendar, eventId=body["id"], body=body,
                                 sendUpdates="none").execute()["id"]
        except HttpError as error:
            raise api_error(error) from None

    def remove(self, service: Any, source: CalendarSource, key: str, remote_id: str | None) -> None:
        calendar = source.calendar_ref or "primary"
        for known in whereabouts(service, calendar, key, remote_id or event_id(key)):
            try:
                service.events().delete(calendarId=calendar, eventId=known, sendUpdates="none").execute()
                return
            except HttpError as error:
                if error.status_code not in (404, 410):  # 404 or 410: not there (any more)
                    raise api_error(error) from None

    # --- push --------------------------------------------------------------------------------------

    def watch(self, service: Any, source: CalendarSource, address: str, channel_id: str, secret: str,
              now: datetime) -> Channel:
        """Ask Google to call `address` when the calendar's events change (at most a week; renewed before)."""
        body = {"id": channel_id, "type": "web_hook", "address": address, "token": secret,
                "params": {"ttl": str(int(timedelta(days=7).total_seconds()))}}
        try:
            made = service.events().watch(calendarId=source.calendar_ref or "primary", body=body).execute()
        except HttpError as error:
            raise api_error(error) from None
        expires = datetime.fromtimestamp(int(made["expiration"]) / 1000, UTC) if made.get("expiration") else \
            now + timedelta(days=7)
        return Channel(made["id"], made.get("resourceId"), expires)

    def unwatch(self, service: Any, source: CalendarSource, channel_id: str, resource: str | None) -> None:
        try:
            service.channels().stop(body={"id": channel_id, "resourceId": resource}).execute()
        except HttpError as error:
            if error.status_code not in (404, 410):
                raise api_error(error) from None

    def account(self, service: Any, calendar_ref: str) -> str | None:
        """The calendar's name (a primary calendar's is its owner's address), read with the events scope."""
        try:
            return service.events().list(calendarId=calendar_ref, maxResults=1).execute().get("summary")
        except HttpError as error:
            raise api_error(error) from None


def listed(service: Any, source: CalendarSource, **query: Any) -> tuple[list[dict[str, Any]], str | None]:
    """Every page of one events.list; the sync token comes with the last page. A page token seen before would
    page forever, so it fails the sync (the last busy time stands), as do more than PAGES pages."""
    items: list[dict[str, Any]] = []
    page_token = None
    seen: set[str] = set()
    for _ in range(PAGES):
        page = service.events().list(calendarId=source.calendar_ref or "primary", singleEvents=True,
                                     maxResults=PAGE, pageToken=page_token, **query).execute()
        items.extend(page.get("items", []))
        page_token = page.get("nextPageToken")
        if not page_token:
            return items, page.get("nextSyncToken")
        if page_token in seen:
            raise RuntimeError("Google Calendar sent the same page token twice")
        seen.add(page_token)
    raise RuntimeError("Google Calendar kept sending pages")


def whereabouts(service: Any, calendar: str, key: str, remote_id: str) -> Iterator[str]:
    """The ids our event may have, tried in turn until one is there: the stored (or key-derived) one, then, only if
    that one is gone, those of the events carrying our key in their private property. A stored id goes stale when
    the event is deleted and the booking's event lives on under another id: it must not stay behind."""
    yield remote_id
    try:
        found = service.events().list(calendarId=calendar, privateExtendedProperty=f"{KEY}={key}",
                                      fields="items(id)").execute()
    except HttpError as error:
        raise api_error(error) from None
    yield from (item["id"] for item in found.get("items", []) if item.get("id") != remote_id)


def told_enough(items: list[dict[str, Any]], known: StoredEvents) -> bool:
    """Whether the changes alone say what became of every stored occurrence they concern. Not when stored events
    carry no series id (stored by a release before round 11: a series deleted as a whole, reported by its own id
    only, cannot be matched to them), nor when a series lists some of its occurrences while others stored are not
    listed (one cut short need not list those it lost). Reading the window once settles both."""
    rows = {k: json.loads(data) for k, (_, data) in known.items()}
    if any("series" not in row for row in rows.values()):
        return False
    listed_ids = {item["id"] for item in items}
    series = {item["recurringEventId"] for item in items
              if item.get("recurringEventId") and item.get("status") != "cancelled"}
    return not any(row["series"] in series and k not in listed_ids for k, row in rows.items())


def api_error(error: HttpError) -> Exception:
    """What a failed call means to the engine; the error's text (which may quote the calendar) is not kept."""
    if error.status_code == 401:
        return TokenRejected("Google refused the access token")
    details = error.error_details if isinstance(error.error_details, list) else []
    reasons = {str(d.get("reason", "")).lower() for d in details if isinstance(d, dict)}
    if error.status_code == 429 or (error.status_code == 403 and reasons & SLOW_DOWN):
        return Throttled(f"Google Calendar answered HTTP {error.status_code} (rate or quota limit)",
                         retry_after(error.resp.get("retry-after"), datetime.now(UTC)))
    return RuntimeError(f"Google Calendar answered HTTP {error.status_code}")


def event_id(key: str) -> str:
    """Google accepts client-chosen ids of base32hex characters (a-v, 0-9): ours is fixed by the booking."""
    return "ns" + hashlib.sha256(key.encode()).hexdigest()[:40]


def kept(item: dict[str, Any]) -> dict[str, Any]:
    """What busy time needs of an event, nothing of its title, description or guests but our own answer."""
    mine = [a for a in item.get("attendees", []) if a.get("self")]
    return {"id": item["id"], "start": item.get("start"), "end": item.get("end"),
            "transparency": item.get("transparency", "opaque"), "eventType": item.get("eventType", "default"),
            "status": item.get("status", "confirmed"), "series": item.get("recurringEventId"),
            "ours": (item.get("extendedProperties") or {}).get("private", {}).get(KEY),
            "declined": bool(mine and mine[0].get("responseStatus") == "declined")}


def busy_intervals(texts: list[str], zone: ZoneInfo, window: Interval, own: frozenset[str]) -> list[Interval]:
    found: list[Interval] = []
    for text in texts:
        event = json.loads(text)
        if (event["transparency"] == "transparent" or event["status"] == "cancelled" or event["declined"]
                or event["ours"] or event["id"] in own or event["eventType"] == "workingLocation"):
            continue
        start, end = moment(event.get("start"), zone), moment(event.get("end"), zone)
        if start is None or end is None or start >= end:
            continue
        if start < window[1] and end > window[0]:
            found.append((start, end))
    return merged(found)


def moment(value: dict[str, Any] | None, zone: ZoneInfo) -> datetime | None:
    """A dateTime is an instant (one without an offset is a wall time of the event's own `timeZone`, as Google
    allows); a date (all-day) is the start of that local day of the resource."""
    if not value:
        return None
    if value.get("dateTime"):
        at = datetime.fromisoformat(value["dateTime"].replace("Z", "+00:00"))
        named = value.get("timeZone")
        own = load_zone(named) if at.tzinfo is None and isinstance(named, str) else None
        return instant(at, own or zone)
    if value.get("date"):
        return instant(date.fromisoformat(value["date"]), zone)
    return None
