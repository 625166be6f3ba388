"""Live feeds and a policy reload: no subscription outlives the policy it was checked and
grouped under (a hostile review kept receiving, after a reload, events decided for another
member of its old group, and kept filtering by a field the new policy hid). Every
subscription ends at the reload — FORBIDDEN where the feed closed, POLICY_RELOADED
otherwise — and a client that subscribes again with `after` misses nothing."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import PURPOSE, Deployment, ServerThread, delete_marked_rows, on_db
from ws_client import FeedClient

from gateway.app import create_app
from policies.loader import POLICY_DIR
from resolvers.outbox import last_event_id

MARKER = "sisada-feed-reload-test-"
RECORD = """
mutation Record($input: RecordActivityInput!) { recordActivity(input: $input) { id } }
"""
FEED = """subscription Feed($after: ID) { activityRecorded(after: $after) {
  eventId activity { id notes } } }"""
# `after` declared non-null: it must not break the rendering of events.
FEED_REQUIRED_AFTER = """subscription Feed($after: ID!) { activityRecorded(after: $after) {
  eventId activity { id notes } } }"""


@pytest.fixture(scope="module", autouse=True)
def _leave_the_seeded_data_as_found(deployment: Deployment) -> Iterator[None]:
    yield
    delete_marked_rows(deployment.database_url, MARKER)


@pytest.fixture
def editable(deployment: Deployment, tmp_path: Path) -> Iterator[tuple[str, Any, Path]]:
    policy_dir = tmp_path / "policies"
    shutil.copytree(POLICY_DIR, policy_dir, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    app = create_app(deployment.settings_with(tmp_path, policy_dir=policy_dir))
    with ServerThread(app) as base_url:
        yield base_url, app, policy_dir


def _notes() -> str:
    return f"{MARKER}{uuid.uuid4().hex}"


async def _record(deployment: Deployment, base_url: str, notes: str) -> str:
    import httpx

    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            f"{base_url}/graphql",
            json={"query": RECORD, "variables": {"input": {
                "kind": "HOME_VISIT", "areaCode": deployment.facts.busiest_setiabudi_rt,
                "notes": notes}}},
            headers={"authorization": f"Bearer {deployment.token('immigration_officer')}"})
    body = response.json()
    assert "errors" not in body, body
    return str(body["data"]["recordActivity"]["id"])


async def test_a_reload_ends_every_subscription_and_after_misses_nothing_as_supervisor(
        deployment: Deployment, editable: tuple[str, Any, Path]) -> None:
    base_url, app, _policy_dir = editable
    token = deployment.token("immigration_supervisor")
    start = str(on_db(deployment.database_url, last_event_id))
    async with FeedClient(base_url) as client:
        assert await client.init(token, purpose=PURPOSE) == {"type": "connection_ack"}
        op = await client.subscribe(FEED, {"after": start})
        first = await _record(deployment, base_url, _notes())
        before = (await client.next_payload(op))["data"]["activityRecorded"]
        assert before["activity"]["id"] == first
        assert app.state.sisada.reload_policy() is True
        ended = await client.receive()
        # Recorded while the client is between subscriptions.
        missed_notes = _notes()
        missed = await _record(deployment, base_url, missed_notes)
        again = await client.subscribe(FEED, {"after": before["eventId"]})
        replayed = (await client.next_payload(again))["data"]["activityRecorded"]
        later = await _record(deployment, base_url, _notes())
        live = (await client.next_payload(again))["data"]["activityRecorded"]
        assert await client.nothing_within(0.5)
    assert ended["id"] == op and ended["type"] == "error"
    assert [e["extensions"]["code"] for e in ended["payload"]] == ["POLICY_RELOADED"]
    assert replayed["activity"] == {"id": missed, "notes": missed_notes}
    assert live["activity"]["id"] == later
    assert int(before["eventId"]) < int(replayed["eventId"]) < int(live["eventId"])


async def test_a_reload_that_closes_the_feed_ends_it_forbidden_as_setiabudi_police(
        deployment: Deployment, editable: tuple[str, Any, Path]) -> None:
    base_url, app, policy_dir = editable
    feeds = policy_dir / "feeds.polar"
    text = feeds.read_text()
    opened = ('(immigration(role) or security_partner(role)) and\n'
              '    field in ["activityRecorded", "reportUpdated"];')
    assert opened in text
    async with FeedClient(base_url) as client:
        assert await client.init(deployment.token("setiabudi_police")) == {
            "type": "connection_ack"}
        op = await client.subscribe(FEED, {"after": None})
        assert await client.nothing_within(0.3)  # joined, nothing to send yet
        # The feeds are immigration's alone from now on.
        feeds.write_text(text.replace(opened, opened.replace(" or security_partner(role)", "")))
        assert app.state.sisada.reload_policy() is True
        ended = await client.receive()
        refused = await client.subscribe(FEED, {"after": None})
        again = await client.receive()
    assert ended["id"] == op and ended["type"] == "error"
    assert [e["extensions"]["code"] for e in ended["payload"]] == ["FORBIDDEN"]
    assert again["id"] == refused and again["type"] == "error"
    assert [e["extensions"]["code"] for e in again["payload"]] == ["FORBIDDEN"]


async def test_a_document_declaring_after_non_null_renders_its_events_as_supervisor(
        deployment: Deployment) -> None:
    start = str(on_db(deployment.database_url, last_event_id))
    async with FeedClient(deployment.base_url) as client:
        assert await client.init(deployment.token("immigration_supervisor"),
                                 purpose=PURPOSE) == {"type": "connection_ack"}
        op = await client.subscribe(FEED_REQUIRED_AFTER, {"after": start})
        notes = _notes()
        recorded = await _record(deployment, deployment.base_url, notes)
        payload = await client.next_payload(op)
    assert "errors" not in payload, payload
    assert payload["data"]["activityRecorded"]["activity"] == {"id": recorded, "notes": notes}
