"""`redactedFields` over real HTTP: each domain object lists the fields the caller's role
may not read, in band, so hidden is told apart from unknown where `extensions` does not
travel (supergraph routers drop it; tests/federation runs them)."""

from __future__ import annotations

from conftest import SETIABUDI, Deployment

FOREIGNERS = """
{ foreigners(first: 3) { nodes { id fullName redactedFields
    residence { streetAddress redactedFields } } } }
"""
IDENTITY = ["birthDate", "fullName", "passportNumber", "permitNumber", "permits", "photoUrl",
            "residenceHistory"]


def _nodes(deployment: Deployment, persona: str) -> list[dict]:
    body = deployment.gql(FOREIGNERS, persona)
    assert "errors" not in body, body
    nodes = body["data"]["foreigners"]["nodes"]
    assert nodes
    return nodes


def test_redacted_fields_name_the_identity_as_police(deployment: Deployment) -> None:
    for node in _nodes(deployment, "setiabudi_police"):
        assert node["fullName"] is None
        assert node["redactedFields"] == IDENTITY
        assert node["residence"]["redactedFields"] == []


def test_redacted_fields_empty_as_immigration_officer(deployment: Deployment) -> None:
    for node in _nodes(deployment, "immigration_officer"):
        assert node["redactedFields"] == []


def test_redacted_fields_name_the_address_as_district(deployment: Deployment) -> None:
    for node in _nodes(deployment, "setiabudi_district"):
        assert node["residence"]["streetAddress"] is None
        assert node["residence"]["redactedFields"] == ["latitude", "longitude",
                                                       "streetAddress"]


def test_redacted_fields_of_an_area_as_public(deployment: Deployment) -> None:
    body = deployment.gql(f'{{ area(code: "{SETIABUDI}") {{ code redactedFields }} }}')
    assert body["data"]["area"] == {
        "code": SETIABUDI,
        "redactedFields": ["byNationality", "byPermitType", "children", "parent"]}


def test_withheld_locations_and_texts_are_listed_per_record_as_police(
    deployment: Deployment,
) -> None:
    body = deployment.gql("{ reports(first: 100) { nodes { id text areaCode redactedFields } } }",
                          "setiabudi_police")
    nodes = body["data"]["reports"]["nodes"]
    assert nodes
    for node in nodes:
        for field in ("text", "areaCode"):
            # Null exactly when listed: hidden, never "unknown".
            assert (node[field] is None) == (field in node["redactedFields"]), node
