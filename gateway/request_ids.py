"""Request ids: one per HTTP request and per WebSocket connection, the same everywhere.

The id is bound (structlog contextvars) for the whole request, so every log line of it —
the app's events and uvicorn's access line — carries `request_id`; it is returned in the
`X-Request-ID` response header (on a WebSocket, in the handshake's answer); it is the
GraphQL context's `request_id`, so trail entries and registry calls carry it too.

An incoming `X-Request-ID` is kept only from a trusted proxy (SISADA_TRUSTED_PROXIES, the
same list that decides whose `X-Forwarded-For` is believed) and only when it is a short
token of safe characters; anything else gets a fresh id. A caller cannot write its own text
into the logs and the trail, nor make its requests look like another's.

This middleware is also where `X-Forwarded-For` is applied (uvicorn's own
`ProxyHeadersMiddleware`, run here rather than by uvicorn): both decisions need the
address of the peer itself, which is gone once the forwarded client has replaced it.
"""

from __future__ import annotations

import ipaddress
import re
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from gateway.http_guards import error_response
from gateway.logging import log

HEADER = b"x-request-id"
# Letters, digits, dot, underscore, hyphen; 64 at most (a UUID, a ULID, a router's id).
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Where the app finds them in the ASGI scope.
REQUEST_ID = "sisada.request_id"
FROM_TRUSTED_PROXY = "sisada.from_trusted_proxy"
PEER = "sisada.peer"


def fresh_request_id() -> str:
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Outermost of the app's middleware (inside Starlette's error handler)."""

    def __init__(self, app: ASGIApp, trusted_proxies: str = "") -> None:
        self.app = app
        # Without trusted proxies nothing forwarded is believed: no X-Forwarded-For either.
        self._proxied = (ProxyHeadersMiddleware(_ClientIsAnAddress(app),  # type: ignore[arg-type]
                                                trusted_hosts=trusted_proxies)
                         if trusted_proxies else None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        trusted = self._from_trusted_proxy(scope)
        scope[PEER] = scope.get("client")
        request_id = (_incoming(scope) if trusted else None) or fresh_request_id()
        scope[REQUEST_ID] = request_id
        scope[FROM_TRUSTED_PROXY] = trusted
        header = (HEADER, request_id.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = True
            await send_with_id(message)

        tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await (self._proxied or self.app)(scope, receive, sending)  # type: ignore[arg-type]
        except Exception as exc:
            # Answered here, not by Starlette's outer handler: the 500 keeps the request id
            # (header and log line), and the error is logged once, not again by uvicorn.
            error_id = uuid.uuid4().hex[:16]
            log.error("http.unexpected_error", error_id=error_id, error=type(exc).__name__)
            if scope["type"] == "http" and not started:
                await error_response(500, "Unexpected error.", "INTERNAL_SERVER_ERROR",
                                     error_id=error_id)(scope, receive, send_with_id)
        finally:
            structlog.contextvars.reset_contextvars(**tokens)

    def _from_trusted_proxy(self, scope: Scope) -> bool:
        if self._proxied is None:
            return False
        client = scope.get("client")
        return (client[0] if client else None) in self._proxied.trusted_hosts


class _ClientIsAnAddress:
    """Behind ProxyHeadersMiddleware, which takes the forwarded client as it is written: a
    proxy that passes the caller's own X-Forwarded-For through would let it write any text
    where the client's address goes (access lines, the trail's client address, rate-limit
    keys). Anything but an IP address leaves the peer's own address in place."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if client and not _is_ip_address(client[0]):
            scope["client"] = scope.get(PEER)
        await self.app(scope, receive, send)


def _is_ip_address(text: str) -> bool:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    # An IPv6 scope (`fe80::1%<anything>`) is free text after the `%`.
    return not (isinstance(address, ipaddress.IPv6Address) and address.scope_id)


def _incoming(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == HEADER:
            text = value.decode("latin-1")
            return text if SAFE_REQUEST_ID.fullmatch(text) else None
    return None


def request_id_of(scope: Scope) -> str:
    """The request's id (a fresh one for an app run without the middleware: unit tests)."""
    return scope.get(REQUEST_ID) or fresh_request_id()
