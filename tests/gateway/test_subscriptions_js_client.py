"""Live feeds through the `graphql-ws` npm client, the one the README's snippet and the
frontends use (pinned in tests/js, run by Node as tests/js/subscribe.mjs), against the real
gateway on both backends.

The client prints every frame the server sent it, raw; the assertions read those bytes:
the supervisor's event carries geo, a police subscriber's carries only the joint operations
of its jurisdiction without the subject's identity or geo (no name, no passport number, no
coordinate anywhere in the frames), and a bad token is closed with 4403.

Subscriptions start `after` the outbox's last id, so an event written while Node is still
connecting is replayed, not missed: nothing waits for the subscription to be in place.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import PURPOSE, Deployment, delete_marked_rows, on_db
from ws_client import ws_url

from resolvers.outbox import last_event_id

JS = Path(__file__).resolve().parent.parent / "js"
MARKER = "sisada-feed-js-test-"
TEBET = "31.74.01"
NODE_SECONDS = 30.0

RECORD = """
mutation Record($input: RecordActivityInput!) { recordActivity(input: $input) { id } }
"""
FEED = """
subscription Feed($after: ID) {
  activityRecorded(after: $after) {
    eventId
    activity { id kind areaCode latitude longitude notes jointOperation redactedFields
               subject { id fullName passportNumber } officer { id } }
  }
}
"""


@pytest.fixture(scope="module", autouse=True)
def _leave_the_seeded_data_as_found(deployment: Deployment) -> Iterator[None]:
    yield
    delete_marked_rows(deployment.database_url, MARKER)


def _node() -> str:
    node = shutil.which("node")
    installed = (JS / "node_modules" / "graphql-ws").is_dir()
    if node and installed:
        return node
    why = ("node is not installed" if not node
           else "tests/js/node_modules is missing: run `npm ci --prefix tests/js`")
    if os.environ.get("CI") == "true":
        pytest.fail(f"the graphql-ws client tests cannot run in CI: {why}")
    pytest.skip(why)


@dataclass
class Received:
    """What the Node client printed: its lines, and the raw frames among them."""

    lines: list[dict[str, Any]]

    @property
    def frames(self) -> list[str]:
        return [line["raw"] for line in self.lines if line["kind"] == "frame"]

    @property
    def raw(self) -> str:
        return "\n".join(self.frames)

    def events(self) -> list[dict[str, Any]]:
        return [line["payload"]["data"]["activityRecorded"] for line in self.lines
                if line["kind"] == "next"]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["kind"] == kind]


class NodeSubscriber:
    """tests/js/subscribe.mjs as a subprocess: started first, read when it has exited."""

    def __init__(self, deployment: Deployment, authorization: str | None, events: int,
                 timeout_ms: int = 15_000, variables: dict[str, Any] | None = None) -> None:
        request: dict[str, Any] = {"query": FEED, "purpose": PURPOSE, "variables": {
            "after": str(on_db(deployment.database_url, last_event_id)), **(variables or {})}}
        if authorization is not None:
            request["authorization"] = authorization
        # The token goes on stdin, not argv (where any local user's `ps` would show it).
        self.process = subprocess.Popen(
            [_node(), "subscribe.mjs", ws_url(deployment.base_url), "--events", str(events),
             "--timeout-ms", str(timeout_ms)],
            cwd=JS, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(request).encode())
        self.process.stdin.close()
        self.process.stdin = None  # written and closed: communicate() must not flush it

    def result(self) -> Received:
        try:
            out, err = self.process.communicate(timeout=NODE_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate()
        assert self.process.returncode == 0, err.decode()[-2000:]
        return Received([json.loads(line) for line in out.decode().splitlines() if line])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _marker() -> str:
    return f"{MARKER}{uuid.uuid4().hex}"


def _subject(deployment: Deployment) -> dict[str, Any]:
    fid = min(deployment.facts.in_area(deployment.facts.busiest_setiabudi_rt))
    return next(f for f in deployment.facts.foreigners if f["id"] == fid)


def _tebet_rt(deployment: Deployment) -> str:
    return min(r["rt_code"] for r in deployment.facts.current_by_foreigner.values()
               if r["kecamatan_code"] == TEBET)


async def _record(deployment: Deployment, **fields: Any) -> str:
    values = {"kind": "HOME_VISIT", "areaCode": deployment.facts.busiest_setiabudi_rt,
              "notes": _marker(), **fields}
    body = await asyncio.to_thread(deployment.gql, RECORD, "immigration_officer",
                                   input=values)
    assert "errors" not in body, body
    return body["data"]["recordActivity"]["id"]


def _bearer(deployment: Deployment, persona: str) -> str:
    return f"Bearer {deployment.token(persona)}"


async def test_an_activity_arrives_with_geo_in_graphql_ws_as_immigration_supervisor(
        deployment: Deployment) -> None:
    subject = _subject(deployment)
    node = NodeSubscriber(deployment, _bearer(deployment, "immigration_supervisor"), events=1)
    try:
        activity_id = await _record(deployment, latitude=-6.2187, longitude=106.8321,
                                    subjectForeignerId=str(subject["id"]))
        received = await asyncio.to_thread(node.result)
    finally:
        node.stop()
    assert [line["why"] for line in received.of("exit")] == ["events"]
    assert len(received.of("connected")) == 1
    [event] = received.events()
    activity = event["activity"]
    assert activity["id"] == activity_id
    assert (activity["latitude"], activity["longitude"]) == (-6.2187, 106.8321)
    assert activity["subject"]["fullName"] == subject["full_name"]
    assert "latitude" not in activity["redactedFields"]
    # The bytes on the wire: the connection_ack first, then one `next` with the point.
    assert json.loads(received.frames[0]) == {"type": "connection_ack"}
    [frame] = [f for f in received.frames if '"next"' in f]
    assert "-6.2187" in frame and "106.8321" in frame


async def test_only_joint_operations_without_identity_or_geo_as_setiabudi_police(
        deployment: Deployment) -> None:
    subject = _subject(deployment)
    secrets = {"latitude": "-6.2345", "longitude": "106.8765"}
    node = NodeSubscriber(deployment, _bearer(deployment, "setiabudi_police"), events=2)
    try:
        # Left out by the row rule: not joint; joint but in Tebet.
        await _record(deployment, latitude=-6.2345, longitude=106.8765,
                      subjectForeignerId=str(subject["id"]))
        await _record(deployment, kind="JOINT_OPERATION", jointOperation=True,
                      areaCode=_tebet_rt(deployment), latitude=-6.2345, longitude=106.8765)
        # Sent, without subject or geo: a joint operation in Setiabudi, then a second one
        # (events arrive in id order: had either above been sent, it would come first).
        joint = await _record(deployment, kind="JOINT_OPERATION", jointOperation=True,
                              latitude=-6.2345, longitude=106.8765,
                              subjectForeignerId=str(subject["id"]))
        fence = await _record(deployment, kind="JOINT_OPERATION", jointOperation=True)
        received = await asyncio.to_thread(node.result)
    finally:
        node.stop()
    assert [line["why"] for line in received.of("exit")] == ["events"]
    events = received.events()
    assert [e["activity"]["id"] for e in events] == [joint, fence]
    activity = events[0]["activity"]
    assert activity["jointOperation"] is True
    assert activity["subject"] is None
    assert activity["latitude"] is None and activity["longitude"] is None
    assert {"subject", "latitude", "longitude"} <= set(activity["redactedFields"])
    assert activity["areaCode"].startswith("31.74.02")
    # Nothing of the subject's identity or the point anywhere in what the client received.
    raw = received.raw
    for secret in (subject["full_name"], subject["passport_number"],
                   *deployment.facts.permit_numbers.get(subject["id"], []), *secrets.values()):
        assert secret not in raw, secret


async def test_a_bad_token_is_closed_with_4403_in_graphql_ws(deployment: Deployment) -> None:
    forged = deployment.token("immigration_supervisor")
    assert forged is not None
    node = NodeSubscriber(deployment, f"Bearer {forged[:-4]}AAAA", events=1)
    try:
        received = await asyncio.to_thread(node.result)
    finally:
        node.stop()
    assert [(c["code"]) for c in received.of("closed")] == [4403]
    assert [line["why"] for line in received.of("exit")] == ["closed"]
    # Refused before the ack: the client was sent no frame at all.
    assert received.frames == [] and received.of("connected") == []
