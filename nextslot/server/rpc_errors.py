"""Refusals on /mcp in JSON-RPC's shape: the SDK's client hands such a body to the caller as is, but turns any
other error answer into a bare "Server returned an error response"."""
from __future__ import annotations

import re
from typing import Any

from starlette.responses import JSONResponse

PUBLIC_MCP = re.compile(r"^/b/([^/]+)/mcp/?$")  # a customer's own assistant (public_mcp.py)
SERVER_ERROR = -32000  # JSON-RPC's range for implementation-defined server errors; ours say which in data.code


def rpc_error(status: int, code: str, message: str, headers: dict[str, str] | None = None,
              **data: Any) -> JSONResponse:
    body = {"jsonrpc": "2.0", "id": None, "error": {"code": SERVER_ERROR, "message": message,
                                                    "data": {"code": code, **data}}}
    return JSONResponse(body, status_code=status, headers=headers)


def speaks_json_rpc(path: str) -> bool:
    """An MCP endpoint: /mcp, or a business's public /b/{slug}/mcp."""
    return path.startswith("/mcp") or PUBLIC_MCP.match(path) is not None
