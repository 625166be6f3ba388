"""OpenTelemetry traces (issue 12 §1), from the SDK's in-memory exporter: a real request
through a real uvicorn server, over the seeded database (SQLite and PostgreSQL) and the
stand-in registry (a real process, which records the `traceparent` it receives), is one
trace — parse, validate and execute, its SQL statements, the registry call and the trail
write — and no span carries an identity value or the document. Off (no OTEL_* settings),
nothing is installed."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Deployment, ServerThread, purpose_headers
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.app import create_app
from gateway.settings import Settings
from gateway.tracing import GraphQLSpans, ServerSpans, exporter_names, tracing_from_settings

IDENTITY_QUERY = ("query Officers { foreigners(first: 5) "
                  "{ nodes { id fullName passportNumber nationality } } }")


class Traced:
    def __init__(self, base_url: str, exporter: InMemorySpanExporter, app: Any) -> None:
        self.base_url = base_url
        self.exporter = exporter
        self.app = app


@pytest.fixture(scope="module")
def traced(deployment: Deployment, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Traced]:
    """Another gateway over the deployment's data and registry, its spans kept in memory."""
    exporter = InMemorySpanExporter()
    settings = deployment.settings_with(tmp_path_factory.mktemp("traced"))
    app = create_app(settings, span_exporter=exporter)
    with ServerThread(app) as base_url:
        yield Traced(base_url, exporter, app)


def _post(traced: Traced, deployment: Deployment, query: str, persona: str,
          headers: dict[str, str] | None = None) -> httpx.Response:
    token = deployment.token(persona)
    sent = {**purpose_headers(), **(headers or {})}
    if token:
        sent["authorization"] = f"Bearer {token}"
    response = httpx.post(f"{traced.base_url}/graphql", json={"query": query},
                          headers=sent, timeout=60)
    assert response.status_code == 200, response.text
    return response


def _trace_of(traced: Traced, request_id: str) -> list[ReadableSpan]:
    """The spans of the request whose server span carries `request_id`."""
    spans = traced.exporter.get_finished_spans()
    roots = [s for s in spans if s.attributes.get("sisada.request_id") == request_id]
    assert len(roots) == 1, [s.name for s in spans]
    trace_id = roots[0].context.trace_id
    return [s for s in spans if s.context.trace_id == trace_id]


def _one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    named = [s for s in spans if s.name == name]
    assert len(named) == 1, (name, [s.name for s in spans])
    return named[0]


def _ancestors(span: ReadableSpan, spans: list[ReadableSpan]) -> list[str]:
    by_id = {s.context.span_id: s for s in spans}
    names = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names


def test_an_identity_read_is_one_trace_with_sql_registry_and_trail_as_immigration_officer(
    traced: Traced, deployment: Deployment,
) -> None:
    deployment.registry.clear_requests()
    response = _post(traced, deployment, IDENTITY_QUERY, "immigration_officer")
    body = response.json()
    nodes = body["data"]["foreigners"]["nodes"]
    assert nodes and all(node["fullName"] for node in nodes), body
    request_id = response.headers["x-request-id"]
    spans = _trace_of(traced, request_id)

    server = _one(spans, "POST /graphql")
    assert server.parent is None
    assert server.attributes["http.response.status_code"] == 200
    operation = _one(spans, "graphql.operation")
    assert operation.parent.span_id == server.context.span_id
    assert operation.attributes["graphql.operation.type"] == "query"
    assert operation.attributes["graphql.operation.name"] == "Officers"
    for step in ("graphql.parse", "graphql.validate", "graphql.execute"):
        assert _one(spans, step).parent.span_id == operation.context.span_id, step
    # The statements of the execution, each a child span naming its kind only.
    statements = [s for s in spans if s.name.startswith("SQL ")]
    assert any(s.name == "SQL SELECT" for s in statements), [s.name for s in spans]
    for statement in statements:
        assert set(statement.attributes) == {"db.system.name", "db.operation.name"}
        assert "POST /graphql" in _ancestors(statement, spans)
    assert any("graphql.execute" in _ancestors(s, spans) for s in statements)
    registry = [s for s in spans if s.name == "registry POST"]
    assert registry and all("graphql.execute" in _ancestors(s, spans) for s in registry)
    assert all(s.attributes["http.response.status_code"] == 200 for s in registry)
    trail = [s for s in spans if s.name == "trail.write"]
    assert trail and all(s.attributes["sisada.trail.entries"] >= 1 for s in trail)

    # The registry received the trace: its traceparent names this trace and the span of
    # the call that carried it.
    received = [r for r in deployment.registry.requests() if r["request_id"] == request_id]
    assert received, deployment.registry.requests()
    # version-trace id-parent span id-flags (the flags say sampled; the SDK may add others)
    parents = {tuple(r["traceparent"].split("-")[:3]) for r in received}
    expected = {("00", f"{server.context.trace_id:032x}", f"{s.context.span_id:016x}")
                for s in registry}
    assert parents and parents <= expected, (parents, expected)
    assert all(int(r["traceparent"].split("-")[3], 16) & 1 for r in received)

    # Nothing a span says is a value read, the document or a variable.
    said = " ".join(f"{s.name} {dict(s.attributes)} {[e.attributes for e in s.events]}"
                    for s in spans)
    for node in nodes:
        assert node["fullName"] not in said
        assert node["passportNumber"] not in said
    assert "fullName" not in said and "foreigners(" not in said


def test_a_document_search_term_is_in_no_span_as_immigration_officer(
    traced: Traced, deployment: Deployment,
) -> None:
    foreigner = deployment.facts.foreigners[3]
    number = foreigner["passport_number"]
    response = _post(traced, deployment,
                     f'{{ checkForeigner(documentNumber: "{number}") '
                     "{ registered foreigner { fullName } } }", "immigration_officer")
    assert response.json()["data"]["checkForeigner"]["registered"] is True
    spans = _trace_of(traced, response.headers["x-request-id"])
    assert any(s.name == "registry POST" for s in spans)
    said = " ".join(f"{s.name} {dict(s.attributes)} {[e.attributes for e in s.events]}"
                    for s in spans)
    assert number not in said
    assert foreigner["full_name"] not in said


def _said(spans: list[ReadableSpan]) -> str:
    """Everything the spans say: names, attributes, events and statuses."""
    return " ".join(f"{s.name} {dict(s.attributes)} {s.status.description} "
                    f"{[(e.name, e.attributes) for e in s.events]}" for s in spans)


def test_an_operation_name_the_document_does_not_hold_is_in_no_span_as_setiabudi_police(
    traced: Traced, deployment: Deployment,
) -> None:
    number = deployment.facts.foreigners[4]["passport_number"]
    sent = f"lookup {number} " + "x" * 5000
    response = httpx.post(f"{traced.base_url}/graphql", timeout=30,
                          json={"query": "query A { __typename }", "operationName": sent},
                          headers={"authorization":
                                   f"Bearer {deployment.token('setiabudi_police')}"})
    assert response.status_code == 400
    spans = _trace_of(traced, response.headers["x-request-id"])
    operation = _one(spans, "graphql.operation")
    assert "graphql.operation.name" not in operation.attributes
    said = _said(spans)
    assert number not in said and "x" * 100 not in said
    # Exceptions by type only: a status says the exception's type name, no span an event.
    for span in spans:
        assert not span.events
        description = span.status.description
        assert description is None or description.isidentifier(), description


def test_operation_names_are_span_attributes_only_as_graphql_names_of_64_as_public(
    traced: Traced, deployment: Deployment,
) -> None:
    short, long = "TracedName", "TracedName" + "X" * 60
    named = {}
    for name in (short, long):
        response = _post(traced, deployment, f"query {name} {{ __typename }}", "public")
        operation = _one(_trace_of(traced, response.headers["x-request-id"]),
                         "graphql.operation")
        named[name] = operation.attributes.get("graphql.operation.name")
        assert operation.attributes.get("graphql.operation.type") == "query"
    assert named == {short: short, long: None}


def test_a_callers_traceparent_is_not_continued_without_a_trusted_proxy_as_public(
    traced: Traced, deployment: Deployment,
) -> None:
    forged = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"
    response = _post(traced, deployment, "{ __typename }", "public",
                     {"traceparent": forged})
    server = _one(_trace_of(traced, response.headers["x-request-id"]), "POST /graphql")
    assert server.parent is None
    assert f"{server.context.trace_id:032x}" != "ab" * 16


def test_a_trusted_proxys_traceparent_is_continued_as_public(
    deployment: Deployment, tmp_path: Path,
) -> None:
    exporter = InMemorySpanExporter()
    settings = deployment.settings_with(tmp_path, trusted_proxies="127.0.0.1")
    with ServerThread(create_app(settings, span_exporter=exporter)) as base_url:
        incoming = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"
        response = httpx.post(f"{base_url}/graphql", json={"query": "{ __typename }"},
                              headers={"traceparent": incoming}, timeout=30)
        assert response.status_code == 200
    server = _one(list(exporter.get_finished_spans()), "POST /graphql")
    assert f"{server.context.trace_id:032x}" == "ab" * 16
    assert f"{server.parent.span_id:016x}" == "cd" * 8


def test_probes_are_not_traced(traced: Traced) -> None:
    before = len(traced.exporter.get_finished_spans())
    for path in ("/healthz", "/readyz"):
        assert httpx.get(f"{traced.base_url}{path}", timeout=30).status_code == 200
    assert len(traced.exporter.get_finished_spans()) == before


def _is_graphql_spans(extension: Any) -> bool:
    return (isinstance(extension, type) and issubclass(extension, GraphQLSpans)) or \
        getattr(extension, "__qualname__", "").startswith("instrument_schema.")


def test_tracing_off_installs_nothing(deployment: Deployment, traced: Traced,
                                     tmp_path: Path) -> None:
    app = create_app(deployment.settings_with(tmp_path))
    state = app.state.sisada
    assert state.tracing is None
    assert not any(_is_graphql_spans(ext) for ext in state.schema.extensions)
    assert not any(m.cls is ServerSpans for m in app.user_middleware)
    # SQL: the traced app's engine has one listener more per statement event, this one none
    # (other listeners, e.g. metrics', are the same in both).
    traced_events = traced.app.state.sisada.engine.sync_engine.dispatch
    engine_events = state.engine.sync_engine.dispatch
    for name in ("before_cursor_execute", "after_cursor_execute"):
        assert len(list(getattr(traced_events, name))) == \
            len(list(getattr(engine_events, name))) + 1, name
    assert getattr(state.registry, "_tracer", None) is None
    assert state.trail.thread._tracer is None
    # And a request still answers.
    with ServerThread(app) as base_url:
        response = httpx.post(f"{base_url}/graphql", json={"query": "{ __typename }"},
                              timeout=30)
        assert response.status_code == 200


def test_tracing_on_installs_its_parts(traced: Traced) -> None:
    state = traced.app.state.sisada
    assert state.tracing is not None
    assert any(m.cls is ServerSpans for m in traced.app.user_middleware)
    assert _is_graphql_spans(state.schema.extensions[0])
    assert state.registry._tracer is state.tracing.tracer
    assert state.trail.thread._tracer is state.tracing.tracer


@pytest.mark.parametrize(("environment", "exporters"), [
    ({}, []),
    ({"OTEL_TRACES_EXPORTER": "none"}, []),
    ({"OTEL_TRACES_EXPORTER": "otlp"}, ["otlp"]),
    ({"OTEL_TRACES_EXPORTER": "console, otlp"}, ["console", "otlp"]),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, ["otlp"]),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, ["otlp"]),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none"},
     []),
    ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, []),
])
def test_the_standard_otel_variables_turn_traces_on_and_off(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], exporters: list[str],
) -> None:
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT",
                 "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert exporter_names(settings) == exporters
    tracing = tracing_from_settings(settings)
    assert (tracing is not None) == bool(exporters)
    if tracing is not None:
        tracing.shutdown()  # nothing was recorded: nothing is sent


def test_an_unknown_exporter_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    with pytest.raises(ValueError, match="OTEL_TRACES_EXPORTER"):
        Settings()


def test_sisada_serve_with_an_unknown_exporter_says_so_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "OTEL_TRACES_EXPORTER": "zipkin",
           "SISADA_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'none.db'}"}
    done = subprocess.run([str(Path(sys.executable).with_name("sisada")), "serve",
                           "--port", "1"], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "sisada serve: OTEL_TRACES_EXPORTER: otlp, console or none "
        "(comma-separated)"]
