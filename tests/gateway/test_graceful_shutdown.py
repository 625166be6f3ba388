"""Graceful shutdown of a real `sisada serve` process (issue 12, §2).

SIGTERM while an identity read is in flight (its registry answer held back by a slow proxy)
and a subscriber is connected: the subscriber's socket closes with 1001 (going away), new
connections are refused, the request in flight still gets its names — with its trail entry
written (SPEC rule 6) — and the process exits within the grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from conftest import PURPOSE, Deployment, free_port, run_async
from replica_process import ReplicaProcess
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine
from ws_client import FeedClient

from resolvers.models import AccessTrailEntry

HOLD_SECONDS = 2.0
GRACE_SECONDS = 10
NAMES = "{ foreigners(first: 5) { nodes { id fullName } } }"


@contextlib.contextmanager
def slow_registry(upstream: str) -> Iterator[tuple[str, threading.Event]]:
    """A proxy in front of the registry that holds every answer HOLD_SECONDS; the event is
    set when a request has arrived."""
    arrived = threading.Event()

    class Hold(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            arrived.set()
            time.sleep(HOLD_SECONDS)
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() in ("authorization", "content-type", "x-request-id")}
            answer = httpx.post(upstream, content=body, headers=headers, timeout=10)
            self.send_response(answer.status_code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Hold)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/graphql", arrived
    finally:
        server.shutdown()
        server.server_close()


def trail_entries(database_url: str) -> int:
    async def count() -> int:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as conn:
                return int(await conn.scalar(
                    select(func.count()).select_from(AccessTrailEntry.__table__)))
        finally:
            await engine.dispose()

    return run_async(count())


async def _subscribed(base: str, token: str) -> FeedClient:
    client = await FeedClient(base).__aenter__()
    assert (await client.init(token, PURPOSE))["type"] == "connection_ack"
    await client.subscribe("subscription { reportUpdated { eventId } }")
    assert await client.nothing_within(0.3)
    return client


async def test_sigterm_lets_the_request_in_flight_finish_and_tells_subscribers_to_go_away(
        deployment: Deployment) -> None:
    upstream = deployment.settings.registry_url
    assert upstream
    with slow_registry(upstream) as (proxy, arrived), ReplicaProcess(deployment, {
            "SISADA_REGISTRY_URL": proxy,
            "SISADA_SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS)}) as replica:
        before = trail_entries(deployment.database_url)
        subscriber = await _subscribed(replica.base,
                                       deployment.token("immigration_supervisor") or "")
        headers = {"authorization": f"Bearer {deployment.token('immigration_officer')}",
                   "sisada-purpose": PURPOSE}
        async with httpx.AsyncClient(timeout=30) as client:
            in_flight = asyncio.create_task(client.post(
                f"{replica.base}/graphql", json={"query": NAMES}, headers=headers))
            assert await asyncio.to_thread(arrived.wait, 10), "the read never reached it"
            signalled = time.monotonic()
            replica.signal(signal.SIGTERM)
            close_code = await subscriber.closed_with(timeout=5)
            await asyncio.sleep(0.3)
            with pytest.raises(httpx.ConnectError):
                await client.get(f"{replica.base}/healthz")
            response = await asyncio.wait_for(in_flight, GRACE_SECONDS + 5)
        exit_code = await asyncio.to_thread(replica.wait, GRACE_SECONDS + 5)
        took = time.monotonic() - signalled
        log = replica.stderr()

    assert close_code == 1001, log
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    names = [node["fullName"] for node in body["data"]["foreigners"]["nodes"]]
    assert names and all(names), body
    assert b'"fullName":null' not in response.content
    # The names left with their trail entry: written before the process went.
    assert trail_entries(deployment.database_url) == before + 1
    assert HOLD_SECONDS * 0.5 < took < GRACE_SECONDS, log
    # uvicorn ends a SIGTERM'd server by re-raising the signal once it has shut down.
    assert exit_code in (0, -signal.SIGTERM), (exit_code, log)
    assert "Traceback" not in log


def test_a_request_longer_than_the_grace_period_is_cut_and_returns_nothing(
        deployment: Deployment) -> None:
    upstream = deployment.settings.registry_url
    assert upstream
    with slow_registry(upstream) as (proxy, arrived), ReplicaProcess(deployment, {
            "SISADA_REGISTRY_URL": proxy, "SISADA_SHUTDOWN_GRACE_SECONDS": "0.5"}) as replica:
        before = trail_entries(deployment.database_url)
        headers = {"authorization": f"Bearer {deployment.token('immigration_officer')}",
                   "sisada-purpose": PURPOSE}
        with ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(httpx.post, f"{replica.base}/graphql",
                                    json={"query": NAMES}, headers=headers, timeout=30)
            assert arrived.wait(10)
            replica.signal(signal.SIGTERM)
            cut = in_flight.result(timeout=HOLD_SECONDS + 5)
        replica.wait(5)
        log = replica.stderr()
    assert cut.status_code == 503, cut.text
    assert cut.json()["errors"][0]["extensions"]["code"] == "SHUTTING_DOWN"
    assert b"fullName" not in cut.content
    assert "Traceback" not in log
    # Cut before its names were read: nothing was returned, so nothing was recorded.
    assert trail_entries(deployment.database_url) == before


def test_going_away_is_quick_when_nobody_is_connected(deployment: Deployment) -> None:
    with ReplicaProcess(deployment) as replica:
        started = time.monotonic()
        replica.signal(signal.SIGTERM)
        replica.wait(5)
        assert time.monotonic() - started < 3, replica.stderr()
