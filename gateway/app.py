"""The ASGI app: /graphql (POST, GET), GraphiQL from local assets, /healthz, /readyz."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from gateway.auth import AuthError, AuthUnavailableError, TokenVerifier
from gateway.logging import configure_logging, log
from gateway.policy_runtime import LoadedPolicy, load_policy
from gateway.settings import Settings, get_settings
from policies import Policy, Principal
from resolvers.db import Database, DatabaseUnavailableError, create_engine
from schema.context import GraphQLContext, build_context
from schema.root import build_schema

STATIC = Path(__file__).parent / "static"


class SisadaGraphQL(GraphQL):
    """Strawberry's ASGI view with our context, orjson and the local GraphiQL page."""

    def __init__(self, app_state: Any, **kwargs: Any) -> None:
        super().__init__(app_state.schema, **kwargs)
        self.app_state = app_state

    async def get_context(self, request: Request | WebSocket, response: Any) -> GraphQLContext:
        principal: Principal = request.scope["sisada.principal"]
        access = self.app_state.policy.compiled.for_role(principal.role)
        return build_context(principal, access, self.app_state.db, request)

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    async def render_graphql_ide(self, request: Request) -> Response:
        return FileResponse(STATIC / "graphiql.html")


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
            scope["sisada.principal"] = verifier.verify(header)
        except AuthUnavailableError as exc:
            await _error_response(scope, receive, send, 503, exc.message, "UNAVAILABLE")
            return
        except AuthError as exc:
            await _error_response(scope, receive, send, 401, exc.message, "UNAUTHENTICATED")
            return
        await self.app(scope, receive, send)


async def _error_response(
    scope: dict[str, Any], receive: Any, send: Any, status: int, message: str, code: str
) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 4401 if status == 401 else 4503})
        return
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if status == 401 else None
    response = Response(orjson.dumps(body), status_code=status, headers=headers,
                        media_type="application/json")
    await response(scope, receive, send)


class AppState:
    """Everything built once per process at start-up."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.schema = build_schema()
        self.policy: LoadedPolicy = load_policy(Policy(settings.policy_dir), self.schema)
        self.verifier = TokenVerifier(
            settings, self.policy.policy.roles, self.policy.policy.anonymous_role
        )
        self.engine = create_engine(settings.database_url)
        self.db = Database(self.engine)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    state = AppState(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        log.info("gateway.start", database=state.engine.url.render_as_string(hide_password=True))
        yield
        await state.engine.dispose()

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> Response:
        try:
            await state.db.ping()
        except DatabaseUnavailableError:
            return JSONResponse({"status": "unavailable", "database": "down"}, status_code=503)
        return JSONResponse({"status": "ok", "database": "up"})

    async def graphiql(_request: Request) -> Response:
        return FileResponse(STATIC / "graphiql.html")

    async def root(_request: Request) -> Response:
        return RedirectResponse("/graphiql")

    graphql = SisadaGraphQL(state, graphql_ide="graphiql" if settings.graphiql else None)
    routes = [
        Route("/", root),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/graphql", AuthMiddleware(graphql, lambda: state.verifier),
              methods=["GET", "POST"]),
    ]
    if settings.graphiql:
        routes += [
            Route("/graphiql", graphiql),
            Mount("/graphiql-static", StaticFiles(directory=STATIC), name="graphiql-static"),
        ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.sisada = state
    return app
