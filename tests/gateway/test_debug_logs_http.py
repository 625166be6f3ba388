"""The production log at SISADA_LOG_LEVEL=debug (an operator troubleshooting production),
against a real `sisada serve` with the registry, its whole output captured as raw bytes:
libraries' DEBUG lines (aiosqlite and asyncpg statements with their parameters, websockets
frames, httpx/httpcore headers) never reach it, so no value a caller sent or read does —
a reporter's contact and text, a receipt code, names and passport numbers, an event's
payload — and a path that is none of the app's routes is logged as `/<unknown>`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import websockets.sync.client
from conftest import PURPOSE, REGISTRY_TOKEN, Deployment, delete_marked_rows, on_db
from test_logs_and_cursors_http import Served, _forms, serving
from ws_client import FeedClient

from resolvers.outbox import last_event_id

MARKER = "sisada-debug-log-test-"
SUBMIT = """mutation Submit($t: String!, $c: String, $a: String!) {
  submitReport(input: {category: OVERSTAY, text: $t, areaCode: $a, reporterContact: $c})
  { receiptCode status } }"""
STATUS = "query Status($c: String!) { reportStatus(receiptCode: $c) { receiptCode status } }"
NAMES = "query Names { foreigners(first: 3) { nodes { fullName passportNumber } } }"
REPORTS = """subscription Reports($after: ID) { reportUpdated(after: $after) {
  eventId report { text reporterContact } } }"""
# Caller's text in a path: a passport number and a name, as a client might build a URL.
SECRET_PATH_PART = "TT9958386/Sato%20Kazuki"


@pytest.fixture(scope="module")
def served_at_debug(deployment: Deployment, tmp_path_factory: pytest.TempPathFactory
                    ) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp(f"debug-{deployment.backend}")
    with serving(deployment, tmp, SISADA_ENVIRONMENT="production", SISADA_LOG_LEVEL="debug",
                 SISADA_GRAPHIQL="false", SISADA_INTROSPECTION="authenticated",
                 SISADA_REGISTRY_URL=deployment.registry.url,
                 SISADA_REGISTRY_TOKEN=REGISTRY_TOKEN) as served:
        yield served
    delete_marked_rows(deployment.database_url, MARKER)


def _post(served: Served, deployment: Deployment, persona: str, query: str,
          **variables: Any) -> dict[str, Any]:
    token = deployment.token(persona)
    headers = {"sisada-purpose": PURPOSE}
    if token:
        headers["authorization"] = f"Bearer {token}"
    response = httpx.post(f"{served.base_url}/graphql", headers=headers, timeout=30,
                          json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return dict(body["data"])


def _log_bytes(served: Served) -> bytes:
    served.log_text()  # waits for the access lines
    return served.log.read_bytes()


async def test_debug_log_carries_no_value_sent_read_or_streamed(
    served_at_debug: Served, deployment: Deployment,
) -> None:
    contact = f"+62-811-5550-{uuid.uuid4().hex[:8]} debug-contact"
    text = f"{MARKER}{uuid.uuid4().hex} tenant on the second floor"
    supervisor = FeedClient(served_at_debug.base_url)
    await supervisor.__aenter__()
    try:
        ack = await supervisor.init(deployment.token("immigration_supervisor"), purpose=PURPOSE)
        assert ack == {"type": "connection_ack"}
        after = str(on_db(deployment.database_url, last_event_id))
        op = await supervisor.subscribe(REPORTS, {"after": after})
        submitted = _post(served_at_debug, deployment, "public", SUBMIT, t=text, c=contact,
                          a=deployment.facts.busiest_setiabudi_rt)["submitReport"]
        event = (await supervisor.next_payload(op))["data"]["reportUpdated"]["report"]
    finally:
        await supervisor.__aexit__()
    assert event == {"text": text, "reporterContact": contact}
    receipt = submitted["receiptCode"]
    status = _post(served_at_debug, deployment, "public", STATUS, c=receipt)["reportStatus"]
    assert status["receiptCode"] == receipt
    nodes = _post(served_at_debug, deployment, "immigration_officer", NAMES)["foreigners"][
        "nodes"]
    identity = [value for node in nodes for value in (node["fullName"], node["passportNumber"])]
    assert len(identity) == 6 and all(identity)

    raw = _log_bytes(served_at_debug)
    lines = [orjson.loads(line) for line in raw.splitlines()]  # production: JSON lines
    assert any(line["logger"] == "uvicorn.access" for line in lines)
    for value in (contact, text, receipt, *identity):
        for form in _forms(value):
            assert form.encode() not in raw, f"{form!r} is in the debug log"
    # No library's DEBUG line at all (the app's own DEBUG lines may be there).
    assert not [line for line in lines if line["level"] == "debug"
                and line["logger"].partition(".")[0]
                not in {"sisada", "gateway", "schema", "resolvers", "policies"}]


def test_a_path_that_is_no_route_is_logged_as_unknown_as_public(
    served_at_debug: Served,
) -> None:
    base = served_at_debug.base_url
    missing = httpx.get(f"{base}/graphql/{SECRET_PATH_PART}?query=x", timeout=30)
    assert missing.status_code == 404
    known = httpx.get(f"{base}/graphql", params={"query": "{ __typename }"}, timeout=30)
    assert known.status_code == 200
    # A parameterised route is named by its template, not by what filled it.
    source = httpx.get(f"{base}/policy/sources/{SECRET_PATH_PART.replace('/', '-')}",
                       timeout=30)
    # An operation name the document does not hold: the caller's text, answered 400.
    unknown = httpx.post(f"{base}/graphql", timeout=30, json={
        "query": "query A { __typename }", "operationName": "lookup TT9958386 Sato Kazuki"})
    assert unknown.status_code == 400
    with pytest.raises(websockets.exceptions.InvalidStatus):
        websockets.sync.client.connect(
            base.replace("http://", "ws://") + f"/graphql/{SECRET_PATH_PART}",
            subprotocols=["graphql-transport-ws"], open_timeout=10)  # type: ignore[list-item]
    raw = _log_bytes(served_at_debug)
    for part in ("TT9958386", "Sato"):
        assert part.encode() not in raw
    by_id = {}
    for line in raw.splitlines():
        parsed = orjson.loads(line)
        if parsed["logger"] == "uvicorn.access":
            by_id[parsed.get("request_id")] = parsed["path"]
    assert by_id[missing.headers["x-request-id"]] == "/<unknown>?query=REDACTED"
    assert by_id[known.headers["x-request-id"]] == "/graphql?query=REDACTED"
    assert by_id[source.headers["x-request-id"]] == "/policy/sources/{name}"
    assert b"WebSocket /<unknown>" in raw
