"""reportUpdated and officerPositions over a real WebSocket, the replay bound, and
multiplexing (one rendering per group of like subscribers, not per subscriber)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import PURPOSE, Deployment, ServerThread, delete_marked_rows, on_db
from ws_client import FeedClient

from gateway.app import create_app
from resolvers.outbox import last_event_id

MARKER = "sisada-feed-more-test-"
SUBMIT = """mutation S($input: SubmitReportInput!) { submitReport(input: $input) {
  receiptCode } }"""
UPDATE = """mutation U($input: UpdateReportInput!) { updateReport(input: $input) { id } }"""
REPORTS = """subscription R($after: ID, $status: ReportState) {
  reportUpdated(after: $after, status: $status) {
    eventId report { id status text areaCode reporterContact foreigner { id } } } }"""
POSITIONS = """subscription { officerPositions { eventId officer { id }
  activity { id areaCode latitude longitude occurredAt } } }"""
RECORD = "mutation R($input: RecordActivityInput!) { recordActivity(input: $input) { id } }"
ACTIVITIES = """subscription A($after: ID) { activityRecorded(after: $after) {
  eventId activity { id notes } } }"""


@pytest.fixture(scope="module", autouse=True)
def _leave_the_seeded_data_as_found(deployment: Deployment) -> Iterator[None]:
    yield
    delete_marked_rows(deployment.database_url, MARKER)


def _last(deployment: Deployment) -> str:
    return str(on_db(deployment.database_url, last_event_id))


async def _client(base: str, token: str | None) -> FeedClient:
    client = FeedClient(base)
    await client.__aenter__()
    assert await client.init(token, purpose=PURPOSE) == {"type": "connection_ack"}
    return client


async def _submit(deployment: Deployment, text: str, persona: str = "public",
                  **extra: Any) -> None:
    body = await asyncio.to_thread(deployment.gql, SUBMIT, persona, input={
        "category": "OVERSTAY", "text": text,
        "areaCode": deployment.facts.busiest_setiabudi_rt, **extra})
    assert "errors" not in body, body


async def test_reports_without_contact_or_linked_foreigner_as_setiabudi_police(
        deployment: Deployment) -> None:
    foreigner = str(min(deployment.facts.in_area(deployment.facts.busiest_setiabudi_rt)))
    contact = f"reporter-{uuid.uuid4().hex}@example.org"
    police = await _client(deployment.base_url, deployment.token("setiabudi_police"))
    supervisor = await _client(deployment.base_url, deployment.token("immigration_supervisor"))
    try:
        after = _last(deployment)
        op_p = await police.subscribe(REPORTS, {"after": after})
        op_s = await supervisor.subscribe(REPORTS, {"after": after})
        await _submit(deployment, f"{MARKER}{uuid.uuid4().hex}", "setiabudi_police",
                      reporterContact=contact, foreignerId=foreigner)
        seen_by_police = (await police.next_payload(op_p))["data"]["reportUpdated"]["report"]
        seen_by_supervisor = (await supervisor.next_payload(op_s))["data"]["reportUpdated"][
            "report"]
    finally:
        await police.__aexit__()
        await supervisor.__aexit__()
    assert seen_by_police["reporterContact"] is None and seen_by_police["foreigner"] is None
    assert contact not in "".join(police.raw)
    assert seen_by_supervisor["reporterContact"] == contact
    assert seen_by_supervisor["foreigner"] == {"id": foreigner}


async def test_a_status_filter_sends_only_that_status_as_immigration_supervisor(
        deployment: Deployment) -> None:
    supervisor = await _client(deployment.base_url, deployment.token("immigration_supervisor"))
    try:
        op = await supervisor.subscribe(REPORTS, {"after": _last(deployment),
                                                  "status": "TRIAGED"})
        text = f"{MARKER}{uuid.uuid4().hex}"
        await _submit(deployment, text)  # received: not sent
        report_id = next(
            r["id"] for r in deployment.gql(
                "{ reports(first: 50) { nodes { id text } } }",
                "immigration_supervisor")["data"]["reports"]["nodes"] if r["text"] == text)
        body = await asyncio.to_thread(deployment.gql, UPDATE, "immigration_supervisor",
                                       input={"id": report_id, "status": "TRIAGED"})
        assert "errors" not in body, body
        event = (await supervisor.next_payload(op))["data"]["reportUpdated"]
        assert await supervisor.nothing_within(0.5)
    finally:
        await supervisor.__aexit__()
    assert event["report"]["id"] == report_id and event["report"]["status"] == "TRIAGED"


async def test_live_map_starts_from_each_officers_last_position_as_immigration_supervisor(
        deployment: Deployment) -> None:
    supervisor = await _client(deployment.base_url, deployment.token("immigration_supervisor"))
    try:
        op = await supervisor.subscribe(POSITIONS)
        first = (await supervisor.next_payload(op))["data"]["officerPositions"]
        # Then live: a new activity moves its officer.
        await asyncio.sleep(0.3)
        while True:
            try:
                await supervisor.receive(0.5)  # the rest of the starting map
            except TimeoutError:
                break
        body = await asyncio.to_thread(deployment.gql, RECORD, "immigration_officer", input={
            "kind": "HOME_VISIT", "areaCode": deployment.facts.busiest_setiabudi_rt,
            "latitude": -6.2, "longitude": 106.8, "notes": f"{MARKER}{uuid.uuid4().hex}"})
        moved = (await supervisor.next_payload(op))["data"]["officerPositions"]
    finally:
        await supervisor.__aexit__()
    assert first["officer"]["id"] and first["activity"]["areaCode"]
    assert moved["officer"] == {"id": "1"}
    assert moved["activity"]["id"] == body["data"]["recordActivity"]["id"]
    assert (moved["activity"]["latitude"], moved["activity"]["longitude"]) == (-6.2, 106.8)


@pytest.fixture(scope="module")
def short_replay(deployment: Deployment, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[str]:
    settings = deployment.settings_with(tmp_path_factory.mktemp("replay"), event_replay_max=1)
    app = create_app(settings)
    with ServerThread(app) as base_url:
        yield base_url


async def test_a_replay_past_the_bound_is_refused_with_replay_too_long(
        deployment: Deployment, short_replay: str) -> None:
    after = _last(deployment)
    for _ in range(2):
        await asyncio.to_thread(deployment.gql, RECORD, "immigration_officer", input={
            "kind": "DOCUMENT_CHECK", "areaCode": deployment.facts.busiest_setiabudi_rt,
            "notes": f"{MARKER}{uuid.uuid4().hex}"})
    # Written through the other gateway: this one reads them at its next poll (1 s).
    await asyncio.sleep(1.5)
    client = await _client(short_replay, deployment.token("immigration_supervisor"))
    try:
        op = await client.subscribe(ACTIVITIES, {"after": after})
        message = await client.receive()
    finally:
        await client.__aexit__()
    assert message["id"] == op and message["type"] == "error"
    assert message["payload"][0]["extensions"]["code"] == "REPLAY_TOO_LONG"


async def test_an_event_is_rendered_once_per_group_not_per_subscriber(
        deployment: Deployment, tmp_path_factory: pytest.TempPathFactory) -> None:
    settings = deployment.settings_with(tmp_path_factory.mktemp("groups"))
    app = create_app(settings)
    renderer = app.state.sisada.feeds.renderer
    renders: list[str] = []
    render = renderer.render

    async def counted(*args: Any, **kwargs: Any) -> str:
        renders.append(args[0].role)
        return await render(*args, **kwargs)

    renderer.render = counted
    with ServerThread(app) as base_url:
        sockets = [await _client(base_url, deployment.token("immigration_supervisor"))
                   for _ in range(6)]
        sockets += [await _client(base_url, deployment.token("setiabudi_police"))
                    for _ in range(6)]
        try:
            after = _last(deployment)
            ops = [await s.subscribe(ACTIVITIES, {"after": after}) for s in sockets[:6]]
            ops += [await s.subscribe(ACTIVITIES.replace("activityRecorded(",
                                                         "activityRecorded(jointOnly: true, "),
                                      {"after": after}) for s in sockets[6:]]
            await asyncio.sleep(1.0)  # joined (their replays, rendered each, are empty)
            renders.clear()
            await asyncio.to_thread(deployment.gql, RECORD, "immigration_officer", input={
                "kind": "JOINT_OPERATION", "jointOperation": True,
                "areaCode": deployment.facts.busiest_setiabudi_rt,
                "notes": f"{MARKER}{uuid.uuid4().hex}"})
            payloads = [await s.next_payload(op) for s, op in zip(sockets, ops, strict=True)]
        finally:
            for s in sockets:
                await s.__aexit__()
    # Two groups (the supervisors', the Setiabudi police's): two renderings for 12 sockets.
    assert sorted(renders) == ["immigration_supervisor", "police"]
    assert len({orjson_text(p) for p in payloads[:6]}) == 1
    assert len({orjson_text(p) for p in payloads[6:]}) == 1


def orjson_text(payload: dict[str, Any]) -> str:
    import orjson

    return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS).decode()


async def test_subscribers_resuming_from_different_ids_share_one_rendering(
        deployment: Deployment, tmp_path_factory: pytest.TempPathFactory) -> None:
    settings = deployment.settings_with(tmp_path_factory.mktemp("resumed"))
    app = create_app(settings)
    renderer = app.state.sisada.feeds.renderer
    renders: list[str] = []
    render = renderer.render

    async def counted(*args: Any, **kwargs: Any) -> str:
        renders.append(args[0].role)
        return await render(*args, **kwargs)

    renderer.render = counted
    with ServerThread(app) as base_url:
        sockets = [await _client(base_url, deployment.token("immigration_supervisor"))
                   for _ in range(4)]
        try:
            for _ in range(3):  # ids to resume from
                await asyncio.to_thread(deployment.gql, RECORD, "immigration_officer", input={
                    "kind": "HOME_VISIT", "areaCode": deployment.facts.busiest_setiabudi_rt,
                    "notes": f"{MARKER}{uuid.uuid4().hex}"})
            last = int(_last(deployment))
            # Each resumes from its own last id, as a reconnecting graphql-ws client does.
            ops = [await s.subscribe(ACTIVITIES, {"after": str(last - n)})
                   for n, s in enumerate(sockets)]
            await asyncio.sleep(1.0)  # joined, their replays sent
            renders.clear()
            notes = f"{MARKER}{uuid.uuid4().hex}"
            await asyncio.to_thread(deployment.gql, RECORD, "immigration_officer", input={
                "kind": "HOME_VISIT", "areaCode": deployment.facts.busiest_setiabudi_rt,
                "notes": notes})
            seen = []
            for s, op in zip(sockets, ops, strict=True):
                while True:  # past the replayed events, to the new one
                    event = (await s.next_payload(op))["data"]["activityRecorded"]
                    if event["activity"]["notes"] == notes:
                        seen.append(event["eventId"])
                        break
        finally:
            for s in sockets:
                await s.__aexit__()
    # One group: one rendering for the four sockets, the same event id for each.
    assert renders == ["immigration_supervisor"]
    assert len(set(seen)) == 1


async def test_a_live_map_starting_does_not_hold_up_other_feeds_nor_repeat_a_position(
        deployment: Deployment, tmp_path_factory: pytest.TempPathFactory) -> None:
    settings = deployment.settings_with(tmp_path_factory.mktemp("snapshot"))
    app = create_app(settings)
    renderer = app.state.sisada.feeds.renderer
    render = renderer.render

    async def slow_map(*args: Any, **kwargs: Any) -> str:
        if "officerPositions" in args[2].query:
            await asyncio.sleep(0.1)  # each starting position takes a while to render
        return await render(*args, **kwargs)

    renderer.render = slow_map
    with ServerThread(app) as base_url:
        feed = await _client(base_url, deployment.token("immigration_supervisor"))
        live_map = await _client(base_url, deployment.token("immigration_supervisor"))
        try:
            op_feed = await feed.subscribe(ACTIVITIES, {"after": _last(deployment)})
            op_map = await live_map.subscribe(POSITIONS)
            await live_map.next_payload(op_map)  # the starting map is being sent
            notes = f"{MARKER}{uuid.uuid4().hex}"
            body = await asyncio.to_thread(deployment.gql, RECORD, "immigration_officer",
                                           input={"kind": "HOME_VISIT", "notes": notes,
                                                  "areaCode": deployment.facts
                                                  .busiest_setiabudi_rt})
            activity_id = body["data"]["recordActivity"]["id"]
            started = asyncio.get_running_loop().time()
            while True:
                event = (await feed.next_payload(op_feed))["data"]["activityRecorded"]
                if event["activity"]["notes"] == notes:
                    break
            waited = asyncio.get_running_loop().time() - started
            positions = []
            while True:
                try:
                    message = await live_map.receive(1.5)
                except TimeoutError:
                    break
                positions.append(message["payload"]["data"]["officerPositions"])
        finally:
            await feed.__aexit__()
            await live_map.__aexit__()
    # The other feed was not kept waiting for the map's ~30 slow renders (≥ 2 s).
    assert waited < 1.0
    # The new position arrives once, after the starting map.
    moved = [p for p in positions if p["activity"]["id"] == activity_id]
    assert len(moved) == 1 and positions[-1] is moved[0]
    assert moved[0]["eventId"] == event["eventId"]


async def test_a_crowd_resuming_from_one_id_renders_each_missed_event_once_as_police(
        deployment: Deployment, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Six police sockets of one group reconnect with the same `after` at once: each of the
    three events they missed is rendered once and sent to all six, exactly once each (a
    crowd reconnecting after a network blip rendered every missed event per socket, and
    everyone else's live events waited seconds for it)."""
    settings = deployment.settings_with(tmp_path_factory.mktemp("crowd"))
    app = create_app(settings)
    renderer = app.state.sisada.feeds.renderer
    renders: list[str] = []
    render_recorded = renderer.render_recorded

    async def counted(*args: Any, **kwargs: Any) -> tuple[str, bool]:
        renders.append(args[0].role)
        return await render_recorded(*args, **kwargs)

    renderer.render_recorded = counted
    with ServerThread(app) as base_url:
        sockets = [await _client(base_url, deployment.token("setiabudi_police"))
                   for _ in range(6)]
        try:
            after = _last(deployment)
            notes = []
            for _ in range(3):  # missed while disconnected
                notes.append(f"{MARKER}{uuid.uuid4().hex}")
                await asyncio.to_thread(deployment.gql, RECORD, "immigration_officer", input={
                    "kind": "JOINT_OPERATION", "jointOperation": True,
                    "areaCode": deployment.facts.busiest_setiabudi_rt, "notes": notes[-1]})
            renders.clear()
            ops = await asyncio.gather(*(s.subscribe(ACTIVITIES, {"after": after})
                                         for s in sockets))
            received = [[(await s.next_payload(op))["data"]["activityRecorded"]
                         for _ in range(3)] for s, op in zip(sockets, ops, strict=True)]
            quiet = [await s.nothing_within(0.3) for s in sockets]
        finally:
            for s in sockets:
                await s.__aexit__()
    assert renders == ["police"] * 3
    ids = [[event["eventId"] for event in events] for events in received]
    assert all(one == ids[0] for one in ids) and len(set(ids[0])) == 3
    assert all(quiet)
