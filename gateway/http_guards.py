"""HTTP request hygiene in front of /graphql, and CORS from the configured allow-list.

`HttpGuard` refuses, before any token is checked or any GraphQL is parsed:

- methods other than GET and POST (405 `METHOD_NOT_ALLOWED`);
- POST bodies that are not `application/json` (415 `UNSUPPORTED_MEDIA_TYPE`). Form, multipart
  and text/plain bodies are what a cross-site form can send without a CORS preflight, so
  refusing them is the CSRF defence for browsers;
- bodies larger than `max_body_bytes` (413 `PAYLOAD_TOO_LARGE`), counted while the body
  streams in, whatever Content-Length claims;
- bodies that are not UTF-8, not JSON, nested deeper than `max_json_depth`, not an object (or
  a non-empty list of objects, for a batch), with parameters of the wrong JSON type, or with
  a null byte in the query (400 `BAD_REQUEST`); GET `variables` and `extensions` likewise.

The vetted operations are left in the scope (`GRAPHQL_REQUEST`) for the rate limiter, and the
body is replayed to the GraphQL view, which parses it again.

Strawberry answers the request errors it finds itself (a mutation over GET, a missing query,
a batch too large) with plain text; `strawberry_error_response` turns them into the same
JSON GraphQL errors. Every error message here is fixed text: nothing from the request body,
its headers or its token is echoed back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any

import orjson
from cross_web import HTTPException as StrawberryHTTPException  # raised by Strawberry
from starlette.datastructures import Headers, QueryParams
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from gateway.settings import Settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Where HttpGuard leaves the vetted GraphQL operations (a list of JSON objects) for the
# middlewares behind it.
GRAPHQL_REQUEST = "sisada.graphql_request"

ALLOWED_METHODS = "GET, POST"
# Every /graphql answer is per principal (its role, jurisdiction, token, even its client
# address): no shared cache (a CDN, a proxy) may keep one to replay it to the next caller
# of the URL, outside every policy and the trail. Set where each response is built:
# `error_response` here, SisadaGraphQL.run (gateway/app.py) for the GraphQL view's own.
CACHE_CONTROL = "cache-control"
NO_STORE = "no-store"
_OPERATION_FIELDS: tuple[tuple[str, type, str], ...] = (
    ("query", str, "a string"),
    ("operationName", str, "a string"),
    ("variables", dict, "an object"),
    ("extensions", dict, "an object"),
)
_UTF8 = frozenset({"utf-8", "utf8"})


class RequestRejectedError(Exception):
    """A request refused before GraphQL sees it: the HTTP status, a client-safe message and
    a stable code, plus any headers the status calls for (e.g. `Allow`)."""

    def __init__(self, status: int, message: str, code: str,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = dict(headers or {})

    def response(self) -> Response:
        return error_response(self.status, self.message, self.code, self.headers)


def error_response(status: int, message: str, code: str,
                   headers: Mapping[str, str] | None = None,
                   error_id: str | None = None) -> Response:
    """A GraphQL-shaped error body, always `application/json`, never stored by a cache
    (`NO_STORE`: an answer is the caller's own)."""
    extensions = {"code": code} if error_id is None else {"code": code, "errorId": error_id}
    body = {"errors": [{"message": message, "extensions": extensions}]}
    # Lower-cased as Starlette sends them, so a caller's Cache-Control replaces ours.
    merged = {CACHE_CONTROL: NO_STORE, **{k.lower(): v for k, v in (headers or {}).items()}}
    return Response(orjson.dumps(body), status_code=status, headers=merged,
                    media_type="application/json")


def client_address(scope: Scope) -> str:
    """The caller's address: the peer's, or the one a trusted proxy forwarded
    (RequestIdMiddleware has rewritten `scope["client"]` by then). The rate limiter counts
    by it, and the anonymous caller's persisted queries are kept under it."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class HttpGuard:
    """ASGI middleware: refuses malformed HTTP before auth, rate limits and GraphQL."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.max_body_bytes = settings.max_body_bytes
        self.max_json_depth = settings.max_json_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            if scope["method"] == "POST":
                _require_json_content_type(Headers(scope=scope))
                body = await self._read_body(scope, receive)
                if body is None:
                    return  # the client went away while sending
                operations = self._operations(_parse_body(body, self.max_json_depth))
                receive = _replay(body, receive)
            elif scope["method"] == "GET":
                operations = self._get_operations(QueryParams(scope.get("query_string", b"")))
            else:
                raise RequestRejectedError(
                    405, "GraphQL is served over GET and POST only", "METHOD_NOT_ALLOWED",
                    {"Allow": ALLOWED_METHODS})
        except RequestRejectedError as exc:
            await exc.response()(scope, receive, send)
            return
        scope[GRAPHQL_REQUEST] = operations
        await self.app(scope, receive, send)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise _too_large(self.max_body_bytes)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            # Counted as it arrives: a chunked body, or one whose Content-Length lies, stops here.
            if size > self.max_body_bytes:
                raise _too_large(self.max_body_bytes)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _operations(self, data: object) -> list[dict[str, Any]]:
        if isinstance(data, dict):
            operations = [data]
        elif isinstance(data, list) and data and all(isinstance(item, dict) for item in data):
            operations = data
        else:
            raise _bad_request(
                "the request body must be a JSON object, or a non-empty list of them for a batch")
        for operation in operations:
            _check_operation(operation)
        return operations

    def _get_operations(self, params: QueryParams) -> list[dict[str, Any]]:
        operation: dict[str, Any] = {"query": params.get("query"),
                                     "operationName": params.get("operationName")}
        for name in ("variables", "extensions"):
            raw = params.get(name)
            if raw:
                operation[name] = _parse_json(raw.encode("utf-8", "surrogatepass"),
                                              self.max_json_depth, f"`{name}`")
        _check_operation(operation)
        return [operation]


def _require_json_content_type(headers: Headers) -> None:
    media_type, _, parameters = headers.get("content-type", "").partition(";")
    acceptable = media_type.strip().lower() == "application/json"
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in _UTF8:
            acceptable = False
    if not acceptable:
        raise RequestRejectedError(
            415, "POST bodies must be application/json (UTF-8)", "UNSUPPORTED_MEDIA_TYPE")


def _parse_body(body: bytes, max_depth: int) -> object:
    return _parse_json(body, max_depth, "the request body")


def _parse_json(raw: bytes, max_depth: int, what: str) -> object:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _bad_request(f"{what} is not valid UTF-8") from exc
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc) or "recursion" in str(exc):
            raise _too_deep(what, max_depth) from exc
        raise _bad_request(f"{what} is not valid JSON") from exc
    if _deeper_than(data, max_depth):
        raise _too_deep(what, max_depth)
    return data


def _deeper_than(data: object, limit: int) -> bool:
    """Whether arrays and objects nest more than `limit` levels (iterative: no recursion)."""
    stack: list[tuple[object, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        children: Iterable[object]
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, dict | list))
    return False


def _check_operation(operation: Mapping[str, Any]) -> None:
    for name, expected, described in _OPERATION_FIELDS:
        value = operation.get(name)
        if value is not None and not isinstance(value, expected):
            raise _bad_request(f"`{name}` must be {described} or null")
    query = operation.get("query")
    if query is not None and "\x00" in query:
        raise _bad_request("the query contains a null byte")


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the already-read body on once, then defers to the client's."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _bad_request(message: str) -> RequestRejectedError:
    return RequestRejectedError(400, message, "BAD_REQUEST")


def _too_deep(what: str, max_depth: int) -> RequestRejectedError:
    return _bad_request(f"{what} nests more than {max_depth} levels deep")


def _too_large(max_body_bytes: int) -> RequestRejectedError:
    return RequestRejectedError(
        413, f"request body larger than {max_body_bytes} bytes", "PAYLOAD_TOO_LARGE")


# -- Strawberry's own request errors ----------------------------------------------------------

_CODES = {
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


def strawberry_error_response(exc: StrawberryHTTPException, method: str) -> Response:
    """Strawberry's plain-text HTTP error as a JSON GraphQL error.

    Its reasons are fixed texts (at most naming the operation the caller asked for). A
    mutation over GET is a 405 that points at POST, as GraphQL over HTTP asks.
    """
    cause = exc.__cause__
    if (method == "GET" and isinstance(cause, InvalidOperationTypeError)
            and cause.operation_type is OperationType.MUTATION):
        return error_response(405, exc.reason, "METHOD_NOT_ALLOWED", {"Allow": "POST"})
    headers = {"Allow": ALLOWED_METHODS} if exc.status_code == 405 else None
    return error_response(exc.status_code, exc.reason, _CODES.get(exc.status_code, "BAD_REQUEST"),
                          headers)


# -- CORS -------------------------------------------------------------------------------------

class _CORSMiddleware(CORSMiddleware):
    """Starlette's CORS; a refused preflight is answered in JSON like every other error."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers=request_headers)
        if response.status_code == 200:
            return response
        headers = {name: value for name, value in response.headers.items()
                   if name not in ("content-length", "content-type")}
        # Starlette's text names what failed ("Disallowed CORS origin, method"), nothing more.
        return error_response(response.status_code, bytes(response.body).decode(), "BAD_REQUEST",
                              headers)


def cors_middleware(settings: Settings) -> Middleware:
    """Browsers may call from the allow-listed origins only; bearer tokens, no cookies."""
    return Middleware(
        _CORSMiddleware,
        allow_origins=settings.cors_allow_origins,
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type", "Sisada-Purpose"],
        # A browser client may read when to retry after a 429.
        expose_headers=["Retry-After"],
        allow_credentials=False,
    )
