"""Identity comes live from the central registry, a real process (issue 9, section 1).

What the registry received is read from its own record of every request: an upstream
request carries only the identity fields the caller may read and the query selects, the
gateway's service credential (never the caller's token) and a request id; a caller who may
read no identity never reaches the registry; a page costs one upstream request whatever
its length. Look-ups by document number and by name go to the registry and then through
the local row scope. The registry killed and restarted under a running gateway: identity
is null with UPSTREAM_UNAVAILABLE at each path, every local field still resolves, and the
gateway recovers by itself.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import REGISTRY_TOKEN, Deployment, ServerThread, purpose_headers
from registry_process import RegistryProcess

from gateway.app import create_app

NAMES_PAGE = ("query($n: Int!) { foreigners(first: $n) { nodes { id fullName passportNumber "
              "nationality permitType residence { areaCode } } } }")


def _entities_requests(deployment: Deployment) -> list[dict[str, Any]]:
    return [r for r in deployment.registry.requests() if "_entities" in r["query"]]


def _errors(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


def test_police_list_never_reaches_the_registry(deployment: Deployment) -> None:
    deployment.registry.clear_requests()
    body = deployment.gql(NAMES_PAGE, "setiabudi_police", n=50)
    assert "errors" not in body
    assert body["data"]["foreigners"]["nodes"]
    assert all(n["fullName"] is None for n in body["data"]["foreigners"]["nodes"])
    assert deployment.registry.requests() == []


@pytest.mark.parametrize("persona", ["setiabudi_military", "tebet_district", "public",
                                     "rt_head", "auditor"])
def test_no_other_role_reaches_the_registry(deployment: Deployment, persona: str) -> None:
    deployment.registry.clear_requests()
    deployment.post(NAMES_PAGE, persona, {"n": 20})
    deployment.post('{ checkForeigner(documentNumber: "AB12345") { registered } '
                    'foreigners(filter: {name: "an"}) { totalCount } }', persona)
    assert deployment.registry.requests() == []


@pytest.mark.parametrize("rows", [1, 10, 200])
def test_a_page_of_names_is_one_upstream_request_as_immigration_officer(
    deployment: Deployment, rows: int,
) -> None:
    deployment.registry.clear_requests()
    body = deployment.gql(NAMES_PAGE, "immigration_officer", n=rows)
    nodes = body["data"]["foreigners"]["nodes"]
    assert len(nodes) == rows and all(n["fullName"] for n in nodes)
    sent = deployment.registry.requests()
    assert len(sent) == 1
    representations = sent[0]["variables"]["representations"]
    assert {r["id"] for r in representations} == {n["id"] for n in nodes}


def test_upstream_request_selects_only_what_the_query_selects_as_immigration_officer(
    deployment: Deployment,
) -> None:
    deployment.registry.clear_requests()
    deployment.gql("{ foreigners(first: 5) { nodes { id fullName nationality } } }",
                   "immigration_officer")
    (sent,) = deployment.registry.requests()
    assert "fullName" in sent["query"]
    for other in ("passportNumber", "birthDate", "photoUrl", "PermitDocument", "number",
                  "sponsorName"):
        assert other not in sent["query"]
    assert {r["__typename"] for r in sent["variables"]["representations"]} == {"Person"}


def test_upstream_request_carries_the_service_credential_never_the_callers_token(
    deployment: Deployment,
) -> None:
    deployment.registry.clear_requests()
    caller = deployment.token("immigration_officer")
    deployment.gql("{ foreigners(first: 3) { nodes { fullName } } }", "immigration_officer")
    (sent,) = deployment.registry.requests()
    assert sent["authorization"] == f"Bearer {REGISTRY_TOKEN}"
    assert caller not in str(sent)
    assert sent["request_id"] and len(sent["request_id"]) >= 16


def test_nested_references_are_one_request_per_level_as_immigration_supervisor(
    deployment: Deployment,
) -> None:
    deployment.registry.clear_requests()
    body = deployment.gql("{ reports(first: 200) { nodes { id foreigner { fullName } } } }",
                          "immigration_supervisor")
    assert "errors" not in body
    named = [n for n in body["data"]["reports"]["nodes"] if n["foreigner"]]
    assert len(named) >= 5 and all(n["foreigner"]["fullName"] for n in named)
    (sent,) = deployment.registry.requests()
    assert {r["id"] for r in sent["variables"]["representations"]} == {
        str(r["foreigner_id"]) for r in deployment.facts.reports
        if str(r["id"]) in {n["id"] for n in named}}


def test_entities_are_one_upstream_request_as_immigration_supervisor(
    deployment: Deployment,
) -> None:
    deployment.registry.clear_requests()
    wanted = deployment.facts.foreigners[:300]
    body = deployment.gql(
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on Foreigner { id "
        "photoUrl } } }", "immigration_supervisor",
        r=[{"__typename": "Foreigner", "id": str(f["id"])} for f in wanted])
    assert "errors" not in body
    assert [e["photoUrl"] for e in body["data"]["_entities"]] == [f["photo_url"]
                                                                 for f in wanted]
    (sent,) = deployment.registry.requests()
    assert "photoUrl" in sent["query"] and "fullName" not in sent["query"]


def test_permits_identity_is_one_request_for_the_whole_page_as_immigration_officer(
    deployment: Deployment,
) -> None:
    deployment.registry.clear_requests()
    body = deployment.gql("{ foreigners(first: 40) { nodes { permitNumber permits { number "
                          "sponsorName permitType } } } }", "immigration_officer")
    nodes = body["data"]["foreigners"]["nodes"]
    numbers = {p["number"] for n in nodes for p in n["permits"]}
    assert all(n["permitNumber"] in numbers for n in nodes if n["permitNumber"])
    permits = {n for f in deployment.facts.permit_numbers.values() for n in f}
    assert numbers <= permits
    # One request per level: the page (with each permit in force), then its permits.
    assert len(deployment.registry.requests()) == 2


def test_check_by_document_goes_through_the_registry_then_the_scope(
    deployment: Deployment,
) -> None:
    facts = deployment.facts
    inside = next(f for f in facts.foreigners if f["id"] in facts.in_area("31.74.02"))
    check = ("query($n: String!) { checkForeigner(documentNumber: $n) { registered "
             "foreigner { id fullName } } }")
    deployment.registry.clear_requests()
    body = deployment.gql(check, "immigration_officer", n=inside["passport_number"])
    assert body["data"]["checkForeigner"] == {
        "registered": True,
        "foreigner": {"id": str(inside["id"]), "fullName": inside["full_name"]}}
    lookups = [r for r in deployment.registry.requests() if "personsByDocument" in r["query"]]
    assert lookups and lookups[0]["variables"] == {"number": inside["passport_number"]}
    # Another office's officer: the registry knows the holder, the scope does not.
    other = deployment.gql(check, "other_office_officer", n=inside["passport_number"])
    assert other["data"]["checkForeigner"] == {"registered": False, "foreigner": None}
    assert inside["full_name"] not in str(other)


def test_name_filter_goes_through_the_registry_then_the_scope_as_immigration_officer(
    deployment: Deployment,
) -> None:
    someone = deployment.facts.foreigners[7]
    family = max(someone["full_name"].split(), key=len)
    query = ("query($q: String!) { foreigners(first: 1000, filter: {name: $q}) "
             "{ totalCount nodes { id fullName } } }")
    body = deployment.gql(query, "immigration_officer", q=family.lower())
    nodes = body["data"]["foreigners"]["nodes"]
    expected = {str(f["id"]) for f in deployment.facts.foreigners
                if family.lower() in f["full_name"].lower()}
    assert {n["id"] for n in nodes} == expected
    assert body["data"]["foreigners"]["totalCount"] == len(expected)
    elsewhere = deployment.gql(query, "other_office_officer", q=family.lower())
    assert elsewhere["data"]["foreigners"] == {"totalCount": 0, "nodes": []}


# -- the registry fails under a running gateway ------------------------------------------


@pytest.fixture()
def fragile(deployment: Deployment, tmp_path: Path) -> Iterator[tuple[str, RegistryProcess]]:
    """A gateway of its own over the deployment's data, with its own registry process (so
    killing it leaves the shared one alone) and a short circuit-breaker pause."""
    with RegistryProcess(deployment.registry_database_url, REGISTRY_TOKEN,
                         tmp_path / "requests.jsonl") as registry:
        settings = deployment.settings_with(
            tmp_path, registry_url=registry.url, registry_breaker_failures=2,
            registry_breaker_reset_seconds=0.5, registry_attempts=2,
            registry_total_timeout_seconds=2.0)
        with ServerThread(create_app(settings)) as base_url:
            yield base_url, registry


def _post(base_url: str, deployment: Deployment, query: str) -> httpx.Response:
    token = deployment.token("immigration_officer")
    return httpx.post(f"{base_url}/graphql", json={"query": query}, timeout=30,
                      headers={"authorization": f"Bearer {token}", **purpose_headers()})


def test_registry_down_nulls_identity_with_one_error_per_path_as_immigration_officer(
    deployment: Deployment, fragile: tuple[str, RegistryProcess],
) -> None:
    base_url, registry = fragile
    query = "{ foreigners(first: 5) { nodes { id fullName passportNumber nationality } } }"
    assert "errors" not in _post(base_url, deployment, query).json()
    registry.kill()
    for _ in range(3):  # through retries, then with the circuit open
        response = _post(base_url, deployment, query)
        assert response.status_code == 200
        body = response.json()
        nodes = body["data"]["foreigners"]["nodes"]
        assert len(nodes) == 5 and all(n["nationality"] and n["id"] for n in nodes)
        assert all(n["fullName"] is None and n["passportNumber"] is None for n in nodes)
        assert _errors(body) == ["UPSTREAM_UNAVAILABLE"] * 10
        paths = {tuple(e["path"]) for e in body["errors"]}
        assert paths == {("foreigners", "nodes", i, f) for i in range(5)
                         for f in ("fullName", "passportNumber")}
        for name in (f["full_name"] for f in deployment.facts.foreigners):
            assert name.encode() not in response.content
    ready = httpx.get(f"{base_url}/readyz", timeout=10)
    assert ready.status_code == 200
    assert ready.json()["registry"] in ("down", "open")


def test_gateway_recovers_by_itself_when_the_registry_returns_as_immigration_officer(
    deployment: Deployment, fragile: tuple[str, RegistryProcess],
) -> None:
    base_url, registry = fragile
    query = "{ foreigners(first: 3) { nodes { id fullName } } }"
    registry.kill()
    assert _errors(_post(base_url, deployment, query).json()) == ["UPSTREAM_UNAVAILABLE"] * 3
    registry.start()
    deadline = time.monotonic() + 15
    while True:
        body = _post(base_url, deployment, query).json()
        if "errors" not in body:
            break
        assert time.monotonic() < deadline, body
        time.sleep(0.2)
    assert all(n["fullName"] for n in body["data"]["foreigners"]["nodes"])
    assert httpx.get(f"{base_url}/readyz", timeout=10).json()["registry"] == "up"


def test_lookups_fail_clearly_while_the_registry_is_down_as_immigration_officer(
    deployment: Deployment, fragile: tuple[str, RegistryProcess],
) -> None:
    base_url, registry = fragile
    registry.kill()
    body = _post(base_url, deployment, '{ checkForeigner(documentNumber: "AB12345") '
                 '{ registered } areas(level: KECAMATAN) { code } }').json()
    assert _errors(body) == ["UPSTREAM_UNAVAILABLE"]
    assert body["data"]["checkForeigner"] is None
    assert body["data"]["areas"]  # the office's own data still answers


def test_skipped_and_other_type_fields_are_not_asked_for_as_immigration_officer(
    deployment: Deployment,
) -> None:
    deployment.registry.clear_requests()
    body = deployment.gql(
        "query($no: Boolean!, $r: [_Any!]!) { foreigners(first: 4) { nodes { id "
        "fullName @skip(if: true) passportNumber @include(if: $no) ...F } } "
        "_entities(representations: $r) { ... on Area { name } ... on Foreigner { id } } } "
        "fragment F on Foreigner { photoUrl @include(if: $no) }",
        "immigration_officer", no=False,
        r=[{"__typename": "Foreigner", "id": str(deployment.facts.foreigners[0]["id"])}])
    assert "errors" not in body
    # Nothing selected is identity once the directives are applied: no upstream request.
    assert deployment.registry.requests() == []


def test_fragments_on_the_entity_union_still_get_identity_as_immigration_officer(
    deployment: Deployment,
) -> None:
    someone = deployment.facts.foreigners[3]
    body = deployment.gql(
        "query($id: ID!) { foreigner(id: $id) { id redactedFields "
        "... on _Entity { ... on Foreigner { fullName birthDate } } } }",
        "immigration_officer", id=str(someone["id"]))
    assert body["data"]["foreigner"]["fullName"] == someone["full_name"]
    assert body["data"]["foreigner"]["birthDate"] == someone["birth_date"].isoformat()


def test_aliases_selecting_different_identity_share_one_request_as_immigration_supervisor(
    deployment: Deployment,
) -> None:
    subsets = ["fullName", "passportNumber", "birthDate photoUrl", "permitNumber",
               "fullName permits { number }", "photoUrl permits { sponsorName }"]
    aliases = " ".join(
        f"a{i}: foreigner(id: \"{f['id']}\") {{ id {subsets[i % len(subsets)]} }}"
        for i, f in enumerate(deployment.facts.foreigners[:24]))
    deployment.registry.clear_requests()
    body = deployment.gql(f"{{ {aliases} }}", "immigration_supervisor")
    assert "errors" not in body
    assert body["data"]["a0"]["fullName"] == deployment.facts.foreigners[0]["full_name"]
    # The root level (every alias's person and permit in force) and the permits below it:
    # one request each at most (they may share one), never one per alias.
    assert len(deployment.registry.requests()) <= 2
