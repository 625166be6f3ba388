"""Identity in logs and cursors (issue 8, section 3.3), against a real `sisada serve`
process whose whole output is captured: no log line carries a value of an identity field
or an identity search term — not from a GET query string, not from variables, not from
an alias — and no cursor carries a value in the clear (a NAME ordering's cursor used to
carry the name in base64; names now live in the registry and no order by name remains)."""

from __future__ import annotations

import base64
import contextlib
import os
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
from conftest import TEST_SECRET, Deployment, free_port

SISADA = Path(sys.executable).with_name("sisada")


class Served:
    """A `sisada serve` process over the deployment's database, its output in a file."""

    def __init__(self, base_url: str, log: Path) -> None:
        self.base_url = base_url
        self.log = log

    def log_text(self) -> str:
        time.sleep(0.3)  # the access line is written after the response is sent
        return self.log.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="module")
def served(deployment: Deployment, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp(f"served-{deployment.backend}")
    port = free_port()
    env = {**os.environ, "SISADA_DATABASE_URL": deployment.database_url,
           "SISADA_JWT_SECRET": TEST_SECRET, "SISADA_DEV_KEY_FILE": str(tmp / "dev-key"),
           "SISADA_LOG_LEVEL": "INFO", "SISADA_RATE_LIMITS_ENABLED": "false"}
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
