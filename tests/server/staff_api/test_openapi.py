"""Requests generated from the /v1 OpenAPI document (schemathesis 4), valid and invalid, with a live key against
the real database: no input makes a server error, and every answer is documented (status, content type, body).

Each case is sent with the app's own TestClient and checked with `case.validate_response`: schemathesis's
`parametrize()` reads `request.node._nodeid`, gone in pytest 9, and its ASGI transport counts connections
through urllib3 internals that urllib3-future (installed here for httpx2) does not have.
"""
from __future__ import annotations

import os

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from nextslot.server.app import create_app
from nextslot.settings import Settings

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection]
# per operation and mode: about 500 requests, 20-40 s; NEXTSLOT_FUZZ_EXAMPLES=150 for a deeper run (5 min)
EXAMPLES = int(os.environ.get("NEXTSLOT_FUZZ_EXAMPLES", "12"))
# the key is sent on every request, so schemathesis does not generate (or drop) the Authorization header itself
CONFIG = {"generation": {"with-security-parameters": False}}


def test_generated_requests_get_documented_answers_and_never_a_server_error(service, make_business, api_key):
    # one key sends every generated request within a minute or two: more than the default per-key rate limit
    # (tested on its own in test_rate_limit), which would answer 429 to the last operations
    app = create_app(Settings(secret_key="staff-api-tests", rate_limit_per_key="100000/minute"), service=service)
    auth = {"Authorization": f"Bearer {api_key(make_business('clinic'))}"}  # a clinic of its own to change at will
    schema = schemathesis.openapi.from_dict(app.openapi(), config=schemathesis.Config.from_dict(CONFIG))
    failures = []
    with TestClient(app, base_url="http://testserver") as client:
        for result in schema.include(path_regex="^/v1/").get_all_operations():
            operation = result.ok()
            modes = [GenerationMode.POSITIVE]
            if operation.body or operation.query:  # a string in the path has no invalid form to try
                modes.append(GenerationMode.NEGATIVE)
            for mode in modes:

                @given(case=operation.as_strategy(generation_mode=mode))
                @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                          suppress_health_check=list(HealthCheck))
                def exercise(case: schemathesis.Case) -> None:
                    request = case.as_transport_kwargs(base_url=str(client.base_url), headers=auth)
                    request.pop("cookies", None)
                    if "data" in request:  # requests' name for a raw body
                        request["content"] = request.pop("data")
                    case.validate_response(client.request(**request), checks=CHECKS, headers=request["headers"])

                try:
                    exercise()
                except BaseException as failure:  # schemathesis reports a group: gather every operation's
                    if isinstance(failure, KeyboardInterrupt):
                        raise
                    failures.append(f"{operation.label} ({mode.value}): {failure}")
    assert not failures, "\n\n".join(failures)
