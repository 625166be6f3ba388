"""One WebSocket: the graphql-transport-ws protocol, its limits and its send queue.

Only `graphql-transport-ws` is spoken: a client offering anything else (the legacy
`graphql-ws`, whose Strawberry handler before 0.312.3 let a client skip connection_init
and the authentication in it, CVE-2026-35523) is refused at the handshake and is sent
nothing. A browser's Origin must be on the CORS allow-list or the gateway's own.

The token comes in connection_init's payload (`{"authorization": "Bearer …", "purpose":
…}`) or in the upgrade request's Authorization header; a token that is not valid closes
with 4403, one that expires while the socket is open with 4401.

Every frame to the client passes one bounded queue drained by one writer task: a client
that reads slower than its events arrive is closed (4413) when the queue passes its frame
or byte bound, or when one frame cannot leave within the send timeout. Memory per socket
stays bounded whatever the client does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import jwt
import orjson
from starlette.datastructures import Headers
from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway import metrics
from gateway.access_trail import PURPOSE_HEADER, stated_purpose
from gateway.auth import AuthError, AuthUnavailableError
from gateway.logging import log
from gateway.request_ids import request_id_of
from gateway.subscriptions import codes
from gateway.subscriptions.hub import Member, ReplayTooLongError
from gateway.subscriptions.render import Selection, Subscriber
from policies import Principal
from resolvers.db import DatabaseUnavailableError

if TYPE_CHECKING:
    from gateway.subscriptions import LiveFeeds

MAX_OPERATION_ID = 128
CLOSE_TIMEOUT_SECONDS = 2.0
# A client silent for this many keep-alive intervals (it answers no ping) is gone.
SILENT_INTERVALS = 3


class _Closed(Exception):
    """The socket is closing; the receive loop ends."""


@dataclass(eq=False)
class _Operation:
    task: asyncio.Task[None] | None = None
    member: Member | None = None


def origin_allowed(headers: Headers, allowed: list[str]) -> bool:
    """A browser sends Origin with every WebSocket: it must be allowed for CORS or be the
    gateway's own. Other clients send none; they carry bearer tokens, not cookies, so a
    foreign page cannot ride on them."""
    origin = headers.get("origin")
    if origin is None:
        return True
    if origin in allowed or "*" in allowed:
        return True
    return urlsplit(origin).netloc.lower() == headers.get("host", "").lower()


def token_expiry(authorization: str | None) -> float | None:
    """`exp` of a bearer token the verifier has just accepted (so it is well formed)."""
    if not authorization or not authorization.lower().startswith("bearer "):
        return None
    try:
        claims = jwt.decode(authorization[7:].strip(), options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    exp = claims.get("exp")
    return float(exp) if isinstance(exp, int) and not isinstance(exp, bool) else None


def principal_key(principal: Principal, client: str | None) -> tuple[Any, ...]:
    if principal.subject is not None:
        return ("subject", principal.issuer, principal.subject)
    if principal.officer_id is not None or principal.area is not None:
        return ("claims", principal.role, principal.area, principal.officer_id)
    return ("address", client)


class Connection:
    def __init__(self, websocket: WebSocket, feeds: LiveFeeds) -> None:
        self.websocket = websocket
        self.feeds = feeds
        self.settings = feeds.state.settings
        self.client = websocket.client.host if websocket.client else None
        self.subscriber: Subscriber | None = None
        self.ops: dict[str, _Operation] = {}
        self.closing: tuple[int, str] | None = None
        self._frames: deque[str] = deque()
        self._bytes = 0
        self._ready = asyncio.Event()
        self._main: asyncio.Task[Any] | None = None
        self._last_heard = time.monotonic()
        self._slot: tuple[Any, ...] | None = None
        self._timers: list[asyncio.Task[None]] = []

    # -- the socket's life ----------------------------------------------------------------

    async def serve(self) -> None:
        websocket = self.websocket
        if not origin_allowed(websocket.headers, self.settings.cors_allow_origins):
            await websocket.close()  # before accept: the handshake is answered 403
            return
        if codes.SUBPROTOCOL not in websocket.scope.get("subprotocols", []):
            await websocket.close()  # legacy graphql-ws or none: 403, nothing else sent
            return
        await websocket.accept(subprotocol=codes.SUBPROTOCOL)
        self._main = asyncio.current_task()
        writer = asyncio.create_task(self._write())
        self.feeds.connections.add(self)
        metrics.socket_opened(1)
        try:
            if len(self.feeds.connections) > self.settings.ws_max_sockets:
                self.close(codes.TOO_MANY_SOCKETS, "Too many sockets on this server")
                raise _Closed
            await self._handshake()
            self._timers.append(asyncio.create_task(self._keep_alive()))
            while True:
                await self._handle(await self._receive())
        except (_Closed, asyncio.CancelledError, WebSocketDisconnect):
            pass
        except Exception as exc:  # never a crash of the server; the log says what
            log.error("ws.unexpected_error", error=repr(exc))
            self.close(1011, "Unexpected error")
        finally:
            await self._finish(writer)

    async def _finish(self, writer: asyncio.Task[None]) -> None:
        self.feeds.connections.discard(self)
        metrics.socket_opened(-1)  # serve() counted it in just before calling us
        for timer in self._timers:
            timer.cancel()
        for op_id in list(self.ops):
            self._end(op_id)
        if self._slot is not None:
            self.feeds.release(self._slot)
            self._slot = None
        if self.closing is None:
            self.closing = (1000, "")
            writer.cancel()  # the client left: nothing more can be sent
        self._ready.set()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError, Exception):
            async with asyncio.timeout(CLOSE_TIMEOUT_SECONDS):
                await writer
        writer.cancel()

    def close(self, code: int, reason: str) -> None:
        """Close with `code`: what is queued is dropped, the writer sends the close frame,
        and the receive loop ends."""
        if self.closing is not None:
            return
        self.closing = (code, reason)
        self._frames.clear()
        self._bytes = 0
        self._ready.set()
        if self._main is not None and self._main is not asyncio.current_task():
            self._main.cancel()

    # -- receiving ------------------------------------------------------------------------

    async def _receive(self) -> dict[str, Any]:
        message = await self.websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise _Closed
        text = message.get("text")
        if text is None:
            self.close(codes.BAD_MESSAGE, "WebSocket message type must be text")
            raise _Closed
        limit = self.settings.ws_max_message_bytes
        if len(text) > limit or (len(text) * 4 > limit
                                 and len(text.encode("utf-8", "surrogatepass")) > limit):
            self.close(codes.MESSAGE_TOO_BIG, f"Message larger than {limit} bytes")
            raise _Closed
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            self.close(codes.BAD_MESSAGE, "WebSocket message must be a JSON object with a type")
            raise _Closed
        self._last_heard = time.monotonic()
        return data

    async def _handshake(self) -> None:
        try:
            async with asyncio.timeout(self.settings.ws_init_timeout_seconds):
                message = await self._receive()
        except TimeoutError:
            self.close(codes.INIT_TIMEOUT, "Connection initialisation timeout")
            raise _Closed from None
        if message["type"] != "connection_init":
            self.close(codes.UNAUTHORIZED, "Unauthorized")
            raise _Closed
        payload = message.get("payload")
        payload = {} if payload is None else payload
        if not isinstance(payload, dict):
            self.close(codes.BAD_MESSAGE, "Invalid connection init payload")
            raise _Closed
        authorization = self._authorization(payload)
        purpose = payload.get("purpose", self.websocket.headers.get(PURPOSE_HEADER))
        if purpose is not None and not isinstance(purpose, str):
            self.close(codes.BAD_MESSAGE, "Invalid connection init payload")
            raise _Closed
        try:
            principal = await self.feeds.state.verifier.authenticate(authorization)
        except AuthUnavailableError:
            self.close(codes.AUTH_UNAVAILABLE, "Cannot verify the token right now")
            raise _Closed from None
        except AuthError:
            self.close(codes.FORBIDDEN, "Forbidden")
            raise _Closed from None
        slot = principal_key(principal, self.client)
        if not self.feeds.claim(slot):
            self.close(codes.TOO_MANY_SOCKETS, "Too many sockets for this principal")
            raise _Closed
        self._slot = slot
        self.subscriber = Subscriber(principal, stated_purpose(purpose), self.client,
                                     request_id_of(self.websocket.scope))
        expiry = token_expiry(authorization)
        if expiry is not None:
            self._timers.append(asyncio.create_task(self._expire_at(expiry)))
        self._enqueue('{"type":"connection_ack"}')

    def _authorization(self, payload: dict[str, Any]) -> str | None:
        """The payload's `authorization` (any case), else the upgrade request's header."""
        for key, value in payload.items():
            if isinstance(key, str) and key.lower() == "authorization":
                if not isinstance(value, str):
                    self.close(codes.FORBIDDEN, "Forbidden")
                    raise _Closed
                return value
        return self.websocket.headers.get("authorization")

    async def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "ping":
            self._enqueue('{"type":"pong"}')
        elif kind == "pong":
            pass
        elif kind == "subscribe":
            self._subscribe(message)
        elif kind == "complete":
            op_id = message.get("id")
            if isinstance(op_id, str):
                self._end(op_id)
        elif kind == "connection_init":
            self.close(codes.TOO_MANY_INITS, "Too many initialisation requests")
            raise _Closed
        else:
            self.close(codes.BAD_MESSAGE, "Unknown message type")
            raise _Closed

    # -- subscriptions --------------------------------------------------------------------

    def _subscribe(self, message: dict[str, Any]) -> None:
        op_id, payload = message.get("id"), message.get("payload")
        if (not isinstance(op_id, str) or not 0 < len(op_id) <= MAX_OPERATION_ID
                or not isinstance(payload, dict)):
            self.close(codes.BAD_MESSAGE, "Invalid subscribe message")
            raise _Closed
        if op_id in self.ops:
            self.close(codes.DUPLICATE_ID, f"Subscriber for {op_id} already exists")
            raise _Closed
        if len(self.ops) >= self.settings.ws_max_subscriptions_per_socket:
            self.send_error(op_id, [{
                "message": f"at most {self.settings.ws_max_subscriptions_per_socket} "
                           "subscriptions per socket",
                "extensions": {"code": codes.TOO_MANY_SUBSCRIPTIONS}}])
            return
        query, variables = payload.get("query"), payload.get("variables")
        name = payload.get("operationName")
        if (not isinstance(query, str) or not isinstance(variables, dict | None)
                or not isinstance(name, str | None)):
            self.send_error(op_id, [{
                "message": "`query` must be a string, `variables` an object, "
                           "`operationName` a string",
                "extensions": {"code": "BAD_REQUEST"}}])
            return
        operation = _Operation()
        self.ops[op_id] = operation
        operation.task = asyncio.create_task(
            self._start(op_id, operation, Selection(query, variables, name)))

    async def _start(self, op_id: str, operation: _Operation, selection: Selection) -> None:
        assert self.subscriber is not None
        from gateway.subscriptions import SubscriptionRefusedError

        try:
            # An allow-list-only partner subscribes with a registered document only.
            refused = await self.feeds.state.persisted.subscription_errors(
                self.subscriber.principal, selection.query)
            if refused is not None:
                self.send_error(op_id, refused)
                return
            request, live = await self.feeds.prepare(self.subscriber, selection)
            member = Member(self, op_id, self.subscriber, live, request)
            operation.member = member
            await self.feeds.hub.join(member)
        except SubscriptionRefusedError as exc:
            self.send_error(op_id, exc.errors)
        except ReplayTooLongError as exc:
            self.send_error(op_id, exc.formatted())
        except DatabaseUnavailableError:
            self.send_error(op_id, [{"message": "the database is unavailable",
                                     "extensions": {"code": "UNAVAILABLE"}}])
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("ws.subscribe_failed", error=repr(exc))
            self.send_error(op_id, [{"message": "Unexpected error.",
                                     "extensions": {"code": "INTERNAL_SERVER_ERROR"}}])
        else:
            return
        if operation.member is not None:
            self.feeds.hub.leave(operation.member)

    def _end(self, op_id: str) -> None:
        operation = self.ops.pop(op_id, None)
        if operation is None:
            return
        if operation.task is not None and not operation.task.done():
            operation.task.cancel()
        if operation.member is not None:
            self.feeds.hub.leave(operation.member)

    # -- the hub's sink -------------------------------------------------------------------

    def send_next(self, op_id: str, payload: str) -> None:
        if op_id not in self.ops:
            # Ended meanwhile (completed, or by a policy reload) while its event rendered:
            # nothing more goes out under that id.
            return
        # The payload text is shared by every socket of a group; only the id is this one's.
        self._enqueue('{"id":' + orjson.dumps(op_id).decode() + ',"type":"next","payload":'
                      + payload + "}")

    def send_error(self, op_id: str, errors: list[dict[str, Any]]) -> None:
        self.ops.pop(op_id, None)
        self._enqueue(orjson.dumps({"id": op_id, "type": "error", "payload": errors}).decode())

    def forget(self, op_id: str) -> None:
        self.ops.pop(op_id, None)

    def _enqueue(self, frame: str) -> None:
        if self.closing is not None:
            return
        if (len(self._frames) >= self.settings.ws_send_queue_frames
                or self._bytes + len(frame) > self.settings.ws_send_queue_bytes):
            log.warning("ws.slow_consumer", queued=len(self._frames), bytes=self._bytes)
            self.close(codes.SLOW_CONSUMER, "Slow consumer: the send queue is full")
            return
        self._frames.append(frame)
        self._bytes += len(frame)
        self._ready.set()

    async def _write(self) -> None:
        send = self.websocket.send
        timeout = self.settings.ws_send_timeout_seconds
        while True:
            if self.closing is not None:
                code, reason = self.closing
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(CLOSE_TIMEOUT_SECONDS):
                        await send({"type": "websocket.close", "code": code, "reason": reason})
                return
            if not self._frames:
                self._ready.clear()
                await self._ready.wait()
                continue
            frame = self._frames.popleft()
            self._bytes -= len(frame)
            try:
                async with asyncio.timeout(timeout):
                    await send({"type": "websocket.send", "text": frame})
            except TimeoutError:
                log.warning("ws.slow_consumer", send_timeout=timeout)
                self.close(codes.SLOW_CONSUMER, "Slow consumer: a frame could not be sent")
            except Exception:
                # The client is gone: end the receive loop too.
                if self._main is not None:
                    self._main.cancel()
                return

    # -- timers ---------------------------------------------------------------------------

    async def _expire_at(self, expiry: float) -> None:
        await asyncio.sleep(max(0.0, expiry - time.time()))
        self.close(codes.UNAUTHORIZED, "Token expired")

    async def _keep_alive(self) -> None:
        interval = self.settings.ws_keepalive_seconds
        while True:
            await asyncio.sleep(interval)
            if time.monotonic() - self._last_heard > interval * SILENT_INTERVALS:
                self.close(codes.INIT_TIMEOUT, "Keep-alive timeout")
                return
            self._enqueue('{"type":"ping"}')
