"""A real client that stops reading is cut off, and what waited for it is dropped: the
server's memory for that socket never passes its bounds (`ws_send_queue_frames`,
`ws_send_queue_bytes`, `ws_send_timeout_seconds`). The client here is a real
graphql-transport-ws socket with a small kernel receive buffer that stops reading after
its subscription is acknowledged; large events then pile up until the server gives up on
it (4413; the close frame itself may not fit through the full pipe, and the socket is
dropped) — while a second subscriber that keeps reading receives every event."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import orjson
import pytest
from conftest import PURPOSE, Deployment, ServerThread, delete_marked_rows
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from ws_client import PROTOCOL, FeedClient, ws_url

from gateway.app import create_app
from gateway.subscriptions import codes

MARKER = "sisada-feed-slow-test-"
RECORD = "mutation R($input: RecordActivityInput!) { recordActivity(input: $input) { id } }"
FEED = "subscription { activityRecorded { eventId activity { id notes } } }"
# The slow client's events are large (its notes sixteen times over, ~64 kB a frame), so the
# kernel's and the transport's buffers fill after a few dozen events, not thousands.
SLOW_FEED = ("subscription { activityRecorded { eventId activity { id "
             + " ".join(f"n{i}: notes" for i in range(16)) + " } } }")
EVENTS = 60


@pytest.fixture(scope="module", autouse=True)
def _leave_the_seeded_data_as_found(deployment: Deployment) -> Iterator[None]:
    yield
    delete_marked_rows(deployment.database_url, MARKER)


async def test_a_client_that_stops_reading_is_closed_4413_as_immigration_supervisor(
        deployment: Deployment, tmp_path: Path) -> None:
    settings = deployment.settings_with(
        tmp_path, ws_send_queue_frames=16, ws_send_queue_bytes=2_000_000,
        ws_send_timeout_seconds=1.0)
    token = deployment.token("immigration_supervisor")
    app = create_app(settings)
    with ServerThread(app) as base_url:
        port = urlparse(base_url).port
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # A small receive window: the server's sends block after kilobytes, not megabytes.
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.connect(("127.0.0.1", port))
        raw.setblocking(False)
        # No compression: the frames' sizes are what they are on the wire.
        slow = await connect(ws_url(base_url), sock=raw, subprotocols=[PROTOCOL],  # type: ignore[list-item]
                             max_queue=1, ping_interval=None, max_size=2**24,
                             compression=None)
        await slow.send(orjson.dumps({"type": "connection_init", "payload": {
            "authorization": f"Bearer {token}", "purpose": PURPOSE}}).decode())
        assert orjson.loads(await slow.recv()) == {"type": "connection_ack"}
        await slow.send(orjson.dumps({"id": "slow", "type": "subscribe",
                                      "payload": {"query": SLOW_FEED}}).decode())
        async with FeedClient(base_url) as reader:
            assert await reader.init(token, purpose=PURPOSE) == {"type": "connection_ack"}
            op = await reader.subscribe(FEED)
            await asyncio.sleep(0.3)  # both subscriptions in place
            # The slow client reads nothing from here on.
            notes = MARKER + uuid.uuid4().hex + "x" * 3900
            async with httpx.AsyncClient(timeout=30) as http:
                for _ in range(EVENTS):
                    response = await http.post(
                        f"{base_url}/graphql",
                        json={"query": RECORD, "variables": {"input": {
                            "kind": "HOME_VISIT", "notes": notes,
                            "areaCode": deployment.facts.busiest_setiabudi_rt}}},
                        headers={"authorization":
                                 f"Bearer {deployment.token('immigration_officer')}"})
                    assert "errors" not in response.json()
            received = [await reader.next_payload(op) for _ in range(EVENTS)]
            connections = app.state.sisada.feeds.connections
            stuck = next(c for c in connections if "slow" in c.ops)
            # Its queue stays within its bounds while it waits...
            assert len(stuck._frames) <= 16 and stuck._bytes <= 2_000_000
            # ...and the server gives up on it: the socket is dropped, the reader stays.
            for _ in range(100):
                if stuck not in connections:
                    break
                await asyncio.sleep(0.1)
            assert stuck not in connections
            assert stuck.closing is not None and stuck.closing[0] == codes.SLOW_CONSUMER
            assert len(stuck._frames) == 0 and stuck._bytes == 0
            assert len(connections) == 1
        # What reached the slow client before the server gave up: some events, never all;
        # then the end (the close frame itself may not fit through the full pipe).
        frames = 0
        try:
            while True:
                await asyncio.wait_for(slow.recv(), 10)
                frames += 1
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd is not None else None
    assert code in (codes.SLOW_CONSUMER, None)
    # It got some of the events, never all: the rest were dropped with the socket.
    assert frames < EVENTS
    assert all(p["data"]["activityRecorded"]["activity"]["notes"] == notes for p in received)
