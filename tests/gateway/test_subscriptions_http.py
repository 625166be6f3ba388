"""Live feeds over a real WebSocket (graphql-transport-ws) against the real gateway on
both backends: the transport's rules (protocol, token, origin, limits), and what each
persona is sent of an event — asserted on the raw frames.

Events come from real mutations over HTTP. Subscriptions start `after` the outbox's last
id, so an event written while the subscription is being set up is replayed, not missed:
the tests never sleep for a subscription to be in place.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import PURPOSE, Deployment, ServerThread, delete_marked_rows, on_db
from websockets.exceptions import InvalidStatus
from ws_client import FeedClient

from gateway.app import create_app
from gateway.auth import mint_dev_token
from resolvers.outbox import last_event_id

MARKER = "sisada-feed-test-"

RECORD = """
mutation Record($input: RecordActivityInput!) { recordActivity(input: $input) { id } }
"""
ACTIVITY_FEED = """
subscription Feed($after: ID, $jointOnly: Boolean! = false) {
  activityRecorded(after: $after, jointOnly: $jointOnly) {
    eventId
    activity { id kind areaCode latitude longitude notes jointOperation redactedFields
               subject { id fullName } officer { id } }
  }
}
"""
ACTIVITY_QUERY = """
{ activities(first: 200) { nodes {
  id kind areaCode latitude longitude notes jointOperation redactedFields
  subject { id fullName } officer { id } } } }
"""


@pytest.fixture(scope="module", autouse=True)
def _leave_the_seeded_data_as_found(deployment: Deployment) -> Iterator[None]:
    yield
    delete_marked_rows(deployment.database_url, MARKER)


def _marker() -> str:
    return f"{MARKER}{uuid.uuid4().hex}"


def _last_event(deployment: Deployment) -> str:
    return str(on_db(deployment.database_url, last_event_id))


def _setiabudi_foreigner(deployment: Deployment) -> dict[str, Any]:
    fid = min(deployment.facts.in_area(deployment.facts.busiest_setiabudi_rt))
    return next(f for f in deployment.facts.foreigners if f["id"] == fid)


async def _record(deployment: Deployment, persona: str, **fields: Any) -> str:
    values = {"kind": "HOME_VISIT", "areaCode": deployment.facts.busiest_setiabudi_rt,
              **fields}
    body = await asyncio.to_thread(deployment.gql, RECORD, persona, input=values)
    assert "errors" not in body, body
    return body["data"]["recordActivity"]["id"]


async def _feed(deployment: Deployment, persona: str, **variables: Any
                ) -> tuple[FeedClient, str]:
    client = FeedClient(deployment.base_url)
    await client.__aenter__()
    ack = await client.init(deployment.token(persona), purpose=PURPOSE)
    assert ack == {"type": "connection_ack"}
    op = await client.subscribe(ACTIVITY_FEED, {"after": _last_event(deployment), **variables})
    return client, op


def _queried(deployment: Deployment, persona: str, activity_id: str) -> dict[str, Any]:
    body = deployment.gql(ACTIVITY_QUERY, persona)
    return next(n for n in body["data"]["activities"]["nodes"] if n["id"] == activity_id)


# -- who is sent what -----------------------------------------------------------------------


async def test_supervisor_sees_every_activity_with_geo_and_identity_as_immigration_supervisor(
        deployment: Deployment) -> None:
    subject = _setiabudi_foreigner(deployment)
    client, op = await _feed(deployment, "immigration_supervisor")
    try:
        notes = _marker()
        activity_id = await _record(deployment, "immigration_officer", latitude=-6.21,
                                    longitude=106.83, notes=notes,
                                    subjectForeignerId=str(subject["id"]))
        payload = await client.next_payload(op)
    finally:
        await client.__aexit__()
    event = payload["data"]["activityRecorded"]
    activity = event["activity"]
    assert activity["id"] == activity_id
    assert (activity["latitude"], activity["longitude"]) == (-6.21, 106.83)
    assert activity["notes"] == notes
    assert activity["areaCode"] == deployment.facts.busiest_setiabudi_rt
    assert activity["subject"] == {"id": str(subject["id"]), "fullName": subject["full_name"]}
    assert int(event["eventId"]) > 0
    # Rendered as a query renders the same record for the same persona.
    assert activity == _queried(deployment, "immigration_supervisor", activity_id)


async def test_joint_operation_without_subject_or_geo_as_setiabudi_police(
        deployment: Deployment) -> None:
    subject = _setiabudi_foreigner(deployment)
    client, op = await _feed(deployment, "setiabudi_police", jointOnly=True)
    try:
        hidden = await _record(deployment, "immigration_officer", notes=_marker())
        notes = _marker()
        joint = await _record(deployment, "immigration_officer", kind="JOINT_OPERATION",
                              latitude=-6.2345, longitude=106.8765, notes=notes,
                              subjectForeignerId=str(subject["id"]), jointOperation=True)
        payload = await client.next_payload(op)
        assert await client.nothing_within(0.5)
    finally:
        await client.__aexit__()
    activity = payload["data"]["activityRecorded"]["activity"]
    assert activity["id"] == joint != hidden
    assert activity["latitude"] is None and activity["longitude"] is None
    assert activity["subject"] is None
    assert {"latitude", "longitude", "subject"} <= set(activity["redactedFields"])
    raw = "".join(client.raw)
    for secret in ("-6.2345", "106.8765", subject["full_name"], subject["passport_number"]):
        assert secret not in raw
    assert payload["extensions"]["redacted"]["Activity"]
    # Exactly what the activities query shows police of the same record (precision included).
    assert activity == _queried(deployment, "setiabudi_police", joint)


async def test_setiabudi_joint_operation_is_not_sent_as_tebet_police(
        deployment: Deployment) -> None:
    client, _op = await _feed(deployment, "tebet_police")
    try:
        await _record(deployment, "immigration_officer", kind="JOINT_OPERATION",
                      jointOperation=True, notes=_marker())
        assert await client.nothing_within(1.0)
    finally:
        await client.__aexit__()
    assert not [frame for frame in client.raw if '"next"' in frame]


async def test_only_own_activities_as_immigration_officer(deployment: Deployment) -> None:
    client, op = await _feed(deployment, "immigration_officer")
    try:
        await _record(deployment, "immigration_supervisor", notes=_marker())
        own = await _record(deployment, "immigration_officer", notes=_marker())
        payload = await client.next_payload(op)
        assert await client.nothing_within(0.5)
    finally:
        await client.__aexit__()
    assert payload["data"]["activityRecorded"]["activity"]["id"] == own


async def test_identity_needs_a_purpose_in_connection_init_as_immigration_supervisor(
        deployment: Deployment) -> None:
    subject = _setiabudi_foreigner(deployment)
    async with FeedClient(deployment.base_url) as client:
        await client.init(deployment.token("immigration_supervisor"))  # no purpose
        op = await client.subscribe(ACTIVITY_FEED, {"after": _last_event(deployment)})
        await _record(deployment, "immigration_officer", notes=_marker(),
                      subjectForeignerId=str(subject["id"]))
        payload = await client.next_payload(op)
    assert payload["data"]["activityRecorded"]["activity"]["subject"]["fullName"] is None
    assert [e["extensions"]["code"] for e in payload["errors"]] == ["PURPOSE_REQUIRED"]
    assert subject["full_name"] not in "".join(client.raw)


async def test_activity_feed_is_forbidden_as_district(deployment: Deployment) -> None:
    async with FeedClient(deployment.base_url) as client:
        await client.init(deployment.token("tebet_district"))
        op = await client.subscribe(ACTIVITY_FEED)
        message = await client.receive()
    assert message["id"] == op and message["type"] == "error"
    assert [e["extensions"]["code"] for e in message["payload"]] == ["FORBIDDEN"]


async def test_live_map_is_forbidden_as_setiabudi_police(deployment: Deployment) -> None:
    async with FeedClient(deployment.base_url) as client:
        await client.init(deployment.token("setiabudi_police"))
        op = await client.subscribe("subscription { officerPositions { eventId } }")
        message = await client.receive()
    assert message["id"] == op and message["type"] == "error"
    assert [e["extensions"]["code"] for e in message["payload"]] == ["FORBIDDEN"]


async def test_filtering_by_a_field_one_cannot_read_is_forbidden_as_public(
        deployment: Deployment) -> None:
    async with FeedClient(deployment.base_url) as client:
        await client.init()  # no token: the public
        op = await client.subscribe("subscription { reportUpdated { eventId } }")
        message = await client.receive()
    assert message["type"] == "error" and message["id"] == op
    assert [e["extensions"]["code"] for e in message["payload"]] == ["FORBIDDEN"]


# -- the transport --------------------------------------------------------------------------


async def test_legacy_graphql_ws_client_gets_nothing(deployment: Deployment) -> None:
    """CVE-2026-35523: Strawberry's legacy `graphql-ws` handler let a client skip
    connection_init and its authentication. That protocol is refused at the handshake."""
    with pytest.raises(InvalidStatus) as refused:
        async with FeedClient(deployment.base_url, subprotocols=["graphql-ws"]) as client:
            await client.send({"type": "start", "id": "1",
                               "payload": {"query": ACTIVITY_FEED}})
            await client.receive(2)
    assert refused.value.response.status_code == 403
    assert b"activity" not in (refused.value.response.body or b"")


async def test_a_client_offering_no_subprotocol_is_refused(deployment: Deployment) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with FeedClient(deployment.base_url, subprotocols=[]):
            pass
    assert refused.value.response.status_code == 403


async def test_a_bad_token_closes_4403(deployment: Deployment) -> None:
    async with FeedClient(deployment.base_url) as client:
        await client.send({"type": "connection_init",
                           "payload": {"authorization": "Bearer not-a-token"}})
        assert await client.closed_with() == 4403
    assert client.raw == []


async def test_a_bad_token_in_the_upgrade_header_closes_4403(deployment: Deployment) -> None:
    async with FeedClient(deployment.base_url,
                          headers={"authorization": "Bearer nope"}) as client:
        await client.send({"type": "connection_init"})
        assert await client.closed_with() == 4403


async def test_token_from_the_upgrade_header_is_accepted_as_immigration_supervisor(
        deployment: Deployment) -> None:
    token = deployment.token("immigration_supervisor")
    async with FeedClient(deployment.base_url,
                          headers={"authorization": f"Bearer {token}"}) as client:
        assert await client.init() == {"type": "connection_ack"}


async def test_subscribe_before_connection_init_closes_4401(deployment: Deployment) -> None:
    async with FeedClient(deployment.base_url) as client:
        await client.subscribe(ACTIVITY_FEED)
        assert await client.closed_with() == 4401


async def test_the_socket_closes_4401_when_the_token_expires(deployment: Deployment) -> None:
    token = mint_dev_token(deployment.settings, "immigration_supervisor", area="31.74",
                           officer_id=2, ttl_seconds=2)
    async with FeedClient(deployment.base_url) as client:
        assert await client.init(token) == {"type": "connection_ack"}
        await client.subscribe(ACTIVITY_FEED)
        assert await client.closed_with(timeout=10) == 4401


async def test_a_foreign_origin_is_refused(deployment: Deployment) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with FeedClient(deployment.base_url, origin="https://evil.example"):
            pass
    assert refused.value.response.status_code == 403


async def test_the_gateways_own_origin_is_accepted(deployment: Deployment) -> None:
    async with FeedClient(deployment.base_url, origin=deployment.base_url) as client:
        assert await client.init() == {"type": "connection_ack"}


async def test_queries_over_websocket_are_refused_as_immigration_supervisor(
        deployment: Deployment) -> None:
    async with FeedClient(deployment.base_url) as client:
        await client.init(deployment.token("immigration_supervisor"))
        op = await client.subscribe("{ sisadaMe { role } }")
        message = await client.receive()
    assert message["type"] == "error" and message["id"] == op
    assert message["payload"][0]["extensions"]["code"] == "BAD_REQUEST"


def test_subscriptions_over_http_are_refused_as_immigration_supervisor(
        deployment: Deployment) -> None:
    response = deployment.post("subscription { activityRecorded { eventId } }",
                               "immigration_supervisor")
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_a_non_json_message_closes_4400(deployment: Deployment) -> None:
    async with FeedClient(deployment.base_url) as client:
        assert client.ws is not None
        await client.ws.send("{not json")
        assert await client.closed_with() == 4400


async def test_a_second_connection_init_closes_4429(deployment: Deployment) -> None:
    async with FeedClient(deployment.base_url) as client:
        await client.init()
        await client.send({"type": "connection_init"})
        assert await client.closed_with() == 4429


async def test_ping_is_answered_with_pong(deployment: Deployment) -> None:
    async with FeedClient(deployment.base_url) as client:
        await client.init()
        await client.send({"type": "ping"})
        assert await client.receive() == {"type": "pong"}


# -- limits (a gateway of their own, over the same data) -----------------------------------


@pytest.fixture(scope="module")
def limited(deployment: Deployment, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[Deployment, str]]:
    settings = deployment.settings_with(
        tmp_path_factory.mktemp("limited"), ws_max_subscriptions_per_socket=2,
        ws_max_sockets_per_principal=2, ws_max_message_bytes=2048,
        ws_init_timeout_seconds=1.0)
    with ServerThread(create_app(settings)) as base_url:
        yield deployment, base_url


async def test_too_many_subscriptions_on_one_socket_is_an_error(
        limited: tuple[Deployment, str]) -> None:
    deployment, base_url = limited
    async with FeedClient(base_url) as client:
        await client.init(deployment.token("immigration_supervisor"), purpose=PURPOSE)
        await client.subscribe(ACTIVITY_FEED)
        await client.subscribe(ACTIVITY_FEED)
        third = await client.subscribe(ACTIVITY_FEED)
        message = await client.receive()
    assert message["id"] == third and message["type"] == "error"
    assert message["payload"][0]["extensions"]["code"] == "TOO_MANY_SUBSCRIPTIONS"


async def test_too_many_sockets_for_one_principal_closes_4431(
        limited: tuple[Deployment, str]) -> None:
    deployment, base_url = limited
    token = deployment.token("setiabudi_police")
    async with FeedClient(base_url) as one, FeedClient(base_url) as two, \
            FeedClient(base_url) as three:
        assert await one.init(token) == {"type": "connection_ack"}
        assert await two.init(token) == {"type": "connection_ack"}
        await three.send({"type": "connection_init",
                          "payload": {"authorization": f"Bearer {token}"}})
        assert await three.closed_with() == 4431


async def test_a_message_over_the_size_limit_closes_1009(
        limited: tuple[Deployment, str]) -> None:
    _deployment, base_url = limited
    async with FeedClient(base_url) as client:
        await client.init()
        await client.subscribe("subscription { activityRecorded { eventId } }" + " " * 4000)
        assert await client.closed_with() == 1009


async def test_no_connection_init_in_time_closes_4408(limited: tuple[Deployment, str]) -> None:
    _deployment, base_url = limited
    async with FeedClient(base_url) as client:
        assert await client.closed_with(timeout=5) == 4408


def test_the_limits_server_still_answers_http(limited: tuple[Deployment, str]) -> None:
    _deployment, base_url = limited
    assert httpx.get(f"{base_url}/healthz").status_code == 200


async def test_an_identity_read_in_an_event_is_in_the_access_trail_as_immigration_supervisor(
        deployment: Deployment) -> None:
    """SPEC rule 6 on the live path: the subject's name a supervisor receives in an event
    leaves only with its trail entry (record, field, role, purpose)."""
    from resolvers.trail import entries_about_foreigner

    subject = _setiabudi_foreigner(deployment)

    def name_reads() -> list[dict[str, Any]]:
        entries = on_db(deployment.database_url,
                        lambda db: entries_about_foreigner(db, subject["id"]))
        return [e for e in entries
                if e["record_type"] == "Foreigner" and "fullName" in e["fields"]]

    before = name_reads()
    client, op = await _feed(deployment, "immigration_supervisor")
    try:
        # The socket's request id, from its handshake's answer.
        assert client.ws is not None and client.ws.response is not None
        socket_id = client.ws.response.headers["x-request-id"]
        await _record(deployment, "immigration_officer", notes=_marker(),
                      subjectForeignerId=str(subject["id"]))
        payload = await client.next_payload(op)
    finally:
        await client.__aexit__()
    assert payload["data"]["activityRecorded"]["activity"]["subject"]["fullName"] == (
        subject["full_name"])
    after = name_reads()
    new = after[len(before):]
    assert len(new) == 1
    assert new[0]["role"] == "immigration_supervisor"
    assert new[0]["purpose"] == PURPOSE
    assert new[0]["record_id"] == str(subject["id"])
    assert new[0]["request_id"] == socket_id



async def test_a_number_too_long_to_parse_is_the_callers_mistake_as_immigration_supervisor(
        deployment: Deployment) -> None:
    huge = "9" * 5000  # past Python's own limit for int(): graphql-core's ValueError
    async with FeedClient(deployment.base_url) as client:
        await client.init(deployment.token("immigration_supervisor"))
        op = await client.subscribe(
            f"subscription S($n: Int = {huge}) {{ reportUpdated {{ eventId }} }}")
        message = await client.receive()
    assert message["type"] == "error" and message["id"] == op
    codes = {e["extensions"]["code"] for e in message["payload"]}
    assert codes == {"GRAPHQL_VALIDATION_FAILED"}, message
    assert huge[:100] not in "".join(client.raw) and "errorId" not in "".join(client.raw)
