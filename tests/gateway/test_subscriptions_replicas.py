"""Live feeds across replicas, and nothing lost on reconnect.

Two real `sisada serve` processes share the deployment's database (SQLite file or
PostgreSQL), with the event bus chosen by configuration (Redis pub/sub; PostgreSQL
LISTEN/NOTIFY on PostgreSQL). Their outbox poll is set to a minute, so an event that
reaches the other replica within seconds came over the bus.

A subscriber that drops and reconnects with `after: <last event id>` receives every event
exactly once: what it missed first, replayed from the outbox, then live.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import (
    PURPOSE,
    Deployment,
    delete_marked_rows,
    on_db,
    purpose_headers,
)
from replica_process import ReplicaProcess
from ws_client import FeedClient

from gateway.auth import mint_dev_token
from resolvers.outbox import last_event_id

ROOT = Path(__file__).resolve().parents[2]
MARKER = "sisada-feed-replica-test-"
STARTUP_SECONDS = 30.0
REDIS_URL = "redis://127.0.0.1:6379/0"
RECORD = "mutation R($input: RecordActivityInput!) { recordActivity(input: $input) { id } }"
FEED = """subscription F($after: ID) { activityRecorded(after: $after) {
  eventId activity { id notes } } }"""


@pytest.fixture(scope="module", autouse=True)
def _leave_the_seeded_data_as_found(deployment: Deployment) -> Iterator[None]:
    yield
    delete_marked_rows(deployment.database_url, MARKER)


@contextlib.contextmanager
def replica(deployment: Deployment, bus: str, channel: str) -> Iterator[str]:
    """`sisada serve` in a process of its own, on `bus`, with a channel of its own."""
    env: dict[str, str | None] = {
        "SISADA_EVENT_BUS": bus,
        "SISADA_REDIS_URL": REDIS_URL if bus == "redis" else None,
        # A channel of this test's own: other suites' replicas never wake these.
        "SISADA_EVENT_CHANNEL": channel,
        "SISADA_EVENT_POLL_SECONDS": "60"}
    with ReplicaProcess(deployment, env) as process:
        yield process.base


def _buses(deployment: Deployment) -> list[str]:
    return ["redis", "postgres"] if deployment.backend == "postgresql" else ["redis"]


async def _record_on(base: str, deployment: Deployment, notes: str) -> str:
    token = mint_dev_token(deployment.settings, "immigration_officer", area="31.74",
                           officer_id=1)
    headers = {"authorization": f"Bearer {token}", **purpose_headers()}
    body = {"query": RECORD, "variables": {"input": {
        "kind": "DOCUMENT_CHECK", "areaCode": deployment.facts.busiest_setiabudi_rt,
        "notes": notes}}}
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(f"{base}/graphql", json=body, headers=headers)
    data = response.json()
    assert "errors" not in data, data
    return data["data"]["recordActivity"]["id"]


async def _subscriber(base: str, deployment: Deployment, after: str) -> tuple[FeedClient, str]:
    client = FeedClient(base)
    await client.__aenter__()
    assert await client.init(deployment.token("immigration_supervisor"),
                             purpose=PURPOSE) == {"type": "connection_ack"}
    return client, await client.subscribe(FEED, {"after": after})


async def _events(client: FeedClient, op: str, count: int,
                  timeout: float = 5.0) -> list[dict[str, Any]]:
    return [(await client.next_payload(op, timeout))["data"]["activityRecorded"]
            for _ in range(count)]


def _last(deployment: Deployment) -> str:
    return str(on_db(deployment.database_url, last_event_id))


async def test_a_mutation_on_replica_a_reaches_a_subscriber_on_replica_b(
        deployment: Deployment) -> None:
    for bus in _buses(deployment):
        channel = f"sisada_test_{uuid.uuid4().hex[:8]}"
        with replica(deployment, bus, channel) as a, replica(deployment, bus, channel) as b:
            client, op = await _subscriber(b, deployment, _last(deployment))
            try:
                await asyncio.sleep(0.5)  # in place live, so the bus (not a replay) carries it
                notes = f"{MARKER}{uuid.uuid4().hex}"
                started = time.monotonic()
                activity_id = await _record_on(a, deployment, notes)
                [event] = await _events(client, op, 1, timeout=5.0)
                elapsed = time.monotonic() - started
            finally:
                await client.__aexit__()
            assert event["activity"] == {"id": activity_id, "notes": notes}, bus
            # The replicas poll the outbox once a minute: this came over the bus.
            assert elapsed < 5.0, bus


async def test_a_subscriber_that_reconnects_with_after_gets_every_event_exactly_once(
        deployment: Deployment) -> None:
    bus, channel = _buses(deployment)[-1], f"sisada_test_{uuid.uuid4().hex[:8]}"
    with replica(deployment, bus, channel) as a, replica(deployment, bus, channel) as b:
        start = _last(deployment)
        client, op = await _subscriber(b, deployment, start)
        sent = [await _record_on(a, deployment, f"{MARKER}{uuid.uuid4().hex}")
                for _ in range(3)]
        first = await _events(client, op, 3)
        await client.__aexit__()
        # Dropped: two events happen meanwhile, on either replica.
        sent += [await _record_on(a, deployment, f"{MARKER}{uuid.uuid4().hex}"),
                 await _record_on(b, deployment, f"{MARKER}{uuid.uuid4().hex}")]
        client, op = await _subscriber(b, deployment, first[-1]["eventId"])
        try:
            replayed = await _events(client, op, 2)
            sent.append(await _record_on(a, deployment, f"{MARKER}{uuid.uuid4().hex}"))
            live = await _events(client, op, 1)
            assert await client.nothing_within(1.0)
        finally:
            await client.__aexit__()
    received = [e["activity"]["id"] for e in first + replayed + live]
    assert received == sent
    ids = [int(e["eventId"]) for e in first + replayed + live]
    assert ids == sorted(set(ids))
