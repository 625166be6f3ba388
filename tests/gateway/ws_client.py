"""A small graphql-transport-ws client for the live-feed tests: real WebSocket frames
(the `websockets` library), read raw, so tests can assert on exactly what was sent."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

PROTOCOL = "graphql-transport-ws"
FRAME_TIMEOUT = 10.0


def ws_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://") + "/graphql"


class FeedClient:
    """One socket. `frames` keeps every text frame received, raw."""

    _ids = itertools.count(1)

    def __init__(self, base_url: str, *, subprotocols: list[str] | None = None,
                 headers: dict[str, str] | None = None, origin: str | None = None) -> None:
        self.url = ws_url(base_url)
        self.subprotocols = [PROTOCOL] if subprotocols is None else subprotocols
        self.headers = headers or {}
        self.origin = origin
        self.ws: ClientConnection | None = None
        self.raw: list[str] = []

    async def __aenter__(self) -> FeedClient:
        self.ws = await connect(self.url, subprotocols=self.subprotocols or None,  # type: ignore[arg-type]
                                additional_headers=self.headers, origin=self.origin,  # type: ignore[arg-type]
                                open_timeout=10, ping_interval=None, max_size=2**24)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self.ws is not None:
            await self.ws.close()

    async def send(self, message: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send(orjson.dumps(message).decode())

    async def init(self, token: str | None = None, purpose: str | None = None,
                   **extra: Any) -> dict[str, Any]:
        payload: dict[str, Any] = dict(extra)
        if token is not None:
            payload["authorization"] = f"Bearer {token}"
        if purpose is not None:
            payload["purpose"] = purpose
        await self.send({"type": "connection_init", "payload": payload})
        return await self.receive()

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None,
                        op_id: str | None = None) -> str:
        op_id = op_id or f"op{next(self._ids)}"
        payload: dict[str, Any] = {"query": query}
        if variables is not None:
            payload["variables"] = variables
        await self.send({"id": op_id, "type": "subscribe", "payload": payload})
        return op_id

    async def receive(self, timeout: float = FRAME_TIMEOUT) -> dict[str, Any]:
        """The next frame that is not a ping (pings are answered)."""
        assert self.ws is not None
        while True:
            text = await asyncio.wait_for(self.ws.recv(), timeout)
            assert isinstance(text, str)
            self.raw.append(text)
            message = orjson.loads(text)
            if message.get("type") == "ping":
                await self.send({"type": "pong"})
                continue
            return message

    async def next_payload(self, op_id: str, timeout: float = FRAME_TIMEOUT) -> dict[str, Any]:
        message = await self.receive(timeout)
        assert message.get("id") == op_id and message["type"] == "next", message
        return message["payload"]

    async def nothing_within(self, seconds: float) -> bool:
        try:
            message = await self.receive(seconds)
        except TimeoutError:
            return True
        raise AssertionError(f"unexpected frame: {message}")

    async def closed_with(self, timeout: float = FRAME_TIMEOUT) -> int | None:
        """The close code the server sent (frames before it are kept in `raw`)."""
        assert self.ws is not None
        try:
            while True:
                text = await asyncio.wait_for(self.ws.recv(), timeout)
                self.raw.append(str(text))
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd is not None else None
