"""OpenTelemetry tracing: off unless NEXTSLOT_OTEL_ENDPOINT names an OTLP/HTTP collector.

`serve` traces every request (FastAPI), every SQL statement (SQLAlchemy) and every outgoing HTTP call (httpx2:
webhooks, calendars); the scheduler traces each job run and each message or webhook it sends, with the request id
of the request that wrote the row. Spans carry no customer data: ids, kinds, channels and outcomes only (the
SQLAlchemy spans hold statements with their placeholders, not the values).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace

from nextslot.redaction import redact_path
from nextslot.telemetry.context import current_request_id

tracer = trace.get_tracer("nextslot")


def start_tracing(endpoint: str | None, service_name: str, role: str) -> Any | None:
    """Install the process's tracer provider exporting to `endpoint` (its /v1/traces) and instrument httpx2; None
    when no endpoint is set (the API's no-op tracer stays in place, costing nothing)."""
    if not endpoint:
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service_name, "nextslot.role": role}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url(endpoint))))
    trace.set_tracer_provider(provider)
    HTTPX2ClientInstrumentor().instrument(tracer_provider=provider)  # our outgoing calls use httpx2
    return provider


def traces_url(endpoint: str) -> str:
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else f"{endpoint}/v1/traces"


def trace_app(app: Any, provider: Any) -> None:
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls="/health,/ready,/metrics",
                                       server_request_hook=without_secrets)


URL_KEYS = ("http.target", "url.path", "http.url", "url.full", "url.query")


def without_secrets(span: Any, scope: dict[str, Any]) -> None:
    """A request's span names its path as the access log does (a link's token cut short) and no query string: the
    instrumentation writes both whole, with manage and feed tokens, OAuth codes and customers' phone numbers."""
    if span is None or not span.is_recording():
        return
    path = redact_path(scope.get("path", ""))
    host = dict(scope.get("headers") or ()).get(b"host", b"").decode("latin-1")
    url = f"{scope.get('scheme', 'http')}://{host}{path}"
    present = getattr(span, "attributes", None)  # the SDK's spans show theirs: only those are written over
    for key, value in zip(URL_KEYS, (path, path, url, url, "")):
        if present is None or key in present:
            span.set_attribute(key, value)


def trace_engine(engine: Any, provider: Any) -> None:
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    # declared for SQLAlchemy < 2.1; its engine events are the same in 2.1 (checked by the tracing test)
    SQLAlchemyInstrumentor().instrument(engine=engine, tracer_provider=provider, enable_commenter=False,
                                        skip_dep_check=True)


@contextmanager
def span(name: str, **attributes: str | int | float | bool | None) -> Iterator[None]:
    """A span of our own (a job run, one send), tagged with the bound request id."""
    request_id = current_request_id()
    tags = {f"nextslot.{k}": v for k, v in attributes.items() if v is not None}
    if request_id:
        tags["nextslot.request_id"] = request_id
    with tracer.start_as_current_span(name, attributes=tags):
        yield


def tag_request(request_id: str) -> None:
    """Put the request id on the current (server) span."""
    current = trace.get_current_span()
    if current.is_recording():
        current.set_attribute("nextslot.request_id", request_id)


def trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
