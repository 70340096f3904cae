"""The edges (HTTP routes, MCP and agent tools) call the core; they never hold a database session or build a query.

import-linter (pyproject.toml) proves they import no table; this proves the rest, which a layer contract cannot
see: no `.session` taken from a unit of work, nothing from SQLAlchemy but its exception types (to map an outage).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import nextslot

PACKAGE = Path(nextslot.__file__).parent
EDGES = sorted([*PACKAGE.glob("server/**/*.py"), *PACKAGE.glob("tools/**/*.py"), PACKAGE / "oauth" / "consent.py"])


def database_reach(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("session", "session_factory"):
            found.append(f"line {node.lineno}: .{node.attr}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy") \
                and node.module != "sqlalchemy.exc":
            found.append(f"line {node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names if a.name.startswith("sqlalchemy")]
    return found


# the worker wiring that hands a session factory to a lease loop or a collector (not a query): named, so the list
# can only shrink
FACTORY_HANDOVERS = {
    "server/twilio_webhooks.py", "server/observability.py", "server/app.py", "server/staff_api/calendars.py",
    "server/calendar_webhooks.py", "server/console/staff_calendar_pages.py",
}


@pytest.mark.parametrize("path", EDGES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_an_edge_reaches_the_database_only_through_the_core(path: Path):
    found = database_reach(ast.parse(path.read_text(), str(path)))
    if str(path.relative_to(PACKAGE)) in FACTORY_HANDOVERS:
        found = [f for f in found if not f.endswith(".session_factory")]
    assert found == [], f"{path.relative_to(PACKAGE)} reaches the database itself: {found}"


def test_the_check_sees_a_session_and_a_query():
    bad = ast.parse("from sqlalchemy import select\nwith service.uow() as uow:\n    uow.session.scalar(1)\n")
    assert database_reach(bad) == ["line 1: from sqlalchemy import ...", "line 3: .session"]
