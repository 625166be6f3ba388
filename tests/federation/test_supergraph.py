"""Partners compose the gateway into their supergraph (issue 9 §2), with real peers: the
live SDL composes with a partner subgraph under Apollo's and The Guild's composition, and
Apollo Gateway and Hive Gateway (Node processes, tests/js, pinned by its lockfile) serve
the two — a police subgraph that defines its own `me`/`Me`/`PageInfo` and refers to
`Foreigner` by key — as police and as immigration, from Sisada's root fields and from the
partner's references. Names stay null for police (checked on the raw bytes), hidden is told
apart from unknown by `redactedFields`, out-of-scope references reveal nothing, Sisada's
refusals keep their codes, the user's token reaches Sisada only, and per-IP limits see the
clients behind the router.

Every process is started by these tests on a free port and stopped by its own PID; the
routers start once per module (per backend)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import SETIABUDI, TEBET, TEST_SECRET, Deployment, free_port, purpose_headers

JS = Path(__file__).resolve().parent.parent / "js"
SISADA = Path(sys.executable).with_name("sisada")
ROUTERS = ("apollo", "hive")
ROUTER_SCRIPTS = {"apollo": "apollo-gateway.mjs", "hive": "hive-gateway.mjs"}
# Two client addresses per router for the per-IP tests (one limited gateway behind both).
CLIENTS = {"apollo": ("127.0.0.2", "127.0.0.3"), "hive": ("127.0.0.4", "127.0.0.5")}

ROOT_QUERY = """
{ foreigners(first: 20, filter: {areaCode: "31.74.02"}) {
    nodes { id fullName passportNumber nationality redactedFields } } }
"""
PARTNER_QUERY = """
{ incidents { id summary
    foreigner { id fullName passportNumber nationality redactedFields } } }
"""
SISADA_FIELDS = ("fullName", "passportNumber", "nationality", "redactedFields")


def _node() -> str:
    node = shutil.which("node")
    installed = (JS / "node_modules" / "@apollo" / "gateway").is_dir()
    if node and installed:
        return node
    why = ("node is not installed" if not node
           else "tests/js/node_modules is missing: run `npm ci --prefix tests/js`")
    if os.environ.get("CI") == "true":
        pytest.fail(f"the supergraph tests cannot run in CI: {why}")
    pytest.skip(why)


def _wait_for_port(process: subprocess.Popen[bytes], port: int, what: str,
                   log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start: {log.read_text()[-2000:]}")


@contextlib.contextmanager
def _process(argv: list[str], env: dict[str, str], port: int, what: str, tmp: Path
             ) -> Iterator[subprocess.Popen[bytes]]:
    log = tmp / f"{what}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env={**os.environ, **env}, cwd=JS, stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        _wait_for_port(process, port, what, log)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@dataclass
class Partner:
    url: str
    ids: tuple[str, str, str]  # in the police persona's scope, outside it, missing
    request_log: Path

    def requests(self) -> list[dict[str, Any]]:
        if not self.request_log.exists():
            return []
        return [json.loads(line) for line in self.request_log.read_text().splitlines()]


@dataclass
class Supergraph:
    deployment: Deployment
    partner: Partner
    routers: dict[str, str]

    def post(self, router: str, query: str, persona: str = "public",
             token: str | None = None) -> httpx.Response:
        headers = {"content-type": "application/json", **purpose_headers()}
        bearer = token or self.deployment.token(persona)
        if bearer:
            headers["authorization"] = f"Bearer {bearer}"
        return httpx.post(self.routers[router], json={"query": query}, headers=headers,
                          timeout=30)


def _ids(deployment: Deployment) -> tuple[str, str, str]:
    facts = deployment.facts
    missing = max(f["id"] for f in facts.foreigners) + 100_000
    return (str(min(facts.in_area(SETIABUDI))), str(min(facts.in_area(TEBET))), str(missing))


def _router_env(sisada_url: str, partner: Partner, port: int, token: str | None
                ) -> dict[str, str]:
    env = {"PORT": str(port), "SISADA_URL": sisada_url, "PARTNER_URL": partner.url}
    if token:
        env["SISADA_ROUTER_TOKEN"] = token
    return env


@contextlib.contextmanager
def _partner(deployment: Deployment, tmp: Path) -> Iterator[Partner]:
    port, ids = free_port(), _ids(deployment)
    log = tmp / "partner-requests.jsonl"
    env = {"PORT": str(port), "FOREIGNER_IDS": ",".join(ids), "REQUEST_LOG": str(log)}
    with _process([_node(), "partner-subgraph.mjs"], env, port, "partner", tmp):
        yield Partner(url=f"http://127.0.0.1:{port}/", ids=ids, request_log=log)


@contextlib.contextmanager
def _routers(sisada_url: str, partner: Partner, token: str | None, tmp: Path
             ) -> Iterator[dict[str, str]]:
    with contextlib.ExitStack() as stack:
        urls = {}
        for name in ROUTERS:
            port = free_port()
            stack.enter_context(_process(
                [_node(), ROUTER_SCRIPTS[name]], _router_env(sisada_url, partner, port, token),
                port, f"{name}-router", tmp))
            urls[name] = f"http://127.0.0.1:{port}/graphql" if name == "hive" else \
                f"http://127.0.0.1:{port}/"
        yield urls


@pytest.fixture(scope="module")
def supergraph(deployment: Deployment, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[Supergraph]:
    tmp = tmp_path_factory.mktemp(f"supergraph-{deployment.backend}")
    with _partner(deployment, tmp) as partner, _routers(
            f"{deployment.base_url}/graphql", partner, deployment.token("auditor"), tmp
    ) as routers:
        yield Supergraph(deployment, partner, routers)


def _secrets(deployment: Deployment) -> list[bytes]:
    """Every seeded name and passport number, as they would appear in a JSON response."""
    values = set()
    for foreigner in deployment.facts.foreigners:
        for key in ("full_name", "passport_number"):
            if foreigner.get(key):
                values.add(json.dumps(foreigner[key]).encode())
    for numbers in deployment.facts.permit_numbers.values():
        values.update(json.dumps(number).encode() for number in numbers)
    return sorted(values)


def _fact(deployment: Deployment, foreigner_id: str) -> dict[str, Any]:
    return next(f for f in deployment.facts.foreigners if str(f["id"]) == foreigner_id)


def _codes(body: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors", [])]


# -- composition ---------------------------------------------------------------------------


def test_live_sdl_composes_with_a_partner_on_apollo_and_guild_composition(
        supergraph: Supergraph) -> None:
    env = {**os.environ, "SISADA_URL": f"{supergraph.deployment.base_url}/graphql",
           "PARTNER_URL": supergraph.partner.url}
    completed = subprocess.run([_node(), "compose.mjs"], cwd=JS, env=env, capture_output=True,
                               text=True, timeout=60, check=False)
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert result["apollo"]["errors"] == []
    assert result["guild"]["errors"] == []
    assert result["apollo"]["supergraph"] and result["guild"]["supergraph"]
    sdl = result["sisadaSdl"]
    assert "specs.apollo.dev/federation/v2.3" in sdl
    assert "federation/v2.11" not in sdl


# -- Sisada's root fields through each router ------------------------------------------------


@pytest.mark.parametrize("router", ROUTERS)
def test_root_foreigners_names_null_as_police_through_router(
        supergraph: Supergraph, router: str) -> None:
    response = supergraph.post(router, ROOT_QUERY, "setiabudi_police")
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    nodes = body["data"]["foreigners"]["nodes"]
    assert nodes
    for node in nodes:
        assert node["fullName"] is None and node["passportNumber"] is None
        assert node["nationality"] == _fact(supergraph.deployment, node["id"])["nationality"]
        assert {"fullName", "passportNumber"} <= set(node["redactedFields"])
    leaked = [s for s in _secrets(supergraph.deployment) if s in response.content]
    assert leaked == []


@pytest.mark.parametrize("router", ROUTERS)
def test_root_foreigners_names_as_immigration_officer_through_router(
        supergraph: Supergraph, router: str) -> None:
    body = supergraph.post(router, ROOT_QUERY, "immigration_officer").json()
    assert "errors" not in body, body
    nodes = body["data"]["foreigners"]["nodes"]
    assert nodes
    for node in nodes:
        assert node["fullName"] == _fact(supergraph.deployment, node["id"])["full_name"]
        assert node["redactedFields"] == []


# -- the partner's references to Foreigner ---------------------------------------------------


def _incidents(supergraph: Supergraph, router: str, persona: str
               ) -> tuple[httpx.Response, dict[str, Any]]:
    response = supergraph.post(router, PARTNER_QUERY, persona)
    assert response.status_code == 200, response.text
    return response, response.json()


@pytest.mark.parametrize("router", ROUTERS)
def test_partner_reference_in_scope_names_null_as_police_through_router(
        supergraph: Supergraph, router: str) -> None:
    response, body = _incidents(supergraph, router, "setiabudi_police")
    in_scope = body["data"]["incidents"][0]["foreigner"]
    fact = _fact(supergraph.deployment, supergraph.partner.ids[0])
    assert in_scope["id"] == supergraph.partner.ids[0]
    assert in_scope["fullName"] is None and in_scope["passportNumber"] is None
    assert in_scope["nationality"] == fact["nationality"]
    assert {"fullName", "passportNumber"} <= set(in_scope["redactedFields"])
    leaked = [s for s in _secrets(supergraph.deployment) if s in response.content]
    assert leaked == []


@pytest.mark.parametrize("router", ROUTERS)
def test_partner_reference_out_of_scope_reveals_nothing_as_police_through_router(
        supergraph: Supergraph, router: str) -> None:
    _, body = _incidents(supergraph, router, "setiabudi_police")
    _, out_of_scope, missing = supergraph.partner.ids
    incidents = body["data"]["incidents"]
    for incident, foreigner_id in ((incidents[1], out_of_scope), (incidents[2], missing)):
        foreigner = incident["foreigner"]
        # Only the id the partner itself supplied; nothing Sisada knows.
        assert foreigner is None or (foreigner["id"] == foreigner_id and all(
            foreigner[name] is None for name in SISADA_FIELDS))

    def shape(index: int, foreigner_id: str) -> str:
        incident = json.dumps(incidents[index]).replace(foreigner_id, "ID")
        errors = [json.dumps(e).replace(foreigner_id, "ID") for e in body.get("errors", [])
                  if index in e.get("path", [])]
        incident = incident.replace(f"INC-{index + 1}", "INC")
        return incident.replace(f"incident {index + 1}", "incident") + "".join(errors)

    assert shape(1, out_of_scope) == shape(2, missing)


@pytest.mark.parametrize("router", ROUTERS)
def test_partner_references_names_as_immigration_officer_through_router(
        supergraph: Supergraph, router: str) -> None:
    _, body = _incidents(supergraph, router, "immigration_officer")
    setiabudi, tebet, _ = supergraph.partner.ids
    incidents = body["data"]["incidents"]
    for incident, foreigner_id in ((incidents[0], setiabudi), (incidents[1], tebet)):
        fact = _fact(supergraph.deployment, foreigner_id)
        assert incident["foreigner"]["fullName"] == fact["full_name"]
        assert incident["foreigner"]["redactedFields"] == []
    foreigner = incidents[2]["foreigner"]
    assert foreigner is None or all(foreigner[name] is None for name in SISADA_FIELDS)


@pytest.mark.parametrize("router", ROUTERS)
def test_partner_own_me_and_sisada_me_side_by_side_as_police(
        supergraph: Supergraph, router: str) -> None:
    body = supergraph.post(router, "{ me { badge } sisadaMe { role area } }",
                           "setiabudi_police").json()
    assert "errors" not in body, body
    assert body["data"] == {"me": {"badge": "POL-0001"},
                            "sisadaMe": {"role": "police", "area": SETIABUDI}}


@pytest.mark.parametrize("router", ROUTERS)
def test_user_token_reaches_sisada_only_through_router(
        supergraph: Supergraph, router: str) -> None:
    before = len(supergraph.partner.requests())
    body = supergraph.post(router, PARTNER_QUERY, "setiabudi_police").json()
    assert body["data"]["incidents"]
    seen = supergraph.partner.requests()[before:]
    assert seen, "the partner was asked"
    assert [r["authorization"] for r in seen] == [False] * len(seen)


# -- Sisada's refusals keep their codes --------------------------------------------------------


@pytest.mark.parametrize("router", ROUTERS)
def test_forbidden_root_field_keeps_its_code_as_police_through_router(
        supergraph: Supergraph, router: str) -> None:
    query = '{ checkForeigner(documentNumber: "AB1234567") { registered } }'
    body = supergraph.post(router, query, "setiabudi_police").json()
    assert _codes(body) == ["FORBIDDEN"]


@pytest.mark.parametrize("router", ROUTERS)
def test_bad_token_is_unauthenticated_through_router(
        supergraph: Supergraph, router: str) -> None:
    body = supergraph.post(router, "{ sisadaMe { role } }", token="not-a-jwt").json()
    assert _codes(body) == ["UNAUTHENTICATED"]
    assert (body.get("data") or {}).get("sisadaMe") is None


# -- rate limits behind a trusted router -------------------------------------------------------


@contextlib.contextmanager
def _limited_gateway(deployment: Deployment, tmp: Path) -> Iterator[str]:
    """A real `sisada serve` with low limits that believes X-Forwarded-For from the
    routers' address only (SISADA_TRUSTED_PROXIES)."""
    port = free_port()
    settings = deployment.settings
    env = {"SISADA_DATABASE_URL": deployment.database_url, "SISADA_JWT_SECRET": TEST_SECRET,
           "SISADA_DEV_KEY_FILE": str(tmp / "dev-key"), "SISADA_TRUSTED_PROXIES": "127.0.0.1",
           "SISADA_RATE_LIMIT_PER_IP": "3/minute",
           "SISADA_RATE_LIMIT_PER_PRINCIPAL": "3/minute", "SISADA_LOG_LEVEL": "WARNING"}
    for name in ("registry_url", "registry_token"):
        value = getattr(settings, name, None)
        if value:
            env[f"SISADA_{name.upper()}"] = str(value)
    removed = ("SISADA_REDIS_URL", "SISADA_FORWARDED_ALLOW_IPS", "FORWARDED_ALLOW_IPS")
    base = {k: v for k, v in os.environ.items() if k not in removed}
    log = tmp / "limited-gateway.log"
    with log.open("wb") as out:
        process = subprocess.Popen([str(SISADA), "serve", "--port", str(port)],
                                   env={**base, **env}, cwd=tmp, stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        _wait_for_port(process, port, "limited gateway", log)
        yield f"http://127.0.0.1:{port}/graphql"
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.fixture(scope="module")
def limited_routers(supergraph: Supergraph, tmp_path_factory: pytest.TempPathFactory
                    ) -> Iterator[dict[str, str]]:
    tmp = tmp_path_factory.mktemp(f"limited-{supergraph.deployment.backend}")
    with _limited_gateway(supergraph.deployment, tmp) as sisada_url, _routers(
            sisada_url, supergraph.partner, None, tmp) as routers:
        yield routers


def _from(address: str, url: str, query: str, token: str | None = None,
          claimed: str | None = None) -> httpx.Response:
    """A request from a client at `address` (any 127.0.0.0/8 address is local on Linux),
    optionally claiming another address in its own X-Forwarded-For."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    if claimed:
        headers["x-forwarded-for"] = claimed
    with httpx.Client(transport=httpx.HTTPTransport(local_address=address),
                      timeout=30) as client:
        return client.post(url, json={"query": query}, headers=headers)


@pytest.mark.parametrize("router", ROUTERS)
def test_anonymous_clients_behind_router_have_their_own_ip_limits_as_public(
        limited_routers: dict[str, str], router: str) -> None:
    url, query = limited_routers[router], "{ sisadaMe { role } }"
    # Each router has clients of its own: the limited gateway behind them is shared.
    one, two = CLIENTS[router]
    first = [_from(one, url, query).json() for _ in range(3)]
    assert all("errors" not in body for body in first), first
    assert _codes(_from(one, url, query).json()) == ["RATE_LIMITED"]
    # Claiming another address does not help: the router writes the header, not the client.
    assert _codes(_from(one, url, query, claimed="198.51.100.7").json()) == ["RATE_LIMITED"]
    # Another client behind the same router still has its own budget.
    assert "errors" not in _from(two, url, query).json()


@pytest.mark.parametrize("router", ROUTERS)
def test_per_principal_limit_follows_the_token_through_router_as_police(
        supergraph: Supergraph, limited_routers: dict[str, str], router: str) -> None:
    url, query = limited_routers[router], "{ sisadaMe { role } }"
    deployment = supergraph.deployment
    tag = f"{router}-{deployment.backend}-{time.monotonic_ns()}"
    mine = _police(deployment, tag, 1)
    other = _police(deployment, tag, 2)
    # A fresh client address for every request: only the principal's count can refuse.
    block = 1 if router == "apollo" else 2
    served = [_from(f"127.0.{block}.{n}", url, query, mine).json() for n in range(1, 4)]
    assert all("errors" not in body for body in served), served
    assert _codes(_from(f"127.0.{block}.4", url, query, mine).json()) == ["RATE_LIMITED"]
    assert "errors" not in _from(f"127.0.{block}.5", url, query, other).json()


def _police(deployment: Deployment, tag: str, n: int) -> str:
    from gateway.auth import mint_dev_token

    return mint_dev_token(deployment.settings, "police", area=SETIABUDI,
                          subject=f"test:police:{tag}:{n}")
