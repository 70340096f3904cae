"""`nextslot up`: one command to a running system on a developer's machine.

Starts the embedded PostgreSQL (or uses NEXTSLOT_DATABASE_URL), migrates, loads the example businesses into an
empty database, then runs one `nextslot serve` and one `nextslot scheduler` as child processes until Ctrl-C
(or SIGTERM), which stops both. Prints what a newcomer needs: the MCP URL with a fresh API key, a
claude_desktop_config.json entry, the booking page, a console sign-in, and where messages go (with no Twilio or
SMTP configured: the local outbox at /outbox).
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx2

from nextslot.cli.common import add_command, refuse
from nextslot.settings import Settings

CHECKOUT_EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"
DEMO_OWNER = "owner@{slug}.example"
STOP_GRACE_SECONDS = 20.0


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    from nextslot.storage.engine import resolve_database_url
    from nextslot.storage.migrate import upgrade

    url = resolve_database_url(settings)  # the embedded server lives as long as this process
    upgrade(url)
    setup = prepare(settings, url, Path(args.examples) if args.examples else None)
    if isinstance(setup, int):
        return setup
    public_url = os.environ.get("NEXTSLOT_PUBLIC_URL") or f"http://{args.host}:{args.port}"
    local_outbox = not (settings.twilio_account_sid or settings.smtp_host) or settings.local_outbox
    metrics_token = settings.metrics_token or secrets.token_urlsafe(24)
    env = {**os.environ, "NEXTSLOT_DATABASE_URL": url, "NEXTSLOT_PUBLIC_URL": public_url,
           "NEXTSLOT_DATA_DIR": str(Path(settings.data_dir).resolve()),
           "NEXTSLOT_LOCAL_OUTBOX": "true" if local_outbox else "false", "NEXTSLOT_METRICS_TOKEN": metrics_token,
           "NEXTSLOT_LOG_FORMAT": os.environ.get("NEXTSLOT_LOG_FORMAT", "text"),  # a terminal, not a log shipper
           # one /metrics for both processes: each writes its samples here, the server reports them all
           "PROMETHEUS_MULTIPROC_DIR": str(fresh_folder(Path(settings.data_dir).resolve() / "metrics"))}
    children = Children(env)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        server = children.start("server", "serve", "--host", args.host, "--port", str(args.port))
        children.start("scheduler", "scheduler")
        if not wait_ready(f"http://{args.host}:{args.port}/health", server, stop):
            if stop.is_set():
                return 0
            print(json.dumps({"error": "server_not_started", "message": "The server did not answer /health; "
                              "its output is above."}), file=sys.stderr)
            return 1
        print(banner(settings, url, public_url, setup, local_outbox, metrics_token), flush=True)
        while not stop.wait(0.5):
            if (gone := children.exited()) is not None:
                print(json.dumps({"error": "process_exited", "message": f"The {gone} stopped on its own; stopping "
                                  "the rest."}), file=sys.stderr)
                return 1
        print("\nstopping the server and the scheduler ...", flush=True)
        return 0
    finally:
        children.stop_all()


class Setup:
    """What `up` made for this run: the business shown, a fresh API key, a console sign-in."""

    def __init__(self, slug: str, name: str, key: str, email: str, password: str, loaded: list[str]):
        self.slug, self.name, self.key, self.email, self.password, self.loaded = slug, name, key, email, password, loaded


def prepare(settings: Settings, url: str, examples: Path | None) -> Setup | int:
    """Load the examples into an empty database; a fresh API key and console password for the first business."""
    import secrets

    import yaml
    from sqlalchemy import select

    from nextslot.core.accounts.api_keys import create_api_key
    from nextslot.core.accounts.staff import create_account, reset_password
    from nextslot.core.business.config import apply_config
    from nextslot.core.results import Rejected
    from nextslot.schemas.config import BusinessConfig
    from nextslot.storage.engine import build_session_factory, engine_for
    from nextslot.storage.tables import Business
    from nextslot.storage.uow import SqlAlchemyUnitOfWork

    engine = engine_for(url, pool_size=2)
    try:
        factory = build_session_factory(engine)
        with factory() as s:
            empty = s.scalar(select(Business.id).limit(1)) is None
        loaded = []
        if empty:
            folder = examples or (CHECKOUT_EXAMPLES if CHECKOUT_EXAMPLES.is_dir() else Path("examples"))
            for path in sorted(folder.glob("*.yaml")):
                applied = apply_config(SqlAlchemyUnitOfWork(factory),
                                       BusinessConfig.model_validate(yaml.safe_load(path.read_text())))
                if isinstance(applied, Rejected):
                    return refuse(applied.code, f"{path.name}: {applied.message}", applied.field, applied.problems)
                loaded.append(applied.slug)
        with factory() as s:
            business = (s.scalars(select(Business).where(Business.slug == "riverside-clinic")).one_or_none()
                        or s.scalars(select(Business).order_by(Business.id).limit(1)).one_or_none())
        if business is None:
            return refuse("no_business", "The database has no business and no examples were found: pass "
                          "--examples DIR, or `nextslot load-config FILE` first.")
        key = create_api_key(SqlAlchemyUnitOfWork(factory), business.id, "nextslot up")
        email, password = DEMO_OWNER.format(slug=business.slug), secrets.token_urlsafe(12)
        # a fresh password at every start: the demo owner's sign-in is always the one printed
        if not reset_password(SqlAlchemyUnitOfWork(factory), business.id, email, password):
            created = create_account(SqlAlchemyUnitOfWork(factory), business.id, email, "Demo owner", "owner",
                                     password)
            if isinstance(created, Rejected):
                return refuse(created.code, created.message, created.field)
        return Setup(business.slug, business.name, key, email, password, loaded)
    finally:
        engine.dispose()


def fresh_folder(path: Path) -> Path:
    """An empty folder (the last run's metric files would add up with this run's)."""
    import shutil

    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def banner(settings: Settings, url: str, public_url: str, setup: Setup, local_outbox: bool,
           metrics_token: str) -> str:
    from sqlalchemy.engine import make_url

    base = public_url.rstrip("/")
    desktop = {"mcpServers": {setup.slug: {
        "command": sys.executable, "args": ["-m", "nextslot.cli", "mcp"],
        "env": {"NEXTSLOT_API_KEY": setup.key, "NEXTSLOT_DATABASE_URL": url,
                "NEXTSLOT_DATA_DIR": str(Path(settings.data_dir).resolve())}}}}
    where = (f"embedded PostgreSQL in {Path(settings.data_dir).resolve() / 'pgdata'}" if not settings.database_url
             else make_url(url).render_as_string(hide_password=True))
    messages = (f"no Twilio or SMTP configured: messages are kept, not sent, at {base}/outbox "
                f"(and in {Path(settings.data_dir).resolve() / 'outbox.jsonl'})" if local_outbox
                else "sent through the configured Twilio and SMTP settings")
    loaded = f"loaded the examples: {', '.join(setup.loaded)}\n" if setup.loaded else ""
    return (f"\n{loaded}nextslot is running (Ctrl-C stops the server and the scheduler)\n"
            f"  database:      {where}\n"
            f"  booking page:  {base}/b/{setup.slug}\n"
            f"  console:       {base}/console/{setup.slug}  sign in as {setup.email} / {setup.password}\n"
            f"  MCP (HTTP):    {base}/mcp  with the header  Authorization: Bearer {setup.key}\n"
            f"  messages:      {messages}\n"
            f"  health:        {base}/health, {base}/ready\n"
            f"  metrics:       {base}/metrics  with the header  Authorization: Bearer {metrics_token}\n"
            f"\nclaude_desktop_config.json (MCP over stdio, for {setup.name}; the key is new for this run):\n"
            f"{json.dumps(desktop, indent=2)}\n")


def wait_ready(health_url: str, server: subprocess.Popen, stop: threading.Event, timeout: float = 90) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop.is_set() and server.poll() is None:
        try:
            if httpx2.get(health_url, timeout=2).status_code == 200:
                return True
        except httpx2.HTTPError:
            pass
        stop.wait(0.3)
    return False


class Children:
    """The server and scheduler processes: each in its own process group, so a Ctrl-C reaches only `up`, which
    passes one SIGINT on (a second one would make uvicorn skip its clean shutdown)."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-m", "nextslot.cli", *args], env=self.env,
                                   start_new_session=True, preexec_fn=_die_with_parent)
        self.processes[name] = process
        return process

    def exited(self) -> str | None:
        return next((name for name, p in self.processes.items() if p.poll() is not None), None)

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for process in self.processes.values():
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM if `up` itself is killed outright, so nothing is left running."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def register(sub) -> None:
    p = add_command(sub, "up", cmd_up, "start everything on this machine: database, migrations, the examples, a "
                    "server and a scheduler (Ctrl-C stops them)", needs_schema=False)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--examples", help="folder of business configs loaded into an empty database "
                                      "(default: the checkout's examples/)")
