"""The `nextslot` command, run as a real process against the test database."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx2
import pytest
import yaml
from sqlalchemy.engine import make_url

from nextslot.core.accounts.api_keys import business_for_key
from nextslot.core.accounts.voice_secrets import voice_business
from nextslot.storage import queries
from nextslot.storage.engine import create_database, drop_database
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.conftest import EXAMPLES, free_port


def nextslot(database_url: str, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NEXTSLOT_DATABASE_URL": database_url, **env}
    return subprocess.run([sys.executable, "-m", "nextslot.cli", *args], env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


# every command that opens the configured database; the long-running ones would otherwise start and fail later
DATABASE_COMMANDS = [("mcp", "--business", "x"), ("serve", "--port", "0"), ("scheduler",), ("api-key", "x"),
                     ("load-config", str(EXAMPLES / "garage.yaml")), ("voice-secret", "x", "vapi")]


def refusal(result: subprocess.CompletedProcess[str]) -> dict:
    """The one-line structured error of a refused command (no traceback), after checking the exit code."""
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    [line] = result.stderr.strip().splitlines()
    return json.loads(line)


def test_migrate_is_idempotent(database_url):
    result = nextslot(database_url, "migrate")
    assert result.returncode == 0, result.stderr
    assert "latest schema" in result.stdout


def test_load_config_creates_then_updates_and_api_key_resolves_to_the_business(database_url, session_factory, tmp_path):
    config = tmp_path / "garage.json"
    data = yaml.safe_load((EXAMPLES / "garage.yaml").read_text())
    data["business"]["slug"] = "cli-garage"
    config.write_text(json.dumps(data, default=str))  # JSON is accepted as well as YAML
    created = nextslot(database_url, "load-config", str(config))
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("created cli-garage") and "4 resources, 3 services" in created.stdout
    updated = nextslot(database_url, "load-config", str(config))
    assert updated.stdout.startswith("updated cli-garage")

    key = nextslot(database_url, "api-key", "cli-garage").stdout.strip()
    assert key.startswith("nsk_") and len(key) > 40
    with session_factory() as s:
        business = queries.business_by_slug(s, "cli-garage")
    assert business_for_key(SqlAlchemyUnitOfWork(session_factory), key) == business.id
    assert business_for_key(SqlAlchemyUnitOfWork(session_factory), key + "x") is None


def test_invalid_config_reports_every_problem_as_json_and_writes_nothing(database_url, session_factory, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("business: {slug: bad-one, name: Bad, timezone: Mars/Base}\nresources: []\nservices: []\n")
    result = nextslot(database_url, "load-config", str(config))
    assert result.returncode == 2
    problems = json.loads(result.stderr)
    assert problems["error"] == "invalid_config"
    fields = {p["field"] for p in problems["problems"]}
    assert {"business.timezone", "resources", "services"} <= fields
    with session_factory() as s:
        assert queries.business_by_slug(s, "bad-one") is None


def test_missing_file_and_unknown_business_are_clear_errors(database_url, tmp_path):
    missing = nextslot(database_url, "load-config", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and json.loads(missing.stderr)["error"] == "unreadable_config"
    unknown = nextslot(database_url, "api-key", "no-such-business")
    assert unknown.returncode == 2 and json.loads(unknown.stderr)["error"] == "unknown_business"


def test_voice_secret_generates_vapi_and_elevenlabs_secrets_once_and_needs_the_retell_key(database_url, make_business,
                                                                           session_factory):
    with session_factory() as s:
        slug = queries.business(s, make_business("clinic")).slug
    made = nextslot(database_url, "voice-secret", slug, "vapi")
    assert made.returncode == 0 and len(made.stdout.strip()) > 30
    assert nextslot(database_url, "voice-secret", slug, "vapi").stdout == made.stdout  # shown again, not replaced
    assert nextslot(database_url, "voice-secret", slug, "vapi", "--secret", "mine").stdout.strip() == "mine"
    missing = nextslot(database_url, "voice-secret", slug, "retell")
    assert missing.returncode == 2 and json.loads(missing.stderr)["error"] == "missing_secret"
    assert nextslot(database_url, "voice-secret", slug, "retell", "--secret", "key_abc").stdout.strip() == "key_abc"
    assert voice_business(SqlAlchemyUnitOfWork(session_factory), slug, "vapi").secret == "mine"
    eleven = nextslot(database_url, "voice-secret", slug, "elevenlabs")
    assert eleven.returncode == 0 and len(eleven.stdout.strip()) > 30 and eleven.stdout != made.stdout
    assert voice_business(SqlAlchemyUnitOfWork(session_factory), slug, "elevenlabs").secret == eleven.stdout.strip()


def test_webhook_registers_an_endpoint_and_refuses_bad_input(database_url, make_business, session_factory):
    from nextslot.storage.tables import Business, WebhookEndpoint

    with session_factory() as s:
        slug = s.get(Business, make_business("clinic")).slug
    added = nextslot(database_url, "webhook", slug, "https://crm.example/hooks", "--events",
                     "booking.created,booking.cancelled")
    assert added.returncode == 0, added.stderr
    answer = json.loads(added.stdout)
    assert answer["secret"].startswith("whsec_")
    with session_factory() as s:
        endpoint = s.get(WebhookEndpoint, answer["id"])
        assert endpoint.event_types == ["booking.created", "booking.cancelled"] and endpoint.active
    for args in ((slug, "not a url"), (slug, "https://x.example", "--events", "booking.teleported"),
                 ("no-such-business", "https://x.example")):
        refused = nextslot(database_url, "webhook", *args)
        assert refused.returncode == 2 and json.loads(refused.stderr)["error"], refused.stderr


def test_ics_feed_prints_a_private_feed_url(database_url, make_business, session_factory):
    from nextslot.storage.tables import Business

    with session_factory() as s:
        slug = s.get(Business, make_business("clinic")).slug
    made = nextslot(database_url, "ics-feed", slug, "--resource", "dr-patel")
    assert made.returncode == 0, made.stderr
    url = made.stdout.strip()
    assert url.startswith("http://127.0.0.1:8000/ics/") and url.endswith(".ics") and len(url) > 60
    assert nextslot(database_url, "ics-feed", slug, "--resource", "dr-who").returncode == 2


def test_staff_account_takes_the_password_from_stdin_or_makes_one_up(database_url, make_business, session_factory):
    from datetime import UTC, datetime, timedelta

    from nextslot.core.accounts.staff import sign_in
    from nextslot.storage.tables import Business

    business = make_business("clinic")
    with session_factory() as s:
        slug = s.get(Business, business).slug
    env = {**os.environ, "NEXTSLOT_DATABASE_URL": database_url}
    typed = subprocess.run([sys.executable, "-m", "nextslot.cli", "staff-account", slug, "boss@clinic.example",
                            "--role", "owner", "--password-stdin"], input="a long secret phrase\n", env=env,
                           capture_output=True, text=True, timeout=120)
    assert typed.returncode == 0, typed.stderr
    assert "password" not in json.loads(typed.stdout)
    made_up = json.loads(nextslot(database_url, "staff-account", slug, "desk@clinic.example").stdout)
    now, shift = datetime.now(UTC), timedelta(hours=1)
    uow = SqlAlchemyUnitOfWork(session_factory)
    assert sign_in(uow, business, "boss@clinic.example", "a long secret phrase", now, shift)[1].role == "owner"
    assert sign_in(uow, business, "desk@clinic.example", made_up["password"], now, shift)[1].role == "staff"
    for args in (("no-such-business", "x@example.com"), (slug, "desk@clinic.example")):
        refused = nextslot(database_url, "staff-account", *args)
        assert refused.returncode == 2 and json.loads(refused.stderr)["error"] in ("unknown_business", "email_taken")


def test_load_config_refuses_a_template_that_fails_to_render_and_writes_nothing(database_url, session_factory,
                                                                                tmp_path):
    data = yaml.safe_load((EXAMPLES / "clinic.yaml").read_text())
    data["business"]["slug"] = "cli-bad-template"
    data["business"]["details"]["templates"] = {"en": {"reminder": "{{ name|upper + 1 }}"}}
    config = tmp_path / "clinic.yaml"
    config.write_text(yaml.safe_dump(data))
    result = nextslot(database_url, "load-config", str(config))
    assert result.returncode == 2
    error = json.loads(result.stderr)
    assert error["error"] == "invalid_config" and error["problems"] == [
        {"field": "business.details.templates.en.reminder", "message": "it fails when rendered (TypeError)"}]
    with session_factory() as s:
        assert queries.business_by_slug(s, "cli-bad-template") is None


@pytest.mark.parametrize("args", [*DATABASE_COMMANDS, ("migrate",)], ids=lambda a: a[0])
def test_a_database_that_cannot_be_reached_is_one_clear_line_and_exit_code_2(args):
    down = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nextslot"
    error = refusal(nextslot(down, *args, timeout=30))
    assert error["error"] == "database_unreachable" and "Connection refused" in error["message"]


@pytest.fixture(scope="module")
def unmigrated_url(database_url):
    url = make_url(database_url).set(database=make_url(database_url).database + "_blank")
    url = url.render_as_string(hide_password=False)
    create_database(url)
    yield url
    drop_database(url)


@pytest.mark.parametrize("args", DATABASE_COMMANDS, ids=lambda a: a[0])
def test_a_database_without_the_schema_says_to_migrate_and_exits_2(unmigrated_url, args):
    error = refusal(nextslot(unmigrated_url, *args, timeout=30))
    assert error["error"] == "database_not_migrated" and "nextslot migrate" in error["message"]


def test_serve_refuses_local_payments_with_deposits_on_a_public_url(database_url, make_business):
    make_business("garage")  # its van hire asks a deposit
    error = refusal(nextslot(database_url, "serve", "--port", str(free_port()), timeout=30,
                             NEXTSLOT_PUBLIC_URL="https://book.example.com"))
    assert error["error"] == "local_payments_in_public" and "NEXTSLOT_PAYMENT_PROVIDER=stripe" in error["message"]


@pytest.mark.parametrize("public_url, allowed, warned", [
    ("https://book.example.com", "true", True),  # said on purpose: it starts, and says loudly what it does
    ("http://localhost:8000", "false", False),  # the demo and tests: nobody else can pay there
])
def test_serve_starts_with_local_payments_when_allowed_or_on_loopback(database_url, make_business, public_url,
                                                                      allowed, warned):
    make_business("garage")
    port = free_port()
    env = {**os.environ, "NEXTSLOT_DATABASE_URL": database_url, "NEXTSLOT_PUBLIC_URL": public_url,
           "NEXTSLOT_ALLOW_LOCAL_PAYMENTS": allowed}
    server = subprocess.Popen([sys.executable, "-m", "nextslot.cli", "serve", "--port", str(port)], env=env,
                              stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        for _ in range(300):
            assert server.poll() is None, server.stderr.read()
            try:
                if httpx2.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx2.TransportError:
                time.sleep(0.1)
        else:
            raise AssertionError("the server did not answer /health in 30 s")
    finally:
        server.terminate()
        stderr = server.communicate(timeout=30)[1]
    assert ("NO MONEY TAKEN" in stderr) is warned, stderr


def test_a_setting_that_cannot_be_read_is_one_clear_line_naming_it(database_url):
    error = refusal(nextslot(database_url, "serve", timeout=30, NEXTSLOT_RATE_LIMIT_PER_KEY="lots",
                             NEXTSLOT_POOL_SIZE="ten"))
    assert error["error"] == "invalid_settings"
    assert "NEXTSLOT_RATE_LIMIT_PER_KEY" in error["message"] and "NEXTSLOT_POOL_SIZE" in error["message"]
