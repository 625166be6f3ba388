"""The ASGI app: /graphql (POST, GET), GraphiQL from local assets, /healthz, /readyz."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path
from typing import Any

import orjson
from graphql import GraphQLError, OperationType, get_operation_ast, parse
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionResult

from gateway import metrics
from gateway.access_trail import (
    PURPOSE_HEADER,
    AccessView,
    OperationTrail,
    TrailWriter,
    access_view,
    stated_purpose,
)
from gateway.auth import AuthError, AuthUnavailableError, OfficerDirectory, TokenVerifier
from gateway.cursors import cursor_key, trail_document_key
from gateway.demo_tokens import demo_token_routes
from gateway.http_guards import (
    CACHE_CONTROL,
    NO_STORE,
    HttpGuard,
    StrawberryHTTPException,
    cors_middleware,
    error_response,
    strawberry_error_response,
)
from gateway.logging import configure_logging, log, name_routes
from gateway.media_types import negotiate
from gateway.persisted.resolve import (
    PersistedOperations,
    PersistedOperationsMiddleware,
    refusal_of,
    resolved_request_data,
)
from gateway.policy_page import policy_page_routes
from gateway.policy_runtime import LoadedPolicy, load_policy
from gateway.production import check_start_up, warn_development_defaults
from gateway.rate_limit import rate_limited
from gateway.registry import close_registry, registry_from_settings, registry_status
from gateway.request_ids import REQUEST_ID, RequestIdMiddleware, request_id_of
from gateway.settings import Settings, get_settings
from gateway.shutdown import CutOnShutdown, GracefulShutdown
from gateway.subscriptions import LiveFeeds
from gateway.tracing import (
    ServerSpans,
    SpanExporter,
    StatementSpans,
    Tracing,
    instrument_schema,
    tracing_from_settings,
)
from gateway.trail_thread import TrailThread
from policies import Policy, PolicyError, Principal, RoleAccess
from resolvers.db import Database, DatabaseUnavailableError, create_engine
from resolvers.observers import observe_engine, observe_statements
from resolvers.officers import officer_kind
from schema.budget import ExecutionBudget, ExecutionStoppedError
from schema.context import GraphQLContext, build_context, note_operation, operation_name
from schema.limits import QueryLimits
from schema.privacy import FieldPolicy
from schema.root import build_schema, schema_fields

STATIC = Path(__file__).parent / "static"


class SisadaGraphQL(GraphQL):
    """Strawberry's ASGI view with our context, orjson and the local GraphiQL page."""

    def __init__(self, app_state: Any, **kwargs: Any) -> None:
        super().__init__(app_state.schema, **kwargs)
        self.app_state = app_state

    async def get_context(self, request: Request | WebSocket, response: Any) -> GraphQLContext:
        principal: Principal = request.scope["sisada.principal"]
        access = self.app_state.access_for(principal)
        authenticated = principal.role != self.app_state.policy.policy.anonymous_role
        settings = self.app_state.settings
        purpose = stated_purpose(request.headers.get(PURPOSE_HEADER))
        view = self.app_state.view_for(access, purpose)
        budget = ExecutionBudget(settings.max_query_cost, settings.max_response_fields,
                                 settings.request_timeout_seconds, view.readable,
                                 settings.max_response_text_bytes)
        return build_context(principal, access, self.app_state.db, request, authenticated,
                             budget, identity=self.app_state.registry,
                             request_id=request_id_of(request.scope), readable=view.readable,
                             recorded=view.recorded, hook_recorded=view.hook_recorded,
                             purpose_blocked=view.blocked,
                             purpose=purpose)

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    async def execute_single(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        """One operation, counted and timed (gateway/metrics.py) by the name it selected."""
        started = time.perf_counter()
        note_operation(None)
        result = await self._execute_bounded(*args, **kwargs)
        context = kwargs.get("context")
        principal = getattr(context, "principal", None)
        role = principal.role if principal is not None else metrics.OTHER
        self.app_state.metrics.operation_done(operation_name(), role, result,
                                              time.perf_counter() - started,
                                              getattr(context, "authenticated", False))
        return result

    async def _execute_bounded(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        """One operation: its document size checked, its execution bounded in time."""
        settings = self.app_state.settings
        request_data = kwargs.get("request_data", args[-1] if args else None)
        refusal = refusal_of(request_data)  # a persisted operation not found or not allowed
        if refusal is not None:
            return _error_result(refusal[1], refusal[0])
        query = getattr(request_data, "query", None) or ""
        if len(query.encode("utf-8", "surrogatepass")) > settings.max_document_bytes:
            return _error_result(f"the document is larger than {settings.max_document_bytes} "
                                 "bytes", "DOCUMENT_TOO_LARGE")
        context = kwargs.get("context")
        budget: ExecutionBudget | None = getattr(context, "budget", None)
        trail = (self.app_state.trail.begin(context, request_data)
                 if isinstance(context, GraphQLContext) else None)
        try:
            async with asyncio.timeout(settings.request_timeout_seconds):
                result = await super().execute_single(*args, **kwargs)
        except TimeoutError:
            log.warning("graphql.timeout", seconds=settings.request_timeout_seconds)
            _abandon(trail)
            return _error_result("the request took too long and was stopped", "TIMEOUT")
        except ExecutionStoppedError as stop:
            _abandon(trail)
            return _stopped(stop)
        if budget is not None and budget.stopped is not None:
            # Stopped in another operation of the batch, or unwound in a task of its own.
            _abandon(trail)
            return _stopped(budget.stopped)
        if trail is not None:
            # Recorded values leave only with their trail entries (SPEC rule 6).
            result = await trail.settle(result)
        # A document sent with its APQ hash is stored once it has run.
        await self.app_state.persisted.remember(request_data, result)
        if getattr(context, "events_written", False):
            # A mutation committed live events: the relay reads the outbox now rather than
            # at its next poll.
            self.app_state.feeds.outbox_written()
        return result

    async def execute_operation(self, request: Any, request_adapter: Any, request_data: Any,
                                *args: Any, **kwargs: Any) -> Any:
        """A batch is refused whole, before any of it runs, when one of its operations
        cannot be selected: Strawberry runs a batch's operations together and answers 400
        for the first that fails, while the others carried on (a mutation applied and
        identity read behind a 400: review of issue 10, F4)."""
        # Hashes stand for their documents from here on (gateway/persisted).
        request_data = resolved_request_data(request.scope, request_data)
        for data in request_data if isinstance(request_data, list) else [request_data]:
            if refusal_of(data) is not None:
                continue  # answered with its own error (execute_single)
            if isinstance(request_data, list):
                _check_selectable(data)
            _refuse_subscription(data)
        return await super().execute_operation(request, request_adapter, request_data,
                                               *args, **kwargs)

    async def run(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        # Strawberry refuses bad requests in plain text; ours are JSON GraphQL errors.
        try:
            response = await super().run(request, *args, **kwargs)
        except StrawberryHTTPException as exc:
            return strawberry_error_response(exc, request.scope.get("method", ""))
        if isinstance(request, Request) and isinstance(response, Response):
            # Every answer is the caller's own: no shared cache may keep it (http_guards).
            response.headers[CACHE_CONTROL] = NO_STORE
            return negotiate(response, request.headers.get("accept"))
        return response

    def should_render_graphql_ide(self, request: Any) -> bool:
        # A GET of a persisted query carries no query, and is no page view.
        return (super().should_render_graphql_ide(request)
                and "extensions" not in request.query_params)

    async def render_graphql_ide(self, request: Request) -> Response:
        return FileResponse(STATIC / "graphiql.html")


def _check_selectable(data: Any) -> None:
    """The 400 Strawberry would answer for this operation of a batch, raised up front."""
    query = getattr(data, "query", None)
    if not query:
        raise StrawberryHTTPException(400, "No GraphQL query found in the request")
    try:
        document = parse(query)
    except GraphQLError:
        return  # a syntax error is this operation's own GraphQL error, not the batch's
    name = getattr(data, "operation_name", None)
    if get_operation_ast(document, name) is None:
        reason = (f'Unknown operation named "{name}".' if name is not None
                  else "Can't get GraphQL operation type")
        raise StrawberryHTTPException(400, reason)


def _refuse_subscription(data: Any) -> None:
    """Subscriptions are served over WebSocket only (gateway/subscriptions): over HTTP
    their root fields would resolve to nothing, or stream outside every limit."""
    query = getattr(data, "query", None)
    if not query or "subscription" not in query:
        return  # no document can hold a subscription without the word
    try:
        operation = get_operation_ast(parse(query), getattr(data, "operation_name", None))
    except GraphQLError:
        return
    if operation is not None and operation.operation is OperationType.SUBSCRIPTION:
        raise StrawberryHTTPException(400, "subscriptions are served over WebSocket "
                                           "(graphql-transport-ws) on /graphql")


def _abandon(trail: OperationTrail | None) -> None:
    if trail is not None:
        trail.abandon()


def _stopped(stop: ExecutionStoppedError) -> ExecutionResult:
    log.warning("graphql.stopped", code=stop.code)
    return _error_result(stop.message, stop.code)


def _error_result(message: str, code: str) -> ExecutionResult:
    return ExecutionResult(data=None, errors=[GraphQLError(message, extensions={"code": code})])


class AuthMiddleware:
    """Token → principal before GraphQL runs; a bad token is a 401, never the public role."""

    def __init__(self, app: Any, verifier_of: Any) -> None:
        self.app = app
        self.verifier_of = verifier_of

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        header = None
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                header = value.decode("latin-1")
                break
        verifier: TokenVerifier = self.verifier_of()
        try:
            scope["sisada.principal"] = await verifier.authenticate(header)
        except AuthUnavailableError as exc:
            await _error_response(scope, receive, send, 503, exc.message, "UNAVAILABLE")
            return
        except AuthError as exc:
            # RFC 6750: a request without a bearer token gets the challenge without an
            # error code; a bearer token that fails gets error="invalid_token".
            bearer = (header or "").lower().startswith("bearer ")
            challenge = 'Bearer realm="sisada"' + (', error="invalid_token"' if bearer else "")
            await _error_response(scope, receive, send, 401, exc.message, "UNAUTHENTICATED",
                                  {"WWW-Authenticate": challenge})
            return
        await self.app(scope, receive, send)


async def _error_response(
    scope: dict[str, Any],
    receive: Any,
    send: Any,
    status: int,
    message: str,
    code: str,
    headers: dict[str, str] | None = None,
) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 4401 if status == 401 else 4503})
        return
    await error_response(status, message, code, headers)(scope, receive, send)


def query_limits(settings: Settings) -> QueryLimits:
    return QueryLimits(
        max_depth=settings.max_query_depth,
        max_cost=settings.max_query_cost,
        max_aliases=settings.max_aliases,
        max_tokens=settings.max_tokens,
        introspection=settings.introspection,
    )


AccessOverride = Callable[[RoleAccess, dict[str, frozenset[str]]], RoleAccess]


async def _not_found(_request: Request, _exc: Exception) -> Response:
    return error_response(404, "not found", "NOT_FOUND")


async def _server_error(request: Request, exc: Exception) -> Response:
    """Outside GraphQL too, a crash answers with an error id and nothing internal."""
    error_id = uuid.uuid4().hex[:16]
    log.error("http.unexpected_error", error_id=error_id, error=repr(exc),
              request_id=request.scope.get(REQUEST_ID))
    return error_response(500, "Unexpected error.", "INTERNAL_SERVER_ERROR", error_id=error_id)


class AppState:
    """Everything built once per process at start-up."""

    def __init__(
        self,
        settings: Settings,
        field_policy: type[SchemaExtension] | None = FieldPolicy,
        access_override: AccessOverride | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.settings = settings
        self.schema = build_schema(query_limits(settings), settings.max_batch_operations,
                                   field_policy=field_policy, cursor_key=cursor_key(settings))
        # Traces (gateway/tracing.py): None when off, and then nothing below is instrumented.
        self.tracing = tracing
        tracer = tracing.tracer if tracing is not None else None
        if tracer is not None:
            instrument_schema(self.schema, tracer)
        self.policy: LoadedPolicy = load_policy(Policy(settings.policy_dir), self.schema)
        self.engine = create_engine(settings.database_url,
                                    statement_timeout=settings.statement_timeout_seconds)
        self.db = Database(self.engine)
        if tracer is not None:
            observe_statements(self.engine, StatementSpans(tracer, self.engine.dialect.name))
        observe_engine(self.engine, statement=metrics.statement_ran,
                       in_use=metrics.pool_checked_out)
        self.metrics = metrics.RequestMetrics(settings)
        # One pooled client per process (or, without a URL, a source that is unavailable).
        self.registry = registry_from_settings(settings, tracer)
        # Outlives policy reloads: which officer is which does not change with the policy.
        self.officers = OfficerDirectory(partial(officer_kind, self.db),
                                         settings.officer_cache_seconds)
        self.verifier = self._verifier(self.policy.policy)
        self._access_override = access_override
        self._access = self._compiled_access(self.policy)
        self.trail = TrailWriter(
            TrailThread(settings.database_url, settings.trail_write_timeout_seconds, tracer),
            document_key=trail_document_key(settings))
        # Per (role, purpose allowed): what the role reads; rebuilt with the policy.
        self._views: dict[tuple[str, bool], AccessView] = {}
        # Subscriptions: the event outbox's relay, the bus, the sockets (issue 11).
        self.feeds = LiveFeeds(self)
        # APQ documents and partner allow-lists (gateway/persisted).
        self.persisted = PersistedOperations(settings, self.db)

    def _compiled_access(self, loaded: LoadedPolicy) -> dict[str, RoleAccess]:
        access = dict(loaded.compiled.by_role)
        if self._access_override is not None:
            # Benchmarks only (bench/variants.py): the ceiling without authorization.
            fields = {t: frozenset(f) for t, f in schema_fields(self.schema).items()}
            access = {r: self._access_override(a, fields) for r, a in access.items()}
        return access

    def _verifier(self, policy: Policy) -> TokenVerifier:
        return TokenVerifier(self.settings, policy.roles, policy.anonymous_role,
                             jurisdictions=policy.jurisdiction_levels,
                             officer_kinds=policy.officer_kinds, officers=self.officers)

    def access_for(self, principal: Principal) -> RoleAccess:
        return self._access[principal.role]

    def view_for(self, access: RoleAccess, purpose: str | None) -> AccessView:
        """What `access`'s role reads having stated `purpose` (gateway/access_trail.py)."""
        allowed = access.purpose_allows(purpose)
        key = (access.role, allowed)
        view = self._views.get(key)
        if view is None:
            view = access_view(access, allowed, self.settings.trail_enabled)
            self._views[key] = view
        return view

    def reload_policy(self) -> bool:
        """Load and compile the .polar files again (SIGHUP). A policy that does not load
        leaves the one in force untouched; requests already running finish under the old."""
        try:
            loaded = load_policy(Policy(self.settings.policy_dir), self.schema)
        except PolicyError as exc:
            log.error("policy.reload_failed", error=str(exc))
            metrics.policy_reloaded(ok=False)
            return False
        verifier = self._verifier(loaded.policy)
        access = self._compiled_access(loaded)
        self.policy, self.verifier, self._access = loaded, verifier, access
        self._views = {}
        # Each role's introspection is rebuilt from the new policy on its next use.
        self.schema.introspection_views.clear()
        # Subscriptions whose feed the new policy closes to their role end now.
        self.feeds.policy_reloaded()
        log.info("policy.reloaded", roles=sorted(loaded.policy.roles))
        metrics.policy_reloaded(ok=True)
        return True


def create_app(
    settings: Settings | None = None,
    *,
    field_policy: type[SchemaExtension] | None = FieldPolicy,
    access_override: AccessOverride | None = None,
    span_exporter: SpanExporter | None = None,
) -> Starlette:
    """The gateway. `field_policy` and `access_override` exist for the benchmark's variants
    (no policy, naive Oso per field); production always runs with the defaults.
    `span_exporter` turns traces on into it (tests: the SDK's in-memory exporter)."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_format_in_force)
    check_start_up(settings)
    state = AppState(settings, field_policy, access_override,
                     tracing_from_settings(settings, span_exporter))
    warn_development_defaults(settings)

    shutdown = GracefulShutdown(state.feeds.going_away)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        log.info("gateway.start", database=state.engine.url.render_as_string(hide_password=True))
        loop = asyncio.get_running_loop()
        # Only the main thread may own signals (tests run servers in threads).
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGHUP, state.reload_policy)
        # Schema, policy and libraries live as long as the process: moved out of the cyclic
        # collector's sight, a full collection no longer walks them (a 1,000-row response
        # triggered ~0.1 s pauses walking ~150,000 such objects).
        gc.freeze()
        checkpoints = asyncio.create_task(
            state.db.checkpoint_forever(settings.sqlite_checkpoint_seconds))
        await state.feeds.start()
        restore_signals = shutdown.answer_signals_first(loop)
        yield
        restore_signals()
        await state.feeds.stop()
        checkpoints.cancel()
        await close_registry(state.registry)
        await state.persisted.close()
        await state.trail.thread.close()
        await state.engine.dispose()
        if state.tracing is not None:
            await asyncio.to_thread(state.tracing.shutdown)  # exports what is buffered
        metrics.process_stopped(settings)

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> Response:
        # The registry's state is reported but never fails readiness: without it the office
        # keeps working, identity fields are null.
        try:
            await state.db.ping()
        except DatabaseUnavailableError:
            return JSONResponse({"status": "unavailable", "database": "down",
                                 "registry": await registry_status(state.registry)},
                                status_code=503)
        return JSONResponse({"status": "ok", "database": "up",
                             "registry": await registry_status(state.registry)})

    async def graphiql(_request: Request) -> Response:
        return FileResponse(STATIC / "graphiql.html")

    async def root(_request: Request) -> Response:
        return RedirectResponse("/graphiql")

    graphql = SisadaGraphQL(state, graphql_ide="graphiql" if settings.graphiql else None)
    routes = [
        Route("/", root),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        # Outside in: HTTP hygiene (size, media type, JSON; it answers other methods with a
        # JSON 405), then the token, then persisted operations (hashes become documents,
        # allow-lists), then rate limits (they need the principal and the documents), then
        # GraphQL.
        Route("/graphql", metrics.TimedRequests(HttpGuard(AuthMiddleware(
            PersistedOperationsMiddleware(
                rate_limited(graphql, settings, state.policy.policy.anonymous_role),
                state.persisted),
            lambda: state.verifier), settings))),
        # Subscriptions: graphql-transport-ws only, authenticated in connection_init.
        WebSocketRoute("/graphql", state.feeds.endpoint),
        # Prometheus: its own optional token, never the GraphQL one (gateway/metrics.py).
        metrics.metrics_route(settings),
        *policy_page_routes(state, lambda page: AuthMiddleware(page, lambda: state.verifier)),
    ]
    if settings.graphiql:
        routes += [
            Route("/graphiql", graphiql),
            *demo_token_routes(state),
            Mount("/graphiql-static", StaticFiles(directory=STATIC), name="graphiql-static"),
        ]
    # Log lines name these paths only; any other is "/<unknown>" (gateway/logging.py).
    name_routes(routes)
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            # The request id first: every line logged, inside and out, carries it.
            Middleware(RequestIdMiddleware, trusted_proxies=settings.trusted_proxies),
            *([Middleware(ServerSpans, tracer=state.tracing.tracer,
                          paths=frozenset(getattr(r, "path", "") for r in routes))]
              if state.tracing is not None else []),
            Middleware(CutOnShutdown, shutdown=shutdown), cors_middleware(settings)],
        exception_handlers={404: _not_found, 500: _server_error},
    )
    app.state.sisada = state
    return app
