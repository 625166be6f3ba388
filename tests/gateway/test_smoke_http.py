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
    body = deployment.gql("{ me { role area officerId } }", "setiabudi_police")
    assert body["data"]["me"] == {"role": "police", "area": "31.74.02", "officerId": None}
