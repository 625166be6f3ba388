"""OpenTelemetry traces, off unless the standard `OTEL_*` variables configure them.

On when `OTEL_TRACES_EXPORTER` names an exporter (`otlp`, `console`) or an OTLP endpoint
is set (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: OTLP over
HTTP/protobuf); `OTEL_SDK_DISABLED=true` turns it off whatever else is set. The exporter
reads its other standard variables (headers, timeout, …) itself.

One trace per HTTP request (its server span), with children:

- `graphql.operation` around each operation, and `graphql.parse`, `graphql.validate`,
  `graphql.execute` in it (a schema extension with these four hooks only: no span per
  resolver);
- `SQL <KIND>` per statement the engine sends (the kind only: never the text or its
  parameters);
- `registry POST` per upstream HTTP call, whose request carries the W3C `traceparent`
  (the trace continues in the registry);
- `trail.write` per access-trail write.

No span attribute carries a value from a document's arguments, its variables or any
record: the operation's name and type, statement kinds, status codes, counts. The name is
an operation of the parsed document (never the raw `operationName` parameter), and only
when it is a GraphQL name of at most 64 characters (gateway/metrics.py). Exceptions are
reported by type only: a span's status is ERROR with the exception's type name as its
description, no span records the exception as an event (a message can quote a driver's
parameters or the caller's text: "Unknown operation named '…'").

Off, nothing is installed: no middleware, no extension, no engine events, and the
registry client and trail writer hold no tracer.

Work outside a request (the live-feed relay's polls, readiness pings) is not traced: a
statement or upstream call opens a span only inside a recording request span.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

from graphql import get_operation_ast
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import Span, SpanKind, StatusCode, Tracer
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import ExecutionContext

from gateway.metrics import operation_label
from gateway.request_ids import FROM_TRUSTED_PROXY, REQUEST_ID
from gateway.settings import Settings

TRACER_NAME = "sisada.gateway"
# Probes and scrapes: a trace every few seconds that says nothing.
UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# Methods named as such; any other token a client sends is "_OTHER" (OTel's convention).
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Tracing:
    """The process's tracer provider (not the global one: each app has its own)."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer: Tracer = provider.get_tracer(TRACER_NAME)

    def shutdown(self) -> None:
        """Export what is buffered, then stop (the app's shutdown)."""
        self.provider.shutdown()


def exporter_names(settings: Settings) -> list[str]:
    """The exporters the OTEL_* settings ask for; none means tracing is off."""
    if settings.otel_sdk_disabled:
        return []
    if settings.otel_traces_exporter:
        names = (name.strip() for name in settings.otel_traces_exporter.split(","))
        return [name for name in names if name and name != "none"]
    if settings.otel_exporter_otlp_endpoint or settings.otel_exporter_otlp_traces_endpoint:
        return ["otlp"]
    return []


def tracing_from_settings(settings: Settings, exporter: SpanExporter | None = None
                          ) -> Tracing | None:
    """Tracing as configured, or None (off). `exporter` is the tests' seam: spans go to it
    as each ends (the SDK's InMemorySpanExporter), whatever the settings say."""
    if exporter is not None:
        processors: list[Any] = [SimpleSpanProcessor(exporter)]
    else:
        processors = [BatchSpanProcessor(_exporter(name)) for name in exporter_names(settings)]
        if not processors:
            return None
    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.otel_service_name}))
    for processor in processors:
        provider.add_span_processor(processor)
    return Tracing(provider)


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    # Settings accept otlp, console and none only.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


# -- spans of the request path --


class ServerSpans:
    """ASGI middleware: one SERVER span per HTTP request, the parent of everything the
    request does. A `traceparent` is continued only from a trusted proxy (request_ids)."""

    def __init__(self, app: ASGIApp, tracer: Tracer, paths: frozenset[str]) -> None:
        self.app = app
        self.tracer = tracer
        # Paths of the app's routes: any other path is a caller's text, not named.
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNTRACED_PATHS:
            await self.app(scope, receive, send)
            return
        method = scope["method"] if scope["method"] in KNOWN_METHODS else "_OTHER"
        attributes: dict[str, Any] = {"http.request.method": method}
        path = scope["path"] if scope["path"] in self.paths else None
        if path is not None:
            attributes["http.route"] = path
        if REQUEST_ID in scope:
            attributes["sisada.request_id"] = scope[REQUEST_ID]
        parent = _incoming_context(scope) if scope.get(FROM_TRUSTED_PROXY) else None
        with self.tracer.start_as_current_span(
            f"{method} {path}" if path else method, context=parent, kind=SpanKind.SERVER,
            attributes=attributes, record_exception=False, set_status_on_exception=False,
        ) as span:

            async def send_traced(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = message["status"]
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(StatusCode.ERROR)
                await send(message)

            try:
                await self.app(scope, receive, send_traced)
            except BaseException as exc:
                _failed(span, exc)
                raise


def _incoming_context(scope: Scope) -> Any:
    carrier = {name.decode("latin-1"): value.decode("latin-1")
               for name, value in scope.get("headers", ())
               if name in (b"traceparent", b"tracestate")}
    return propagate.extract(carrier) if carrier else None


def _failed(span: Span, error: BaseException) -> None:
    # The type only: a message can quote what it failed on.
    span.set_status(StatusCode.ERROR, type(error).__name__)


class GraphQLSpans(SchemaExtension):
    """`graphql.operation` with `graphql.parse`, `graphql.validate` and `graphql.execute`
    inside; installed first, so the other extensions' work falls inside its spans."""

    def __init__(self, tracer: Tracer, *,
                 execution_context: ExecutionContext | None = None) -> None:
        super().__init__(execution_context=execution_context)  # type: ignore[call-arg]
        self._tracer = tracer

    def on_operation(self) -> Iterator[None]:  # type: ignore[override]
        with self._span("graphql.operation") as span:
            yield
            _describe(span, self.execution_context)

    def on_parse(self) -> Iterator[None]:  # type: ignore[override]
        with self._span("graphql.parse"):
            yield

    def on_validate(self) -> Iterator[None]:  # type: ignore[override]
        with self._span("graphql.validate"):
            yield

    def on_execute(self) -> Iterator[None]:  # type: ignore[override]
        with self._span("graphql.execute"):
            yield

    @contextlib.contextmanager
    def _span(self, name: str) -> Iterator[Span]:
        # Not the SDK's own status on exception: it writes "Type: message".
        with self._tracer.start_as_current_span(
                name, record_exception=False, set_status_on_exception=False) as span:
            try:
                yield span
            except GeneratorExit:
                raise  # the hook closed, nothing failed
            except BaseException as exc:
                _failed(span, exc)
                raise


def _describe(span: Span, context: ExecutionContext) -> None:
    """The operation's type and name; never its arguments or variables."""
    document = context.graphql_document
    if document is not None:
        # The operation the document holds under that name; none: the error is in the
        # result, and the name the caller sent is not repeated.
        operation = get_operation_ast(document, context.operation_name)
        if operation is not None:
            span.set_attribute("graphql.operation.type", operation.operation.value)
            name = operation_label(operation.name.value if operation.name else None)
            if name:
                span.set_attribute("graphql.operation.name", name)
    errors = context.result.errors if context.result is not None else None
    if errors:
        span.set_attribute("sisada.graphql.errors", len(errors))


def instrument_schema(schema: Any, tracer: Tracer) -> None:
    """Add the GraphQL spans to a built schema (its extensions are read per operation)."""
    schema.extensions = (lambda: GraphQLSpans(tracer), *schema.extensions)


class StatementSpans:
    """resolvers.observers.StatementObserver: a CLIENT span per SQL statement of a request."""

    def __init__(self, tracer: Tracer, system: str) -> None:
        self.tracer = tracer
        self.system = system

    def started(self, kind: str) -> Span | None:
        if not trace.get_current_span().is_recording():
            return None  # not inside a traced request
        return self.tracer.start_span(
            f"SQL {kind}", kind=SpanKind.CLIENT, record_exception=False,
            attributes={"db.system.name": self.system, "db.operation.name": kind})

    def ended(self, token: object, error: BaseException | None) -> None:
        span: Span = token  # type: ignore[assignment]
        if error is not None:
            _failed(span, error)
        span.end()


@contextlib.contextmanager
def upstream_span(tracer: Tracer, host: str, headers: dict[str, str]
                  ) -> Iterator[Span | None]:
    """The span of one registry HTTP call (None outside a traced request), its W3C
    `traceparent` added to `headers` so the trace continues in the registry."""
    if not trace.get_current_span().is_recording():
        yield None
        return
    with tracer.start_as_current_span(
        "registry POST", kind=SpanKind.CLIENT, record_exception=False,
        set_status_on_exception=False,
        attributes={"http.request.method": "POST", "server.address": host},
    ) as span:
        propagate.inject(headers)
        try:
            yield span
        except BaseException as exc:
            _failed(span, exc)
            raise


def response_status(span: Span | None, status: int) -> None:
    if span is not None:
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(StatusCode.ERROR)


def trail_write_span(tracer: Tracer, write: asyncio.Future[None], entries: int) -> None:
    """A span from now until `write` (one access-trail write) ends; its entries counted,
    never listed. Outside a traced request, none."""
    if not trace.get_current_span().is_recording():
        return
    span = tracer.start_span("trail.write", record_exception=False,
                             attributes={"sisada.trail.entries": entries})

    def ended(done: asyncio.Future[None]) -> None:
        if done.cancelled():
            span.set_status(StatusCode.ERROR, "cancelled")
        elif done.exception() is not None:
            _failed(span, done.exception())  # type: ignore[arg-type]
        span.end()

    write.add_done_callback(ended)
