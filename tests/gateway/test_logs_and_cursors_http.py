"""Identity in logs and cursors (issue 8, section 3.3), against a real `sisada serve`
process whose whole output is captured: no log line carries a value of an identity field
or an identity search term — not from a GET query string, not from variables, not from
an alias — and no cursor carries a value in the clear (a NAME ordering's cursor used to
carry the name in base64; names now live in the registry and no order by name remains)."""

from __future__ import annotations

import base64
import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import orjson
import pytest
import websockets.sync.client
from conftest import (
    REGISTRY_TOKEN,
    TEST_SECRET,
    Deployment,
    free_port,
    on_db,
    purpose_headers,
)

from resolvers.trail import entries_about_foreigner

SISADA = Path(sys.executable).with_name("sisada")


class Served:
    """A `sisada serve` process over the deployment's database, its output in a file."""

    def __init__(self, base_url: str, log: Path) -> None:
        self.base_url = base_url
        self.log = log

    def log_text(self) -> str:
        time.sleep(0.3)  # the access line is written after the response is sent
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextlib.contextmanager
def serving(deployment: Deployment, tmp: Path, **extra: str) -> Iterator[Served]:
    """`sisada serve` over the deployment's database, its whole output (stdout and stderr)
    in one file; `extra` adds to its environment."""
    port = free_port()
    env = {**os.environ, "SISADA_DATABASE_URL": deployment.database_url,
           "SISADA_JWT_SECRET": TEST_SECRET, "SISADA_DEV_KEY_FILE": str(tmp / "dev-key"),
           "SISADA_LOG_LEVEL": "INFO", "SISADA_RATE_LIMITS_ENABLED": "false", **extra}
    for name in ("SISADA_LOG_FORMAT", "SISADA_ENVIRONMENT", "SISADA_TRUSTED_PROXIES",
                 "SISADA_FORWARDED_ALLOW_IPS"):
        if name not in extra:
            env.pop(name, None)
    log = tmp / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen([str(SISADA), "serve", "--port", str(port)], env=env,
                                   stdout=out, stderr=subprocess.STDOUT, cwd=tmp)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"sisada serve did not start: {log.read_text()}")
            time.sleep(0.1)
        yield Served(base_url, log)
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.fixture(scope="module")
def served(deployment: Deployment, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Served]:
    with serving(deployment, tmp_path_factory.mktemp(f"served-{deployment.backend}")) as served:
        yield served


def _forms(value: str) -> list[str]:
    """The ways a value can appear in a log line: as is, and URL-encoded."""
    return sorted({value, quote(value), quote_plus(value), quote(value, safe="")})


def _get(served: Served, deployment: Deployment, persona: str, **params: str
         ) -> httpx.Response:
    token = deployment.token(persona)
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{served.base_url}/graphql", params=params, headers=headers, timeout=30)


def test_get_identity_searches_leave_no_identity_in_the_log_as_immigration_officer(
    served: Served, deployment: Deployment,
) -> None:
    first, second, third = deployment.facts.foreigners[10:13]
    permit = deployment.facts.permit_numbers[third["id"]][0]
    requests: list[dict[str, str]] = [
        {"query": f'{{ checkForeigner(documentNumber: "{first["passport_number"]}") '
                  "{ registered } }"},
        {"query": "query($n: String!) { checkForeigner(documentNumber: $n) { registered } }",
         "variables": orjson.dumps({"n": second["passport_number"]}).decode()},
        {"query": f'{{ foreigners(filter: {{name: "{first["full_name"]}"}}) {{ totalCount }} }}'},
        {"query": f'{{ foreigners(filter: {{documentNumber: "{permit}"}}) {{ totalCount }} }}'},
        # An identity value as an alias, as an operation name, and as a parameter name;
        # the bad input error is logged with its path.
        {"query": f'query {third["passport_number"]} {{ {third["passport_number"]}: '
                  'checkForeigner(documentNumber: "!") { registered } }',
         "operationName": third["passport_number"], third["passport_number"]: "1"},
    ]
    for params in requests:
        response = _get(served, deployment, "immigration_officer", **params)
        assert response.status_code == 200, response.text
    # A POST is logged as well (its body is not), and reaches the same resolvers.
    httpx.post(f"{served.base_url}/graphql", timeout=30,
               headers={"authorization": f"Bearer {deployment.token('immigration_officer')}"},
               json={"query": "query($n: String!) { checkForeigner(documentNumber: $n) "
                              "{ foreigner { fullName } } }",
                     "variables": {"n": second["passport_number"]}})
    text = served.log_text()
    assert '"GET /graphql?query=REDACTED' in text  # the access log is on, and redacted
    for secret in (first["passport_number"], second["passport_number"],
                   third["passport_number"], permit, first["full_name"],
                   second["full_name"], third["full_name"]):
        for form in _forms(secret):
            assert form not in text, f"{form!r} is in the server log"


def _name_page(deployment: Deployment, after: str | None = None, first: int = 25
               ) -> dict[str, Any]:
    """A page in the order whose cursor holds a value (the expiry date), with names."""
    body = deployment.gql(
        "query($a: String, $f: Int!) { foreigners(first: $f, after: $a, "
        "orderBy: PERMIT_EXPIRES_ON) "
        "{ pageInfo { endCursor hasNextPage } nodes { id fullName permitExpiresOn } } }",
        "immigration_officer", a=after, f=first)
    assert "errors" not in body, body
    return body["data"]["foreigners"]


def _decodings(cursor: str) -> list[bytes]:
    padded = cursor + "=" * (-len(cursor) % 4)
    out = [cursor.encode()]
    for decode in (base64.urlsafe_b64decode, base64.b64decode):
        with contextlib.suppress(ValueError):
            out.append(decode(padded.encode()))
    return out


def test_a_value_ordering_cursor_carries_no_value_in_the_clear_as_immigration_officer(
    deployment: Deployment,
) -> None:
    page = _name_page(deployment)
    cursor = page["pageInfo"]["endCursor"]
    last = page["nodes"][-1]
    for decoded in _decodings(cursor):
        assert last["permitExpiresOn"].encode() not in decoded
        assert last["fullName"].encode() not in decoded
    # Deterministic: the same position is the same cursor.
    assert _name_page(deployment)["pageInfo"]["endCursor"] == cursor


def test_value_cursors_page_through_every_row_once_as_immigration_officer(
    deployment: Deployment,
) -> None:
    whole = [n["id"] for n in _name_page(deployment, first=60)["nodes"]]
    first = _name_page(deployment, first=30)
    second = _name_page(deployment, first["pageInfo"]["endCursor"], first=30)
    assert [n["id"] for n in first["nodes"] + second["nodes"]] == whole


def test_cursors_are_shared_by_replicas_with_one_secret_as_immigration_officer(
    served: Served, deployment: Deployment,
) -> None:
    cursor = _name_page(deployment, first=5)["pageInfo"]["endCursor"]
    query = ("query($a: String) { foreigners(first: 5, after: $a, "
             "orderBy: PERMIT_EXPIRES_ON) { nodes { id } } }")
    headers = {"authorization": f"Bearer {deployment.token('immigration_officer')}"}
    here = deployment.gql(query, "immigration_officer", a=cursor)
    there = httpx.post(f"{served.base_url}/graphql", headers=headers, timeout=30,
                       json={"query": query, "variables": {"a": cursor}}).json()
    assert "errors" not in there
    assert here == there


def _codes(body: dict[str, Any]) -> list[str | None]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors", [])]


def test_a_tampered_or_foreign_cursor_is_bad_input_as_immigration_officer(
    deployment: Deployment,
) -> None:
    page = _name_page(deployment, first=5)
    cursor = page["pageInfo"]["endCursor"]
    middle = len(cursor) // 2
    flipped = cursor[:middle] + ("A" if cursor[middle] != "A" else "B") + cursor[middle + 1:]
    key = page["nodes"][-1]
    plain = base64.urlsafe_b64encode(orjson.dumps(
        {"o": "PERMIT_EXPIRES_ON", "k": [key["permitExpiresOn"], int(key["id"])]})
    ).decode().rstrip("=")
    by_id = deployment.gql("{ foreigners(first: 5) { pageInfo { endCursor } } }",
                           "immigration_officer")["data"]["foreigners"]["pageInfo"]["endCursor"]
    for bad in (flipped, cursor[:-2], cursor + "AA", plain, by_id, "", "x" * 5000):
        response = deployment.post(
            "query($a: String) { foreigners(first: 5, after: $a, "
            "orderBy: PERMIT_EXPIRES_ON) { nodes { id } } }", "immigration_officer",
            {"a": bad})
        body = response.json()
        assert _codes(body) == ["BAD_USER_INPUT"], (bad, body)
        assert body["errors"][0]["message"] == "invalid cursor"


# -- one structured stream in production: JSON lines, each request's lines with its id --

SAFE_ID = "router-7f3a.b_c-0001"
# What an incoming id may not be: spaces and a quote (log injection), too long.
UNSAFE_IDS = ('evil id" level=error', "x" * 65)
FRESH_ID = re.compile(r"[0-9a-f]{32}")
IDENTITY_READ = ("query Identity { foreigners(first: 3) { nodes { id fullName passportNumber } }"
                 ' bad: checkForeigner(documentNumber: "!") { registered } }')


@pytest.fixture(scope="module")
def served_in_production(deployment: Deployment, tmp_path_factory: pytest.TempPathFactory
                         ) -> Iterator[Served]:
    """Production mode (JSON lines by default), with the registry, behind a proxy at
    127.0.0.1: requests from 127.0.0.2 come from an untrusted address."""
    tmp = tmp_path_factory.mktemp(f"production-{deployment.backend}")
    with serving(deployment, tmp, SISADA_ENVIRONMENT="production", SISADA_GRAPHIQL="false",
                 SISADA_INTROSPECTION="authenticated", SISADA_TRUSTED_PROXIES="127.0.0.1",
                 SISADA_REGISTRY_URL=deployment.registry.url,
                 SISADA_REGISTRY_TOKEN=REGISTRY_TOKEN) as served:
        yield served


def _lines(served: Served) -> list[dict[str, Any]]:
    """Every line of the server's output, each parsed as one JSON object."""
    lines = []
    for number, line in enumerate(served.log_text().splitlines(), 1):
        parsed = orjson.loads(line)  # raises on any line that is not JSON
        assert isinstance(parsed, dict), (number, line)
        assert {"timestamp", "level", "event", "logger"} <= parsed.keys(), (number, line)
        lines.append(parsed)
    return lines


def _identity_read(served: Served, deployment: Deployment, source: str = "127.0.0.1",
                   request_id: str | None = None, **extra: str) -> httpx.Response:
    headers = {**purpose_headers(), **extra,
               "authorization": f"Bearer {deployment.token('immigration_officer')}"}
    if request_id is not None:
        headers["x-request-id"] = request_id
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=30) as client:
        response = client.post(f"{served.base_url}/graphql", headers=headers,
                               json={"query": IDENTITY_READ})
    assert response.status_code == 200, response.text
    return response


def test_production_logs_are_json_lines_carrying_a_trusted_request_id_as_immigration_officer(
    served_in_production: Served, deployment: Deployment,
) -> None:
    deployment.registry.clear_requests()
    response = _identity_read(served_in_production, deployment, request_id=SAFE_ID)
    assert response.headers["x-request-id"] == SAFE_ID
    nodes = response.json()["data"]["foreigners"]["nodes"]
    assert nodes and all(node["fullName"] and node["passportNumber"] for node in nodes)
    lines = [line for line in _lines(served_in_production)
             if line.get("request_id") == SAFE_ID]
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    assert len(access) == 1, lines
    assert access[0]["method"] == "POST" and access[0]["status"] == 200
    assert access[0]["path"] == "/graphql"
    # The app's own lines of the request (the bad input error) carry it too.
    assert any(line["logger"].startswith("sisada") for line in lines), lines
    # And the registry call made for it, and the trail entries of what it read.
    assert {r["request_id"] for r in deployment.registry.requests()} == {SAFE_ID}
    entries = on_db(deployment.database_url,
                    lambda db: entries_about_foreigner(db, int(nodes[0]["id"])))
    assert any(e["request_id"] == SAFE_ID and "fullName" in e["fields"] for e in entries)
    text = served_in_production.log_text()
    for node in nodes:
        for value in (node["fullName"], node["passportNumber"]):
            for form in _forms(value):
                assert form not in text, f"{form!r} is in the server log"


@pytest.mark.parametrize("unsafe", UNSAFE_IDS, ids=["injection", "too-long"])
def test_an_unsafe_request_id_is_replaced_as_immigration_officer(
    served_in_production: Served, deployment: Deployment, unsafe: str,
) -> None:
    response = _identity_read(served_in_production, deployment, request_id=unsafe)
    fresh = response.headers["x-request-id"]
    assert FRESH_ID.fullmatch(fresh)
    lines = _lines(served_in_production)
    assert any(line["logger"] == "uvicorn.access" and line.get("request_id") == fresh
               for line in lines)
    assert not any(unsafe in orjson.dumps(line).decode() for line in lines)


def test_a_request_id_from_an_untrusted_address_is_replaced_as_immigration_officer(
    served_in_production: Served, deployment: Deployment,
) -> None:
    claimed = "claimed-by-a-client-42"
    response = _identity_read(served_in_production, deployment, source="127.0.0.2",
                              request_id=claimed)
    fresh = response.headers["x-request-id"]
    assert FRESH_ID.fullmatch(fresh)
    lines = _lines(served_in_production)
    access = [line for line in lines if line.get("request_id") == fresh
              and line["logger"] == "uvicorn.access"]
    assert len(access) == 1 and access[0]["event"].startswith("127.0.0.2:")
    assert not any(line.get("request_id") == claimed for line in lines)


@pytest.mark.parametrize(("forwarded", "client"), [
    ("203.0.113.7", "203.0.113.7"),
    ("2001:db8::7", "2001:db8::7"),
    # A proxy that passes the caller's own header through: its text is not an address.
    ("Zhang Chen E58383307", "127.0.0.1"),
    ("203.0.113.7, Zhang_Chen", "127.0.0.1"),
    ("fe80::1%Zhang_Chen_E58383307", "127.0.0.1"),  # an IPv6 scope is free text
], ids=["v4", "v6", "name", "name-last", "v6-scope"])
def test_a_forwarded_client_is_an_address_or_the_proxys_own_as_immigration_officer(
    served_in_production: Served, deployment: Deployment, forwarded: str, client: str,
) -> None:
    request_id = f"forwarded-{abs(hash(forwarded))}"
    response = _identity_read(served_in_production, deployment, request_id=request_id,
                              **{"x-forwarded-for": forwarded})
    assert response.headers["x-request-id"] == request_id
    lines = _lines(served_in_production)
    access = [line for line in lines if line.get("request_id") == request_id
              and line["logger"] == "uvicorn.access"]
    assert len(access) == 1 and access[0]["event"].startswith(f"{client}:"), access
    node = response.json()["data"]["foreigners"]["nodes"][0]
    entries = [e for e in on_db(deployment.database_url,
                                lambda db: entries_about_foreigner(db, int(node["id"])))
               if e["request_id"] == request_id]
    assert entries and {e["client_address"] for e in entries} == {client}
    for word in ("Zhang", "E58383307"):
        assert word not in served_in_production.log_text()


def test_each_request_without_an_id_gets_its_own_as_public(
    served_in_production: Served,
) -> None:
    ids = []
    for _ in range(2):
        response = httpx.post(f"{served_in_production.base_url}/graphql", timeout=30,
                              json={"query": "{ __typename }"})
        assert response.status_code == 200
        ids.append(response.headers["x-request-id"])
    assert len(set(ids)) == 2 and all(FRESH_ID.fullmatch(i) for i in ids)
    lines = _lines(served_in_production)
    for request_id in ids:
        assert [line["logger"] for line in lines if line.get("request_id") == request_id] \
            == ["uvicorn.access"]


def test_a_websocket_handshake_returns_and_logs_its_request_id_as_public(
    served_in_production: Served,
) -> None:
    url = served_in_production.base_url.replace("http://", "ws://") + "/graphql"
    with websockets.sync.client.connect(url, subprotocols=["graphql-transport-ws"],
                                        additional_headers={"x-request-id": SAFE_ID + "-ws"},
                                        open_timeout=10) as socket:
        assert socket.response.headers["x-request-id"] == SAFE_ID + "-ws"
    lines = _lines(served_in_production)
    assert any(line.get("request_id") == SAFE_ID + "-ws" and "WebSocket /graphql"
               in line["event"] for line in lines), lines[-5:]


def test_sisada_log_format_console_overrides_production(
    deployment: Deployment, tmp_path: Path,
) -> None:
    with serving(deployment, tmp_path, SISADA_ENVIRONMENT="production",
                 SISADA_GRAPHIQL="false", SISADA_INTROSPECTION="authenticated",
                 SISADA_LOG_FORMAT="console") as served:
        response = httpx.get(f"{served.base_url}/graphql", timeout=30,
                             params={"query": "{ __typename }"})
        request_id = response.headers["x-request-id"]
        text = served.log_text()
    access = [line for line in text.splitlines() if "logger='uvicorn.access'" in line]
    assert any(f"request_id='{request_id}'" in line
               and '"GET /graphql?query=REDACTED' in line for line in access), access
    assert not any(line.startswith("{") for line in text.splitlines())
