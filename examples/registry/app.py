"""The registry's HTTP face: POST /graphql behind the service credential, GET /healthz.

Small on purpose: the stand-in answers the gateway, not browsers (no GraphiQL, no GET
queries, no subscriptions).
"""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from strawberry.schema.exceptions import CannotGetOperationTypeError

from examples.registry.entity_plan import entity_plan
from examples.registry.schema import RegistryContext, build_registry_schema
from resolvers.db import create_engine

# Enough for 5,000 representations with room to spare; anything larger is refused unread.
MAX_BODY_BYTES = 2 * 1024 * 1024


class _BodyTooLargeError(Exception):
    pass


def create_registry_app(database_url: str, token: str, record_path: Path | None = None
                        ) -> Starlette:
    """The registry as an ASGI app over `database_url`, answering only callers that present
    `token` as a bearer credential. With `record_path`, every /graphql request is appended
    there as one JSON line before it is answered (what tests use to prove what the registry
    received). The credential is checked before the body is read: a refused request
    (no or wrong credential, or a body too large) is recorded as `"refused": true` with
    its headers only, never its query or variables."""
    if not token:
        raise ValueError("the registry needs a service token")
    schema = build_registry_schema()
    graphql_schema = schema._schema  # graphql-core's own, for the entity plans' validation
    engine = create_engine(database_url)
    context = RegistryContext(engine=engine)
    expected = f"Bearer {token}".encode()

    async def graphql(request: Request) -> Response:
        authorization = request.headers.get("authorization")
        # Before anything of the body is read, kept or parsed: an anonymous caller gets no
        # further than the header (and cannot fill the record with 2 MB bodies).
        if authorization is None or not hmac.compare_digest(authorization.encode(), expected):
            _record(record_path, request, authorization, None, refused=True)
            return _errors(401, "a valid service credential is required", "UNAUTHENTICATED")
        try:
            body = await _read_body(request)
        except _BodyTooLargeError:
            _record(record_path, request, authorization, None, refused=True)
            return _errors(413, "request body too large", "PAYLOAD_TOO_LARGE")
        payload = _json(body)
        _record(record_path, request, authorization, payload, refused=False)
        if payload is None or not isinstance(payload.get("query"), str):
            return _errors(400, "the body must be a JSON object with a query", "BAD_REQUEST")
        variables = payload.get("variables")
        operation_name = payload.get("operationName")
        if variables is not None and not isinstance(variables, dict):
            return _errors(400, "variables must be an object", "BAD_REQUEST")
        query = payload["query"]
        name = operation_name if isinstance(operation_name, str) else None
        plan = entity_plan(graphql_schema, query, name)
        if plan is not None:
            planned = await plan.answer(context, variables)
            if planned is not None:
                return Response(orjson.dumps(planned), media_type="application/json")
        try:
            result = await schema.execute(
                query, variable_values=variables, context_value=context, operation_name=name)
        except CannotGetOperationTypeError:
            return _errors(400, "operationName names no operation of the document",
                           "BAD_REQUEST")
        answer: dict[str, Any] = {"data": result.data}
        if result.errors:
            answer["errors"] = [error.formatted for error in result.errors]
        return Response(orjson.dumps(answer), media_type="application/json")

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await engine.dispose()

    return Starlette(routes=[Route("/graphql", graphql, methods=["POST"]),
                             Route("/healthz", healthz, methods=["GET"])],
                     lifespan=lifespan)


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _BodyTooLargeError()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _BodyTooLargeError()
        chunks.append(chunk)
    return b"".join(chunks)


def _json(body: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _errors(status: int, message: str, code: str) -> Response:
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _record(path: Path | None, request: Request, authorization: str | None,
            payload: dict[str, Any] | None, *, refused: bool) -> None:
    if path is None:
        return
    payload = payload or {}
    line = {
        "time": datetime.now(UTC).isoformat(),
        "refused": refused,
        "authorization": authorization,
        "request_id": request.headers.get("x-request-id"),
        # The W3C trace context the gateway sends when its traces are on.
        "traceparent": request.headers.get("traceparent"),
        "query": payload.get("query"),
        "variables": payload.get("variables"),
        "operation_name": payload.get("operationName"),
    }
    # Opened per request and flushed on close: a test reading the file after its response
    # sees the line, and truncating the file between requests needs no coordination.
    with path.open("ab") as record:
        record.write(orjson.dumps(line) + b"\n")
