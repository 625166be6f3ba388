"""Every /graphql answer carries `Cache-Control: no-store` (hostile review of issue 12, F3).

An answer is the caller's own (its role, jurisdiction, token): a shared cache that kept one
would replay it to the next caller of the URL, outside the policy and the access trail. GET
(an APQ hash makes a short URL) and POST, data and errors, whichever layer answers: the
request hygiene (gateway/http_guards.py), authentication, persisted operations, Strawberry's
own refusals and the GraphQL view. Over real HTTP, on the raw header list.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
import pytest
from conftest import PURPOSE, Deployment, purpose_headers


def graphql(deployment: Deployment, method: str, persona: str = "public", *,
            params: dict[str, str] | None = None, body: Any = None, content: bytes | None = None,
            **headers: str) -> httpx.Response:
    token = deployment.token(persona)
    if token is not None:
        headers.setdefault("authorization", f"Bearer {token}")
    if body is not None:
        content = json.dumps(body).encode()
    if content is not None:
        headers.setdefault("content-type", "application/json")
    return httpx.request(method, f"{deployment.base_url}/graphql", params=params,
                         content=content, headers=headers, timeout=30)


def assert_no_store(response: httpx.Response) -> None:
    assert response.headers.get_list("cache-control") == ["no-store"], (
        response.status_code, dict(response.headers))


def persisted(document: str) -> dict[str, Any]:
    digest = hashlib.sha256(document.encode()).hexdigest()
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


def test_an_identity_answer_over_get_is_never_stored_as_immigration_officer(
        deployment: Deployment) -> None:
    """The review's case: an officer's field check by APQ hash over GET."""
    someone = deployment.facts.foreigners[40]
    document = ("query FieldCheck($d: String!) { checkForeigner(documentNumber: $d) "
                "{ foreigner { fullName passportNumber } } }")
    variables = {"d": someone["passport_number"]}
    registered = graphql(deployment, "POST", "immigration_officer", **purpose_headers(),
                         body={"query": document, "variables": variables,
                               "extensions": persisted(document)})
    assert_no_store(registered)
    by_get = graphql(deployment, "GET", "immigration_officer", **purpose_headers(PURPOSE),
                     params={"extensions": json.dumps(persisted(document)),
                             "variables": json.dumps(variables)})
    assert by_get.status_code == 200
    assert someone["full_name"].encode() in by_get.content
    assert_no_store(by_get)


@pytest.mark.parametrize("persona", ["public", "setiabudi_police"])
def test_data_over_get_and_post_is_never_stored(deployment: Deployment, persona: str) -> None:
    query = "{ areas(level: KECAMATAN) { name foreignerCount } }"
    for response in (graphql(deployment, "GET", persona, params={"query": query}),
                     graphql(deployment, "POST", persona, body={"query": query})):
        assert response.status_code == 200 and b'"areas":[' in response.content
        assert_no_store(response)


def test_graphql_errors_are_never_stored(deployment: Deployment) -> None:
    cases = {
        "a validation error": graphql(deployment, "POST",
                                      body={"query": "{ noSuchField }"}),
        "a forbidden root field": graphql(deployment, "POST",
                                          body={"query": "{ accessTrail { totalCount } }"}),
        "a persisted query not found, over GET": graphql(
            deployment, "GET", params={"extensions": json.dumps(persisted("{ a }"))}),
        "a persisted query not found, over POST": graphql(
            deployment, "POST", body={"extensions": persisted("{ b }")}),
        # Re-labelled for the newer media type, where a request error is a 400.
        "a request error as application/graphql-response+json": graphql(
            deployment, "POST", body={"query": "{"},
            accept="application/graphql-response+json"),
    }
    for case, response in cases.items():
        assert b'"errors":[' in response.content, case
        assert_no_store(response)


def test_http_refusals_are_never_stored(deployment: Deployment) -> None:
    too_large = b'{"query": "' + b"x" * (deployment.settings.max_body_bytes + 1) + b'"}'
    cases = {
        # gateway/http_guards.py
        405: graphql(deployment, "PUT", body={"query": "{ __typename }"}),
        415: graphql(deployment, "POST", content=b"query={__typename}",
                     **{"content-type": "application/x-www-form-urlencoded"}),
        413: graphql(deployment, "POST", content=too_large),
        400: graphql(deployment, "POST", content=b"{not json"),
        # authentication
        401: graphql(deployment, "POST", body={"query": "{ __typename }"},
                     authorization="Bearer not-a-token"),
    }
    for status, response in cases.items():
        assert response.status_code == status, response.text
        assert_no_store(response)
    refusals = [
        # a mutation over GET: Strawberry's refusal, in JSON
        graphql(deployment, "GET", params={"query": "mutation { __typename }"}),
        # a hash that is not its query's: persisted operations
        graphql(deployment, "POST", body={"query": "{ __typename }",
                                          "extensions": persisted("{ other }")}),
    ]
    for response in refusals:
        assert response.status_code in (400, 405), response.text
        assert b'"errors":[' in response.content
        assert_no_store(response)
