"""The shipped Hive Gateway configuration (deploy/gateway.config.mjs, docker-compose.yml's
front door) run with Hive Gateway's runtime in front of a real gateway that trusts it as a
proxy, as compose does.

Per-role introspection answers an anonymous proxy with the public's contract, so the proxy
validates against the whole schema it is given (`sisada schema`, deploy/schema.graphql):
an officer's field check must pass through it. The proxy must not hand a client's own
X-Request-ID on as its request id (Sisada believes this proxy's headers)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import Deployment, ServerThread, free_port, purpose_headers

from gateway.app import create_app

ROOT = Path(__file__).resolve().parents[2]
JS = ROOT / "tests" / "js"
CHOSEN = "chosen-by-the-client-0001"
CHECK = """query FieldCheck($n: String!) { checkForeigner(documentNumber: $n) {
  registered foreigner { id fullName passportNumber } } }"""
TRAIL = "{ accessTrail(first: 50) { nodes { requestId recordType } } }"


def _node() -> str:
    from shutil import which

    node = which("node")
    if node and (JS / "node_modules" / "@graphql-hive" / "gateway-runtime").is_dir():
        return node
    why = "node or tests/js/node_modules is missing (npm ci --prefix tests/js)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"the Hive proxy test cannot run in CI: {why}")
    pytest.skip(why)


@pytest.fixture(scope="module")
def proxied(deployment: Deployment, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[str, str]]:
    """(the proxy's /graphql, the gateway's base URL)."""
    node = _node()
    tmp = tmp_path_factory.mktemp("hive-proxy")
    settings = deployment.settings_with(tmp, trusted_proxies="127.0.0.1")
    with ServerThread(create_app(settings)) as base:
        port = free_port()
        log = tmp / "hive.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [node, str(JS / "hive-proxy.mjs")], cwd=ROOT / "deploy", stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PORT": str(port),
                     "SISADA_UPSTREAM_URL": f"{base}/graphql"})
        try:
            url = f"http://127.0.0.1:{port}/graphql"
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"the proxy exited: {log.read_text()[-2000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"http://127.0.0.1:{port}/healthcheck",
                                 timeout=1).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the proxy did not start: {log.read_text()[-2000:]}")
                time.sleep(0.2)
            yield url, base
        finally:
            process.terminate()
            process.wait(timeout=10)


def _post(url: str, deployment: Deployment, persona: str, query: str,
          variables: dict[str, str] | None = None, **headers: str) -> httpx.Response:
    sent = {"authorization": f"Bearer {deployment.token(persona)}", **purpose_headers(),
            **headers}
    return httpx.post(url, json={"query": query, "variables": variables or {}},
                      headers=sent, timeout=30)


def test_the_shipped_schema_is_the_gateways_whole_schema() -> None:
    printed = subprocess.run([sys.executable, "-m", "gateway.cli", "schema"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout
    assert (ROOT / "deploy" / "schema.graphql").read_text() == printed, (
        "run `sisada schema > deploy/schema.graphql`")


def test_an_officers_field_check_passes_through_the_proxy(
        proxied: tuple[str, str], deployment: Deployment) -> None:
    url, _ = proxied
    person = deployment.facts.foreigners[0]
    answer = _post(url, deployment, "immigration_officer", CHECK,
                   {"n": person["passport_number"]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "errors" not in body, body
    assert body["data"]["checkForeigner"]["foreigner"]["fullName"] == person["full_name"]
    # And the police, through the same proxy, still read no name (raw bytes).
    police = _post(url, deployment, "city_police",
                   "{ foreigners(first: 5) { nodes { id fullName } } }")
    assert b'"fullName":null' in police.content
    assert person["full_name"].encode() not in police.content


def test_a_client_cannot_choose_the_request_id_sisada_records(
        proxied: tuple[str, str], deployment: Deployment) -> None:
    url, base = proxied
    person = deployment.facts.foreigners[1]
    direct = _post(f"{base}/graphql", deployment, "immigration_officer", CHECK,
                   {"n": person["passport_number"]}, **{"x-request-id": f"{CHOSEN}-direct"})
    # The gateway believes this address's ids (the control: the test can see one taken).
    assert direct.headers["x-request-id"] == f"{CHOSEN}-direct"
    through = _post(url, deployment, "immigration_officer", CHECK,
                    {"n": person["passport_number"]}, **{"x-request-id": CHOSEN})
    assert through.status_code == 200 and "errors" not in through.json(), through.text
    trail = _post(f"{base}/graphql", deployment, "immigration_supervisor", TRAIL).json()
    ids = [node["requestId"] for node in trail["data"]["accessTrail"]["nodes"]]
    assert f"{CHOSEN}-direct" in ids
    assert CHOSEN not in ids


def test_sisada_sees_each_clients_own_address_not_one_it_claims(
        proxied: tuple[str, str], deployment: Deployment) -> None:
    """Per-IP limits (reports, receipt look-ups) count each client behind the proxy, by the
    address the proxy's socket saw: a client's own X-Forwarded-For is replaced."""
    url, base = proxied
    person = deployment.facts.foreigners[2]
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(transport=transport, timeout=30) as client:
        answer = client.post(url, json={"query": CHECK,
                                        "variables": {"n": person["passport_number"]}},
                             headers={"authorization":
                                      f"Bearer {deployment.token('immigration_officer')}",
                                      "x-forwarded-for": "203.0.113.9", **purpose_headers()})
    assert answer.status_code == 200 and "errors" not in answer.json(), answer.text
    trail = _post(f"{base}/graphql", deployment, "immigration_supervisor",
                  "{ accessTrail(first: 5) { nodes { clientAddress } } }").json()
    newest = trail["data"]["accessTrail"]["nodes"][0]["clientAddress"]
    assert newest == "127.0.0.2", trail
