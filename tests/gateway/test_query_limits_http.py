"""Query limits and schema exposure over real HTTP: real frontend queries pass, floods get
a clear error code and cost the server one parse."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Deployment, ServerThread

from gateway.app import create_app

FRONTEND_LIST = """
query List($after: String) {
  foreigners(first: 50, after: $after, filter: {permitStatus: ACTIVE}) {
    totalCount pageInfo { endCursor hasNextPage }
    nodes { id fullName nationality sex ageBand permitType permitStatus permitExpiresOn
            sponsorType residence { streetAddress areaCode area { code name level } } }
  }
}"""


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


def test_a_real_frontend_query_is_within_every_limit(deployment: Deployment) -> None:
    body = deployment.gql(FRONTEND_LIST, "immigration_officer")
    assert "errors" not in body
    assert len(body["data"]["foreigners"]["nodes"]) == 50


def test_deep_query_is_rejected(deployment: Deployment) -> None:
    deep = "{ area(code: \"31.74.02\") { " + "children { " * 13 + "code" + " }" * 14 + " }"
    body = deployment.gql(deep, "immigration_officer")
    assert codes(body) == ["QUERY_TOO_DEEP"]
    assert body["data"] is None


def test_alias_flood_is_rejected(deployment: Deployment) -> None:
    flood = "{ " + " ".join(f"a{i}: sisadaMe {{ role }}" for i in range(31)) + " }"
    body = deployment.gql(flood, "public")
    assert codes(body) == ["TOO_MANY_ALIASES"]


def test_fragment_multiplication_is_counted_as_it_would_execute(deployment: Deployment) -> None:
    # Five fragments of five spreads each: a few hundred bytes that would select 5^5 fields.
    fragments = ["fragment F0 on Area { code }"]
    fragments += [f"fragment F{i} on Area {{ {' '.join([f'...F{i - 1}'] * 5)} }}"
                  for i in range(1, 6)]
    query = "{ areas { ...F5 } } " + " ".join(fragments)
    assert len(query) < 600
    body = deployment.gql(query, "public")
    assert codes(body) == ["QUERY_TOO_COMPLEX"]


def test_token_flood_is_rejected_while_parsing(deployment: Deployment) -> None:
    flood = "{ sisadaMe { " + "a " * 4500 + "} }"  # 4,500 tokens in 9 KB
    body = deployment.gql(flood, "public")
    assert codes(body) == ["GRAPHQL_PARSE_FAILED"]
    assert "tokens" in body["errors"][0]["message"]


def test_oversized_document_is_rejected_before_parsing(deployment: Deployment) -> None:
    padded = "# " + "x" * 21_000 + "\n{ sisadaMe { role } }"
    body = deployment.gql(padded, "public")
    assert codes(body) == ["DOCUMENT_TOO_LARGE"]
    assert body["data"] is None


def test_batch_within_limit_runs_every_operation(deployment: Deployment) -> None:
    batch = [{"query": "{ sisadaMe { role } }"}] * 3
    response = deployment.client.post(f"{deployment.base_url}/graphql", json=batch)
    assert response.status_code == 200
    assert response.json() == [{"data": {"sisadaMe": {"role": "public"}}}] * 3


def test_batch_flood_is_rejected(deployment: Deployment) -> None:
    batch = [{"query": "{ sisadaMe { role } }"}] * 11
    response = deployment.client.post(f"{deployment.base_url}/graphql", json=batch)
    assert 400 <= response.status_code < 500


def test_page_size_is_bounded(deployment: Deployment) -> None:
    body = deployment.gql("{ foreigners(first: 1001) { totalCount } }", "immigration_officer")
    assert codes(body) == ["BAD_USER_INPUT"]


# -- schema exposure ------------------------------------------------------------

TYPO = "{ foreigners { nodes { nationalty } } }"


@pytest.mark.parametrize("persona", ["setiabudi_police", "tebet_district", "public"])
def test_no_field_suggestions_outside_immigration(deployment: Deployment, persona: str) -> None:
    body = deployment.gql(TYPO, persona)
    assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "Did you mean" not in body["errors"][0]["message"]
    assert "nationality" not in body["errors"][0]["message"]


def test_field_suggestions_for_immigration(deployment: Deployment) -> None:
    body = deployment.gql(TYPO, "immigration_officer")
    assert "Did you mean 'nationality'?" in body["errors"][0]["message"]


INTROSPECT = "{ __schema { queryType { name } } }"


def test_slow_request_is_stopped_with_timeout(deployment: Deployment,
                                              tmp_path_factory: pytest.TempPathFactory) -> None:
    settings = deployment.settings_with(tmp_path_factory.mktemp("timeout"),
                             request_timeout_seconds=0.001)
    with ServerThread(create_app(settings)) as base_url:
        response = httpx.post(
            f"{base_url}/graphql", json={"query": "{ foreigners(first: 1000) { nodes { id "
                                                  "residence { area { foreignerCount } } } } }"},
            headers={"authorization": f"Bearer {deployment.token('immigration_officer')}"})
        assert response.status_code == 200
        assert codes(response.json()) == ["TIMEOUT"]
        # The server goes on serving.
        assert httpx.get(f"{base_url}/healthz").status_code == 200


@pytest.fixture(scope="module")
def exposure_servers(deployment: Deployment, tmp_path_factory: pytest.TempPathFactory
                     ) -> Iterator[dict[str, str]]:
    tmp: Path = tmp_path_factory.mktemp("exposure")
    off = create_app(deployment.settings_with(tmp, introspection="off"))
    auth = create_app(deployment.settings_with(tmp,
                                    introspection="authenticated"))
    with ServerThread(off) as off_url, ServerThread(auth) as auth_url:
        yield {"off": off_url, "authenticated": auth_url}


def _introspect(base_url: str, token: str | None) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(f"{base_url}/graphql", json={"query": INTROSPECT}, headers=headers)
    assert response.status_code == 200
    return response.json()


def test_introspection_is_on_in_development(deployment: Deployment) -> None:
    body = deployment.gql(INTROSPECT, "public")
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


def test_introspection_off(deployment: Deployment, exposure_servers: dict[str, str]) -> None:
    for token in (None, deployment.token("immigration_officer")):
        body = _introspect(exposure_servers["off"], token)
        # One error per introspection field asked for (__schema, then queryType).
        assert set(codes(body)) == {"INTROSPECTION_DISABLED"}
        assert body["data"] is None


def test_introspection_for_authenticated_callers_only(
    deployment: Deployment, exposure_servers: dict[str, str]
) -> None:
    assert set(codes(_introspect(exposure_servers["authenticated"], None))) == {
        "INTROSPECTION_DISABLED"}
    body = _introspect(exposure_servers["authenticated"], deployment.token("setiabudi_police"))
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


def test_graphiql_introspection_query_passes_the_limits(deployment: Deployment) -> None:
    from graphql import get_introspection_query

    body = deployment.gql(get_introspection_query(descriptions=True), "public")
    assert "errors" not in body
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


def test_deep_introspection_is_rejected(deployment: Deployment) -> None:
    deep = "{ __schema { types { " + "fields { type { " * 11 + "name" + " } }" * 11 + " } } }"
    body = deployment.gql(deep, "public")
    # graphql-core's own introspection-depth rule reports it too.
    assert codes(body)[0] == "QUERY_TOO_DEEP"
    assert body["data"] is None
