"""Typed settings, read once from the environment (prefix NEXTSLOT_) and passed down."""
import os
from pathlib import Path
from typing import Literal

from limits import parse
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NEXTSLOT_", extra="ignore")

    # Unset: an embedded PostgreSQL is started with its data under data_dir.
    database_url: str | None = None
    data_dir: Path = Path(".nextslot")
    database_name: str = "nextslot"
    # a streaming replica of database_url: availability reads (slot searches, the public slot grid, calendars)
    # go there; every write and every check inside a write stay on the primary. Unset: all on the primary
    read_database_url: str | None = None
    pool_size: int = 10
    # one tenant's units of work of one process at the database at once; the rest wait their turn, and one place
    # more is kept for the other tenants (storage/gate.py). Unset: twice the cores this process may run on
    # (`database_places`): PostgreSQL gets the most done with about twice its cores busy (set it from the database
    # server's cores when that is another machine)
    database_concurrency: int | None = Field(None, ge=1)
    # one tenant's requests in progress at once in one process (a business by its slug or API key, else a client
    # address); the rest wait in line and another tenant's go first (server/admission.py)
    tenant_concurrency: int = Field(10, ge=1)
    # how long a thread runs Python before another may (Python's default is 5 ms): a request waiting on the
    # database wants the interpreter back for a moment after each answer, and behind another tenant's busy threads
    # it waited up to this long each time (runtime.settle_after_start_up)
    thread_switch_ms: float = Field(0.5, gt=0, le=100)
    hold_minutes: int = 5
    # where clients reach this server (MCP's auth metadata names it)
    public_url: str = "http://127.0.0.1:8000"
    # DNS-rebinding protection for /mcp, always on: public_url's host and origin and loopback at the server's
    # port are accepted; these add more, e.g. ["app:8000"] (a proxy's upstream name), ["https://app.example.com"]
    mcp_allowed_hosts: list[str] = []
    mcp_allowed_origins: list[str] = []
    # OAuth clients identified by a metadata document's URL: hosts whose documents may be fetched although they
    # resolve to a private address (an in-house app); every other host must resolve to public addresses only
    oauth_trusted_client_hosts: list[str] = []
    # reminders: how often the scheduler looks for due messages, how long a receipt may take
    dispatch_interval_seconds: float = 2.0
    receipt_timeout_minutes: int = 15
    # after transient channel trouble (network, Twilio 5xx, SMTP 4xx) the first retry waits this long, then doubling
    message_retry_seconds: float = 30.0
    # Twilio SMS and WhatsApp: each is built when the account and its from-number are set
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_sms_from: str | None = None
    twilio_whatsapp_from: str | None = None  # E.164, with or without "whatsapp:"
    twilio_api_url: str | None = None  # instead of https://api.twilio.com, e.g. a local fake
    # email through an SMTP relay: built when host and sender are set
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_sender: str | None = None
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    # a channel not configured above writes its messages to data_dir/outbox.jsonl instead, shown at /outbox to
    # loopback clients: for a developer's machine (`nextslot up` turns it on when no Twilio or SMTP is set)
    local_outbox: bool = False
    # staff members' calendars (CalDAV, Google, Microsoft 365): how often the scheduler reads them; with push on,
    # Google and Microsoft are asked to call public_url's /webhooks/calendars/... on a change (https only, unless
    # allow_private_targets), and such a calendar is read within seconds
    calendar_sync_minutes: int = 5
    calendar_push: bool = True
    # Google Calendar: an OAuth client (web application) of a Google Cloud project with the Calendar API on;
    # the URLs are Google's unless a test points them at a fake
    google_client_id: str | None = None
    google_client_secret: str | None = None
    google_auth_url: str = "https://accounts.google.com/o/oauth2/auth"
    google_token_url: str = "https://oauth2.googleapis.com/token"
    google_revoke_url: str = "https://oauth2.googleapis.com/revoke"
    google_calendar_api_url: str = "https://www.googleapis.com/calendar/v3/"
    # Microsoft 365: an app registration in Microsoft Entra ID (delegated Calendars.ReadWrite); tenant "common"
    # takes work, school and personal accounts
    microsoft_client_id: str | None = None
    microsoft_client_secret: str | None = None
    microsoft_tenant: str = "common"
    microsoft_login_url: str = "https://login.microsoftonline.com"
    microsoft_graph_url: str = "https://graph.microsoft.com/v1.0"
    # signs customers' manage links and pay links; unset: a random key kept in data_dir/secret_key
    secret_key: str | None = None
    # deposits: "local" (a built-in checkout page, for the demo and tests) or "stripe" (Stripe Checkout)
    payment_provider: Literal["local", "stripe"] = "local"
    # `serve` refuses the local provider (no money taken) with deposits asked and a public URL off loopback,
    # unless this says it is on purpose (a staging server); then it warns at every start
    allow_local_payments: bool = False
    stripe_api_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None  # instead of https://api.stripe.com, e.g. a local fake
    # /v1 and /mcp: requests per API key (or per address without one), in any `limits` notation ("100/second")
    rate_limit_per_key: str = "600/minute"
    # how long a server process trusts that an API key it checked is still live (0: ask the database every time);
    # a key revoked in the database is refused by every process at most this long after
    api_key_cache_seconds: float = Field(5.0, ge=0, le=60)
    # slot searches per business, whichever way they come (agents' tools, voice, /v1, the booking pages, chats),
    # so one business hammering availability cannot slow the others; past it, `rate_limited` with a wait
    rate_limit_slot_searches_per_business: str = "600/minute"
    # the staff console: how long a sign-in lasts (a shift), then the console asks again
    console_session_hours: float = 12
    # the largest request body any route reads (pages, console, /v1, /mcp, webhooks); larger ones get 413
    max_body_bytes: int = 1_000_000
    # webhook endpoints and CalDAV calendars on loopback, private or link-local addresses (a self-hosted
    # receiver on the office network, the tests' fakes); off: such URLs are refused and never called
    allow_private_targets: bool = False
    # conversations over SMS and WhatsApp: the model behind any OpenAI-compatible endpoint (unset model: the
    # guided flow with numbered choices answers everyone); a business can override model, base URL and the
    # name of the environment variable holding its key in `details.conversations`
    conversation_model: str | None = None
    conversation_base_url: str | None = None
    conversation_api_key: str | None = None
    conversation_model_timeout_seconds: float = 12.0  # then the guided flow answers that message
    conversation_max_model_calls: int = 40  # per conversation; then the guided flow, with a word why
    conversation_daily_model_calls: int = 2000  # per business per day (UTC)
    conversation_max_tokens: int = 200_000  # the model's tokens (prompt and completion) per conversation
    conversation_daily_tokens: int = 5_000_000  # per business per day (UTC)
    conversation_messages_per_number: int = 30  # inbound per number and business per hour; past it, not answered
    # bookings (a series once) and waitlist places, and holds, each, that one sender's chats make at a business a day
    conversation_bookings_per_day: int = 5
    conversation_message_attempts: int = 3  # tries at answering one message; then a person takes the conversation
    conversation_retry_seconds: float = 10  # before the next try at a message whose answering failed
    conversation_history_messages: int = 12  # texts in and out given to the model
    conversation_idle_minutes: float = 30  # a conversation quiet this long is over; the next message starts anew
    # the public ways in (the booking page, /b/{slug}/mcp, the voice lines, the web chat), so one party cannot fill
    # a calendar, a waitlist or the holds, or have many messages sent to numbers of its choosing:
    # bookings (a series once) and waitlist places one sender makes at a business a day, and holds as many besides;
    # the sender is the client's address (an IPv6 /64) on the page and /b/{slug}/mcp together, the caller id on
    # the voice lines (withheld ones all together); counted in the database per UTC day, shared by every process
    public_bookings_per_day: int = Field(10, ge=1)
    # bookings (a series once) and waitlist places one phone or email may have from those ways in that are still
    # ahead or were made in the last 24 hours, whoever asks; counted in the database
    public_bookings_per_contact: int = Field(5, ge=1)
    # the most occurrences of a recurring series booked from those ways in (the service's own limit when lower)
    public_series_max: int = Field(12, ge=1, le=52)
    # active webhook endpoints a business may have: each event is written for and sent to each one
    webhook_endpoints_max: int = Field(20, ge=1)

    # Prometheus /metrics: on the app's own port behind `Authorization: Bearer <metrics_token>`, and/or on a port of
    # its own (metrics_port, bound to metrics_host; the token is asked there too when set). Neither set: no /metrics.
    # The scheduler has no HTTP server: it serves metrics on metrics_port only.
    metrics_token: str | None = None
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"

    # retention, applied daily by the scheduler (and `nextslot retention`): message texts (sent messages, replies,
    # conversation messages) emptied after this many days, closed conversations deleted after this many; unset: kept
    retention_message_days: int | None = None
    retention_conversation_days: int | None = None
    # `serve` and `scheduler` log to stderr: one JSON object a line with the request id (json), or plain text
    log_format: Literal["json", "text"] = "json"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # OpenTelemetry traces over OTLP/HTTP to this collector (e.g. http://otel-collector:4318); unset: no tracing
    otel_endpoint: str | None = None
    otel_service_name: str = "nextslot"

    def database_places(self) -> int:
        """One more than database_concurrency, or than twice the cores this process may run on (a container's CPU
        set, not the host's count), at most pool_size: one tenant may hold all of them but one."""
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return min(self.pool_size, (self.database_concurrency or 2 * cores) + 1)

    @field_validator("rate_limit_per_key", "rate_limit_slot_searches_per_business")
    @classmethod
    def _a_rate(cls, value: str) -> str:
        parse(value)  # "600/minute"; a ValueError here names the setting at start, not on the first request
        return value
