"""Prometheus metrics: what GET /metrics exports, and the few calls that count it.

Labels are bounded. Roles are the policy's, codes the gateway's own, fields the schema's
`Type.field`; no id, document, variable or area code is a label. The one label a client
writes is the operation's name, as the client developer wrote it in the document
(`query ExpiredPermits`): only a name that is an operation of the parsed document (never
the raw `operationName` parameter), a GraphQL name of at most 64 characters, and only the
first `metrics_max_operation_names` names that authenticated callers send take a label of
their own; an anonymous caller's name is labelled only if it already holds one, every
other name is "other" (the public cannot use up the labels).

Under `sisada serve --workers N` every worker writes its values to files in
PROMETHEUS_MULTIPROC_DIR (prometheus-client's multiprocess mode) and a scrape, answered by
any worker, adds them up; gauges of live values are summed over the live workers only.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import hmac
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from time import perf_counter
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.http_guards import error_response
from gateway.settings import Settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
ANONYMOUS = "anonymous"
OTHER = "other"
OK = "OK"
# An operation name labelled as such: a GraphQL name, 64 characters at most (else "other").
OPERATION_LABEL = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,63}")
# A scrape that takes longer is answered 503 (many workers' files on a slow disk).
SCRAPE_TIMEOUT_SECONDS = 10.0
# Scrapes collected at once (each on a thread); more are answered 503 at once.
MAX_CONCURRENT_SCRAPES = 4
# Our error codes are SCREAMING_SNAKE_CASE; anything else is counted as OTHER_ERROR.
_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,47}")
# (operation, role, code) children kept per process: far above what the bounded labels
# can make, a backstop should one of them grow.
_MAX_CACHED = 10_000

# Seconds: a field check is milliseconds, a page of identity from the registry a second.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0)
SQL_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
               0.5, 1.0, 5.0)

REQUESTS = Counter(
    "sisada_graphql_requests", "GraphQL operations answered over HTTP, by operation name, "
    "the caller's role and the result code (the first error's code, or OK).",
    ["operation", "role", "code"])
EXECUTION = Histogram(
    "sisada_graphql_execution_seconds", "One GraphQL operation: parse, validate, execute "
    "and the access trail's write.", ["operation"], buckets=LATENCY_BUCKETS)
HTTP_REQUESTS = Histogram(
    "sisada_http_request_duration_seconds", "Whole HTTP requests to /graphql: guards, "
    "token, rate limits, GraphQL and the response.", buckets=LATENCY_BUCKETS)
HTTP_RESPONSES = Counter(
    "sisada_http_responses", "HTTP responses of /graphql by status (401, 413, 429 never "
    "reach GraphQL).", ["status"])
SQL_STATEMENTS = Histogram(
    "sisada_sql_statement_seconds", "Each SQL statement of the gateway's engine.",
    buckets=SQL_BUCKETS)
REDACTIONS = Counter(
    "sisada_redactions", "Fields redacted (null for the caller), counted once per operation "
    "and Type.field, as extensions.redacted lists them.", ["field"])
POLICY_RELOADS = Counter(
    "sisada_policy_reloads", "Policy reloads (SIGHUP) by outcome: ok, or failed (the policy "
    "in force is kept).", ["outcome"])
DB_POOL_IN_USE = Gauge(
    "sisada_db_pool_connections_in_use", "Database connections checked out of the pool.",
    multiprocess_mode="livesum")
UPSTREAM_SECONDS = Histogram(
    "sisada_upstream_request_seconds", "Calls to an upstream subgraph, retries included.",
    ["upstream"], buckets=LATENCY_BUCKETS)
UPSTREAM_REQUESTS = Counter(
    "sisada_upstream_requests", "Calls to an upstream subgraph by outcome: ok, error, or "
    "circuit_open (refused without a request).", ["upstream", "outcome"])
UPSTREAM_CIRCUIT = Gauge(
    "sisada_upstream_circuit_state", "Upstream clients whose circuit breaker is in this "
    "state (as of its last transition), summed over live workers.", ["upstream", "state"],
    multiprocess_mode="livesum")
TRAIL_WRITES = Counter(
    "sisada_trail_writes", "Access trail writes (one batch of entries each) by outcome: ok, "
    "or failed (the recorded values were withheld).", ["outcome"])
SUBSCRIPTIONS = Gauge(
    "sisada_subscriptions_active", "Live subscriptions (members of a feed).",
    multiprocess_mode="livesum")
SOCKETS = Gauge(
    "sisada_websockets_open", "Open graphql-transport-ws sockets.",
    multiprocess_mode="livesum")

REGISTRY_UPSTREAM = "registry"
_UPSTREAM_OK = UPSTREAM_REQUESTS.labels(REGISTRY_UPSTREAM, "ok")
_UPSTREAM_ERROR = UPSTREAM_REQUESTS.labels(REGISTRY_UPSTREAM, "error")
_UPSTREAM_REFUSED = UPSTREAM_REQUESTS.labels(REGISTRY_UPSTREAM, "circuit_open")
_UPSTREAM_SECONDS = UPSTREAM_SECONDS.labels(REGISTRY_UPSTREAM)
_TRAIL_OK = TRAIL_WRITES.labels("ok")
_TRAIL_FAILED = TRAIL_WRITES.labels("failed")


class OperationNames:
    """Operation name → label: the first `limit` valid names authenticated callers send
    keep theirs, every later one is OTHER, and an anonymous caller only finds a name that
    holds a label already; the map never holds more than `limit`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._labels: dict[str, str] = {}

    def label(self, name: str | None, authenticated: bool = True) -> str:
        if name is None:
            return OTHER
        if not name:
            return ANONYMOUS
        label = self._labels.get(name)
        if label is not None:
            return label
        if (not authenticated or len(self._labels) >= self.limit
                or not OPERATION_LABEL.fullmatch(name)):
            return OTHER
        self._labels[name] = name
        return name


def operation_label(name: str | None) -> str | None:
    """A name fit to be a label or a span attribute (see OPERATION_LABEL), else None."""
    return name if name and OPERATION_LABEL.fullmatch(name) else None


class RequestMetrics:
    """The GraphQL request path's counting, one per app: label children looked up once."""

    def __init__(self, settings: Settings) -> None:
        self.names = OperationNames(settings.metrics_max_operation_names)
        self._requests: dict[tuple[str, str, str], Any] = {}
        self._execution: dict[str, Any] = {}
        self._redactions: dict[tuple[str, str], Any] = {}

    def operation_done(self, operation: str | None, role: str, result: Any,
                       seconds: float, authenticated: bool = True) -> None:
        """One operation answered: `operation` is its name as the parsed document gives it
        ("" anonymous, None when none was selected), `result` Strawberry's; only an
        `authenticated` caller's new name takes a label."""
        label = self.names.label(operation, authenticated)
        code = _code(getattr(result, "errors", None))
        key = (label, role, code)
        counter = self._requests.get(key)
        if counter is None:
            counter = REQUESTS.labels(label, role, code)
            if len(self._requests) < _MAX_CACHED:
                self._requests[key] = counter
        counter.inc()
        histogram = self._execution.get(label)
        if histogram is None:
            histogram = self._execution[label] = EXECUTION.labels(label)
        histogram.observe(seconds)
        extensions = getattr(result, "extensions", None)
        if extensions:
            redacted = extensions.get("redacted")
            if redacted:
                self._redacted(redacted)

    def _redacted(self, redacted: Mapping[str, list[str]]) -> None:
        # Type and field names come from the schema (FieldPolicy lists them): bounded.
        for type_name, fields in redacted.items():
            for field_name in fields:
                key = (type_name, field_name)
                counter = self._redactions.get(key)
                if counter is None:
                    counter = REDACTIONS.labels(f"{type_name}.{field_name}")
                    if len(self._redactions) < _MAX_CACHED:
                        self._redactions[key] = counter
                counter.inc()


def _code(errors: list[Any] | None) -> str:
    if not errors:
        return OK
    code = (getattr(errors[0], "extensions", None) or {}).get("code")
    return code if isinstance(code, str) and _CODE.fullmatch(code) else "OTHER_ERROR"


class TimedRequests:
    """ASGI wrapper timing whole HTTP requests and counting their statuses."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._statuses: dict[int, Any] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        status = 0

        async def sending(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            HTTP_REQUESTS.observe(perf_counter() - started)
            self._status(status).inc()

    def _status(self, status: int) -> Any:
        counter = self._statuses.get(status)
        if counter is None:
            # 0: the connection ended before a response started.
            label = str(status) if 100 <= status <= 599 else "none"
            counter = self._statuses[status] = HTTP_RESPONSES.labels(label)
        return counter


# -- the other parts' counting ----------------------------------------------------------------


def policy_reloaded(ok: bool) -> None:
    POLICY_RELOADS.labels("ok" if ok else "failed").inc()


def trail_written(ok: bool) -> None:
    (_TRAIL_OK if ok else _TRAIL_FAILED).inc()


def upstream_refused() -> None:
    """A call the open circuit refused: nothing was sent."""
    _UPSTREAM_REFUSED.inc()


def upstream_called(ok: bool, seconds: float) -> None:
    (_UPSTREAM_OK if ok else _UPSTREAM_ERROR).inc()
    _UPSTREAM_SECONDS.observe(seconds)


def circuit_changed(old: str | None, new: str | None) -> None:
    """An upstream client's breaker moved from `old` to `new` (None: no client before or
    after)."""
    if old is not None:
        UPSTREAM_CIRCUIT.labels(REGISTRY_UPSTREAM, old).dec()
    if new is not None:
        UPSTREAM_CIRCUIT.labels(REGISTRY_UPSTREAM, new).inc()


def statement_ran(seconds: float) -> None:
    SQL_STATEMENTS.observe(seconds)


def pool_checked_out(change: int) -> None:
    DB_POOL_IN_USE.inc(change)


def socket_opened(change: int) -> None:
    SOCKETS.inc(change)


def subscriptions_changed(change: int) -> None:
    SUBSCRIPTIONS.inc(change)


# -- GET /metrics ------------------------------------------------------------------------------


def metrics_route(settings: Settings) -> Route:
    """GET /metrics, outside the GraphQL token check: open, or behind SISADA_METRICS_TOKEN
    (a bearer token of its own, compared in constant time)."""
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else ""
    expected = token.encode() if token else None  # an empty token is no token
    render = _renderer(settings.metrics_multiproc_dir)

    # Collections still running, on their threads (one app serves from one event loop).
    collecting: set[asyncio.Future[bytes]] = set()

    async def metrics(request: Request) -> Response:
        if expected is not None and not _bearer_matches(
                request.headers.get("authorization"), expected):
            return error_response(401, "a valid metrics token is required", "UNAUTHENTICATED",
                                  {"WWW-Authenticate": 'Bearer realm="sisada-metrics"'})
        if len(collecting) >= MAX_CONCURRENT_SCRAPES:
            return error_response(503, "too many scrapes at once", "UNAVAILABLE",
                                  {"Retry-After": "1"})
        collection = asyncio.ensure_future(asyncio.to_thread(render))
        collecting.add(collection)
        # Counted until its thread ends, even when the scrape stopped waiting for it.
        collection.add_done_callback(collecting.discard)
        try:
            async with asyncio.timeout(SCRAPE_TIMEOUT_SECONDS):
                body = await asyncio.shield(collection)
        except TimeoutError:
            return error_response(503, "the metrics took too long to collect", "UNAVAILABLE")
        return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4)

    return Route("/metrics", metrics, methods=["GET"])


def _bearer_matches(header: str | None, expected: bytes) -> bool:
    scheme, _, value = (header or "").partition(" ")
    supplied = value.strip().encode("utf-8", "surrogateescape")
    # compare_digest on both paths: the time does not tell a wrong scheme from a wrong token.
    same = hmac.compare_digest(supplied, expected)
    return scheme.lower() == "bearer" and same


def _renderer(multiproc_dir: Path | None) -> Any:
    if multiproc_dir is None:
        return lambda: generate_latest(REGISTRY)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(multiproc_dir))

    def render() -> bytes:
        _forget_dead_workers(multiproc_dir)
        return generate_latest(registry)

    return render


_LIVE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db")


def _forget_dead_workers(directory: Path) -> None:
    """A worker that died without its shutdown (killed, crashed) leaves its live gauges:
    they no longer count. Its counters and histograms stay, so totals never go back."""
    dead = set()
    for path in glob.glob(os.path.join(directory, "gauge_live*_*.db")):
        match = _LIVE_FILE.fullmatch(os.path.basename(path))
        if match is None:
            continue
        pid = int(match.group(1))
        if pid not in dead and not _alive(pid):
            dead.add(pid)
    for pid in dead:
        mark_process_dead(pid, str(directory))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_stopped(settings: Settings) -> None:
    """This worker is shutting down: its live gauges stop counting (multiprocess mode)."""
    if settings.metrics_multiproc_dir is not None:
        mark_process_dead(os.getpid(), str(settings.metrics_multiproc_dir))


@contextlib.contextmanager
def multiprocess_directory(settings: Settings) -> Iterator[Path]:
    """For `sisada serve --workers N`: the directory every worker writes its values to,
    set in the environment before the workers start (prometheus-client reads it when a
    worker imports it). A directory the operator set is used and kept; otherwise a fresh
    temporary one, removed when the server stops."""
    if settings.metrics_multiproc_dir is not None:
        settings.metrics_multiproc_dir.mkdir(parents=True, exist_ok=True)
        yield settings.metrics_multiproc_dir
        return
    directory = Path(tempfile.mkdtemp(prefix="sisada-metrics-"))
    os.environ[MULTIPROC_ENV] = str(directory)
    try:
        yield directory
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(directory, ignore_errors=True)
