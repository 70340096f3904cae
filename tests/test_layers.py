"""The edges (HTTP routes, MCP and agent tools) call the core; they never hold a database session or build a query.

import-linter (pyproject.toml) proves they import no table; this proves the rest, which a layer contract cannot
see: no `.session` taken from a unit of work, nothing from SQLAlchemy but its exception types (to map an outage).
And the core's own functions take the unit of work, never a session or a session factory.
"""
from __future__ import annotations

import ast
import re
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


# --- the core takes the unit of work, never a session ---------------------------------------------------------

CORE = PACKAGE / "core"
# the bridge from a capability's own session (the lease loop's callbacks) to the core's functions
BRIDGE = {("lent.py", "lent")}
# the facade is built from the session factory its units of work open, which the edges' workers share
FACADE = {("service.py", "BookingService.__init__")}


def is_session(parameter: ast.arg) -> bool:
    return parameter.arg in ("session", "session_factory") or parameter.annotation is not None and bool(
        re.search(r"\bSession\b|sessionmaker", ast.unparse(parameter.annotation)))


def session_parameters(tree: ast.AST) -> list[str]:
    """`function(parameter)` for every parameter named or annotated as a session or a session factory."""
    found = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                arguments = child.args.posonlyargs + child.args.args + child.args.kwonlyargs
                found.extend(f"{prefix}{child.name}({a.arg})" for a in arguments if is_session(a))
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


@pytest.mark.parametrize("path", sorted(CORE.rglob("*.py")), ids=lambda p: str(p.relative_to(CORE)))
def test_a_core_function_takes_the_unit_of_work_never_a_session(path: Path):
    where = str(path.relative_to(CORE))
    allowed = {name for file, name in BRIDGE | FACADE if file == where}
    found = [f for f in session_parameters(ast.parse(path.read_text(), str(path))) if f.split("(")[0] not in allowed]
    assert found == [], f"core/{where} takes a session, not the unit of work: {found}"


def test_the_core_check_sees_a_session_by_name_or_type():
    code = ("def a(uow: SqlAlchemyUnitOfWork, signed_in: StaffSession): ...\n"
            "def b(session, n: int): ...\n"
            "class C:\n    def __init__(self, f: sessionmaker[Session]):\n        def d(s: Session): ...\n")
    assert session_parameters(ast.parse(code)) == ["b(session)", "C.__init__(f)", "C.__init__.d(s)"]
