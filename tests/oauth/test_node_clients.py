"""The MCP project's own Node tools against a running server: the conformance suite's server scenarios that apply
(on the public endpoint, which needs no key, and is the same server code as /mcp), and the Inspector CLI on /mcp
with an API key and with an OAuth access token.

Optional: they need Node 22 and npm packages that `make test` does not install. `make mcp-tools` installs them
into .mcp-tools/ (pinned versions); then `NEXTSLOT_MCP_TOOLS=.mcp-tools pytest tests/oauth/test_node_clients.py`.
The conformance suite's auth scenarios (0.1.16) all test MCP *clients* against its own authorization server; none
exercises a server's authorization, which tests/oauth covers with the `mcp` package's client.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from nextslot.tools.registry import TOOLS as TOOL_SPECS
from tests.oauth.conftest import Shop
from tests.oauth.test_refusals import approved, redeem

TOOLS = Path(os.environ["NEXTSLOT_MCP_TOOLS"]).resolve() if os.environ.get("NEXTSLOT_MCP_TOOLS") else None
pytestmark = [pytest.mark.anyio,
              pytest.mark.skipif(TOOLS is None, reason="NEXTSLOT_MCP_TOOLS not set (make mcp-tools installs them)")]
# the Inspector looks for its package.json at ../package.json from the working directory, then imports that path
# from its own file: the two agree only when it runs from its build directory
INSPECTOR = TOOLS / "node_modules/@modelcontextprotocol/inspector-cli/build" if TOOLS else Path()
SCENARIOS = ("server-initialize", "ping", "tools-list", "resources-list", "prompts-list", "dns-rebinding-protection")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def node(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    assert TOOLS is not None
    binary = next((TOOLS / "node_modules").glob("node-linux-*/bin/node"))
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=180, cwd=cwd or TOOLS)


def inspector(url: str, *args: str) -> dict:
    assert TOOLS is not None
    done = node(str(INSPECTOR / "index.js"), url, "--transport", "http", *args, cwd=INSPECTOR)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def test_the_conformance_suites_server_scenarios_that_apply_pass(oauth_server, shop):
    place: Shop = shop()
    assert TOOLS is not None
    runner = str(TOOLS / "node_modules/@modelcontextprotocol/conformance/dist/index.js")
    with oauth_server() as server:
        results = {name: node(runner, "server", "--url", f"{server.url}/b/{place.slug}/mcp", "--scenario", name)
                   for name in SCENARIOS}
    for name, done in results.items():
        assert done.returncode == 0 and " 0 failed" in done.stdout, f"{name}:\n{done.stdout}{done.stderr}"


async def test_the_inspector_cli_lists_and_calls_tools_with_a_key_and_with_an_oauth_token(
        oauth_server, shop, api_key):
    place: Shop = shop()
    with oauth_server() as server:
        url = f"{server.url}/mcp"
        key = api_key(place.id)
        listed = inspector(url, "--header", f"Authorization: Bearer {key}", "--method", "tools/list")
        found = inspector(url, "--header", f"Authorization: Bearer {key}", "--method", "tools/call",
                          "--tool-name", "find_available_slots", "--tool-arg", "service=consultation")
        client, code, verifier = await approved(server.url, place, place.owner, ["availability:read"])
        token = (await redeem(server.url, client, code, verifier)).json()["access_token"]
        scoped = inspector(url, "--header", f"Authorization: Bearer {token}", "--method", "tools/list")
        refused = inspector(url, "--header", f"Authorization: Bearer {token}", "--method", "tools/call",
                            "--tool-name", "cancel_appointment", "--tool-arg", "code=ABCDEF")
        unauthenticated = node(str(INSPECTOR / "index.js"), url, "--transport", "http", "--method", "tools/list",
                               cwd=INSPECTOR)
    assert {t["name"] for t in listed["tools"]} == set(TOOL_SPECS) and all(t["annotations"] for t in listed["tools"])
    assert not found.get("isError") and found["structuredContent"]["slots"]
    assert {t["name"] for t in scoped["tools"]} == {"list_services", "get_business_info", "find_available_slots"}
    assert refused["isError"] and json.loads(refused["content"][0]["text"])["error"]["code"] == "insufficient_scope"
    assert unauthenticated.returncode != 0 and "invalid_token" in unauthenticated.stdout + unauthenticated.stderr
