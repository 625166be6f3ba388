"""No request can hold the gateway (SPEC rule 9, issue 8 §1), over real HTTP: the cost of a
document counts the rows its lists can return, a batch is one budget, and execution stops
at a field cap or deadline checked while it runs. Times are the benchmark's business
(bench/worst_case.py); these tests assert codes, messages and raw bytes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import Deployment, ServerThread

from gateway.app import create_app

# The review's document: 172 bytes, cost 13 and depth 12 under the old limits, ~950,000
# resolved fields and 37 s of CPU as a district official.
FAN_OUT = ("{ foreigners(first: 1000) { nodes { residence { area { parent { parent { "
           "children { children { code name foreignerCount } } } } } } } } }")

FULL_LIST = """{ foreigners(first: 1000) { totalCount pageInfo { endCursor hasNextPage } nodes {
  id fullName passportNumber birthDate nationality sex ageBand permitType permitStatus
  permitExpiresOn sponsorType residence { streetAddress areaCode latitude longitude
  area { code name level } } permits { number permitType status issuedOn expiresOn
  sponsorType } } } }"""

DASHBOARD = """{ areas(level: KECAMATAN) { code name foreignerCount
  byNationality { key count } byPermitType { key count } }
  activities(first: 200) { nodes { id kind occurredAt areaCode latitude longitude
  officer { id name } } }
  reports(first: 200) { nodes { id category text areaCode status createdAt } } }"""


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors") or []]


@pytest.mark.parametrize("persona", ["tebet_district", "setiabudi_police", "immigration_officer"])
def test_the_reviews_fan_out_is_refused_before_it_runs(deployment: Deployment,
                                                       persona: str) -> None:
    body = deployment.gql(FAN_OUT, persona)
    assert codes(body) == ["QUERY_TOO_COMPLEX"]
    assert body["data"] is None
    message = body["errors"][0]["message"]
    estimate, limit = map(int, re.findall(r"\d+", message)[:2])
    assert estimate > 5 * limit  # ~2.5 million
    assert limit == deployment.settings.max_query_cost


def test_fan_out_through_aliases_and_fragments_is_refused(deployment: Deployment) -> None:
    query = ("{ a: areas { ...Down } b: areas { ...Down } } "
             "fragment Down on Area { children { children { code foreignerCount } } }")
    body = deployment.gql(query, "immigration_supervisor")
    assert codes(body) == ["QUERY_TOO_COMPLEX"]


def test_introspection_under_an_unknown_field_is_a_validation_error(
        deployment: Deployment) -> None:
    # The estimate walks unknown fields too; `__typename` below one has no parent type.
    body = deployment.gql("{ nope { __typename } }", "public")
    assert set(codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}


def test_a_frontends_full_1000_row_list_passes(deployment: Deployment) -> None:
    body = deployment.gql(FULL_LIST, "immigration_officer")
    assert "errors" not in body
    assert len(body["data"]["foreigners"]["nodes"]) > 500


def test_the_supervisors_dashboard_passes(deployment: Deployment) -> None:
    body = deployment.gql(DASHBOARD, "immigration_supervisor")
    assert "errors" not in body
    assert len(body["data"]["areas"]) == 10


def test_a_batch_spends_one_budget(deployment: Deployment) -> None:
    # Each operation alone is within the limit; ten together are not.
    one = {"query": "{ foreigners(first: 1000) { nodes { id nationality sex ageBand permitType "
                    "residence { areaCode area { code foreignerCount } } } } }"}
    alone = deployment.gql(one["query"], "immigration_officer")
    assert "errors" not in alone
    response = deployment.client.post(
        f"{deployment.base_url}/graphql", json=[one] * 10,
        headers={"authorization": f"Bearer {deployment.token('immigration_officer')}"})
    assert response.status_code == 200
    results = response.json()
    refused = [r for r in results if codes(r) == ["QUERY_TOO_COMPLEX"]]
    assert refused, "ten heavy operations in one request must not all run"
    assert all("together" in r["errors"][0]["message"] for r in refused)
    assert len(results) - len(refused) < 10


ENTITIES = "query($r: [_Any!]!) { _entities(representations: $r) { __typename } }"


def test_too_many_representations_are_refused_whole(deployment: Deployment) -> None:
    # A second review: 60,000 bad entries, one error each, held the gateway 5 s.
    response = deployment.post(ENTITIES, "public", {"r": [1] * 5001})
    body = response.json()
    assert codes(body) == ["BAD_USER_INPUT"]
    assert "at most 5000 representations" in body["errors"][0]["message"]
    assert body["data"] is None


def test_representations_shared_by_aliases_count_for_each(deployment: Deployment) -> None:
    aliased = ("query($r: [_Any!]!) { "
               + " ".join(f"a{i}: _entities(representations: $r) {{ __typename }}"
                          for i in range(30)) + " }")
    body = deployment.post(aliased, "public", {"r": [1] * 5000}).json()
    assert codes(body) == ["QUERY_TOO_COMPLEX"]
    assert body["data"] is None


@pytest.fixture(scope="module")
def capped_server(deployment: Deployment, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[str]:
    settings = deployment.settings_with(tmp_path_factory.mktemp("capped"),
                             max_response_fields=500)
    with ServerThread(create_app(settings)) as base_url:
        yield base_url


def test_a_response_over_the_field_cap_is_stopped(deployment: Deployment,
                                                  capped_server: str) -> None:
    token = deployment.token("immigration_officer")
    response = httpx.post(
        f"{capped_server}/graphql",
        json={"query": "{ foreigners(first: 1000) { nodes { id fullName nationality } } }"},
        headers={"authorization": f"Bearer {token}"}, timeout=60)
    assert response.status_code == 200
    body = response.json()
    assert codes(body) == ["RESPONSE_TOO_LARGE"]
    assert body["data"] is None
    # Nothing of the partial result left: no row's name, no nationality.
    raw = response.content
    assert b"fullName" not in raw and b"nationality" not in raw
    for foreigner in deployment.facts.foreigners[:50]:
        assert foreigner["full_name"].encode() not in raw
    # The gateway goes on serving, and a small query still fits.
    small = httpx.post(f"{capped_server}/graphql", json={"query": "{ sisadaMe { role } }"},
                       headers={"authorization": f"Bearer {token}"})
    assert small.json() == {"data": {"sisadaMe": {"role": "immigration_officer"}}}


def test_execution_is_stopped_at_the_deadline(deployment: Deployment,
                                              tmp_path_factory: pytest.TempPathFactory) -> None:
    settings = deployment.settings_with(tmp_path_factory.mktemp("deadline"),
                             request_timeout_seconds=0.05)
    query = ("{ a: foreigners(first: 1000) { nodes { id nationality sex ageBand permitType "
             "permitStatus permitExpiresOn sponsorType residence { streetAddress areaCode "
             "area { code name level } } } } b: areas(level: RT) { code name level } }")
    with ServerThread(create_app(settings)) as base_url:
        response = httpx.post(
            f"{base_url}/graphql", json={"query": query},
            headers={"authorization": f"Bearer {deployment.token('immigration_officer')}"},
            timeout=60)
        assert response.status_code == 200
        body = response.json()
        assert codes(body) == ["TIMEOUT"]
        assert body["data"] is None
        assert b"streetAddress" not in response.content
        assert httpx.get(f"{base_url}/healthz").status_code == 200
