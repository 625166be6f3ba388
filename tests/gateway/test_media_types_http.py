"""`application/json` and `application/graphql-response+json` over real HTTP: request
errors are 400 without `data` for clients of the newer media type, 200 for the older."""

from __future__ import annotations

from typing import Any

import httpx
from conftest import Deployment

NEW = "application/graphql-response+json"
WRONG_VARIABLE = {"query": "query($first: Int!) { foreigners(first: $first) { totalCount } }",
                  "variables": {"first": "many"}}


def post(d: Deployment, body: dict[str, Any], accept: str, persona: str = "public"
         ) -> httpx.Response:
    headers = {"accept": accept}
    token = d.token(persona)
    if token:
        headers["authorization"] = f"Bearer {token}"
    return d.client.post(f"{d.base_url}/graphql", json=body, headers=headers)


def test_wrong_variable_type_is_400_for_graphql_response_json(deployment: Deployment) -> None:
    response = post(deployment, WRONG_VARIABLE, NEW, "immigration_officer")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(NEW)
    body = response.json()
    assert "data" not in body
    assert [e["extensions"]["code"] for e in body["errors"]] == ["GRAPHQL_VALIDATION_FAILED"]


def test_wrong_variable_type_is_200_for_application_json(deployment: Deployment) -> None:
    response = post(deployment, WRONG_VARIABLE, "application/json", "immigration_officer")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["data"] is None


def test_syntax_error_is_400_for_graphql_response_json(deployment: Deployment) -> None:
    response = post(deployment, {"query": "{ sisadaMe { role "}, NEW)
    assert response.status_code == 400
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == [
        "GRAPHQL_PARSE_FAILED"]


def test_field_errors_stay_200_for_graphql_response_json(deployment: Deployment) -> None:
    # A FORBIDDEN root field is an execution error: the request ran, data is partial.
    response = post(deployment, {"query": "{ sisadaMe { role } foreigners { totalCount } }"}, NEW)
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"sisadaMe": {"role": "public"}, "foreigners": None}
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]


def test_the_client_preference_decides(deployment: Deployment) -> None:
    prefers_old = post(deployment, {"query": "{ sisadaMe { role } }"},
                       f"{NEW};q=0.5, application/json")
    assert prefers_old.headers["content-type"].startswith("application/json")
    prefers_new = post(deployment, {"query": "{ sisadaMe { role } }"},
                       f"application/json;q=0.9, {NEW}")
    assert prefers_new.headers["content-type"].startswith(NEW)
    assert prefers_new.json() == {"data": {"sisadaMe": {"role": "public"}}}
