"""The send queue of one socket is bounded: a client that does not read is closed with
4413 and what was waiting is dropped — memory per socket never grows past the bound.

Driven here with a socket whose sends never complete; a real client that stops reading,
through the kernel's buffers, is tests/gateway/test_subscriptions_slow_consumer.py."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from gateway.settings import Settings
from gateway.subscriptions import codes
from gateway.subscriptions.connection import Connection, _Operation


class _StuckSocket:
    """A WebSocket whose client never reads: every send waits forever."""

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self.client = SimpleNamespace(host="127.0.0.1")
        self.sent: list[dict[str, Any]] = []

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)
        await asyncio.Event().wait()


def _connection(**limits: Any) -> tuple[Connection, _StuckSocket]:
    settings = Settings(jwt_secret="x" * 40, **limits)
    socket = _StuckSocket()
    feeds = SimpleNamespace(state=SimpleNamespace(settings=settings))
    connection = Connection(socket, feeds)  # type: ignore[arg-type]
    connection.ops["op"] = _Operation()  # one subscription in progress
    return connection, socket


async def test_a_full_queue_closes_the_socket_4413_and_drops_the_backlog() -> None:
    connection, _socket = _connection(ws_send_queue_frames=3)
    for n in range(3):
        connection.send_next("op", f'{{"n":{n}}}')
    assert connection.closing is None
    connection.send_next("op", '{"n":3}')
    assert connection.closing is not None and connection.closing[0] == codes.SLOW_CONSUMER
    assert len(connection._frames) == 0 and connection._bytes == 0
    connection.send_next("op", '{"n":4}')  # after the close nothing is queued
    assert len(connection._frames) == 0


async def test_the_byte_bound_closes_before_the_frame_bound() -> None:
    connection, _socket = _connection(ws_send_queue_frames=1000, ws_send_queue_bytes=2048)
    connection.send_next("op", '"' + "x" * 1500 + '"')
    connection.send_next("op", '"' + "x" * 1500 + '"')
    assert connection.closing is not None and connection.closing[0] == codes.SLOW_CONSUMER


async def test_nothing_is_queued_for_a_subscription_that_ended() -> None:
    connection, _socket = _connection()
    connection.send_next("op", '{"n":1}')
    connection.forget("op")
    connection.send_next("op", '{"n":2}')  # rendered before it ended, sent after: dropped
    assert len(connection._frames) == 1


async def test_a_frame_that_cannot_leave_in_time_closes_4413() -> None:
    connection, socket = _connection(ws_send_timeout_seconds=0.2)
    writer = asyncio.create_task(connection._write())
    connection.send_next("op", '{"n":1}')
    await asyncio.sleep(0.5)
    assert connection.closing is not None and connection.closing[0] == codes.SLOW_CONSUMER
    writer.cancel()
    assert socket.sent[0]["type"] == "websocket.send"
