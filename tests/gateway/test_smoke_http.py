"""The server answers over real HTTP: health, readiness, GraphiQL, GET and POST."""

from __future__ import annotations

from conftest import Deployment


def test_healthz(deployment: Deployment) -> None:
    response = deployment.client.get(f"{deployment.base_url}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_checks_the_database(deployment: Deployment) -> None:
    response = deployment.client.get(f"{deployment.base_url}/readyz")
    assert response.status_code == 200
    assert response.json()["database"] == "up"


def test_me_as_police(deployment: Deployment) -> None:
    body = deployment.gql("{ sisadaMe { role area officerId } }", "setiabudi_police")
    assert body["data"]["sisadaMe"] == {"role": "police", "area": "31.74.02", "officerId": None}


def test_graphiql_is_served_from_local_assets(deployment: Deployment) -> None:
    page = deployment.client.get(f"{deployment.base_url}/graphiql")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/graphiql-static/graphiql.min.js" in page.text
    # Nothing from a CDN: every script and stylesheet is local.
    assert 'src="http' not in page.text and 'href="http' not in page.text
    script = deployment.client.get(f"{deployment.base_url}/graphiql-static/graphiql.min.js")
    assert script.status_code == 200 and len(script.content) > 100_000


def test_query_over_get(deployment: Deployment) -> None:
    response = deployment.client.get(f"{deployment.base_url}/graphql",
                                      params={"query": "{ sisadaMe { role } }"})
    assert response.status_code == 200
    assert response.json() == {"data": {"sisadaMe": {"role": "public"}}}


def test_invalid_document_has_a_code(deployment: Deployment) -> None:
    body = deployment.gql("{ nosuchfield }", "public")
    assert [e["extensions"]["code"] for e in body["errors"]] == ["GRAPHQL_VALIDATION_FAILED"]


def test_bad_token_is_401_not_public(deployment: Deployment) -> None:
    response = deployment.post("{ sisadaMe { role } }", token="not-a-jwt")
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
