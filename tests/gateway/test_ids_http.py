"""Ids out of range over real HTTP (issue 8, section 3.1): an id the database cannot hold
— negative, ≥ 2**31 (PostgreSQL's `Integer`), ≥ 2**63, not a decimal number — is simply
a missing row, on every id argument and every path, and it never fails the DataLoader
batch of the other ids of the same request."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from conftest import SETIABUDI, Deployment

BAD_IDS = ["9223372036854775808", "2147483648", "-1", "-9223372036854775809",
           "1" + "0" * 40, "x1", " 1", "1_0", "\uff11", "", "1.0"]

ENTITIES = """
query Entities($reps: [_Any!]!) {
  _entities(representations: $reps) { ... on Foreigner { id nationality } }
}
"""


def _codes(body: dict[str, Any]) -> list[str | None]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors", [])]


def _setiabudi_foreigner(deployment: Deployment) -> int:
    return min(deployment.facts.in_area(SETIABUDI))


@pytest.mark.parametrize("root", ["foreigner", "report", "officer"])
def test_an_id_the_database_cannot_hold_is_a_missing_row_as_immigration_supervisor(
    deployment: Deployment, root: str,
) -> None:
    for bad in BAD_IDS:
        response = deployment.post(f"query($id: ID!) {{ {root}(id: $id) {{ id }} }}",
                                   "immigration_supervisor", {"id": bad})
        assert response.status_code == 200, response.text
        assert response.content == f'{{"data":{{"{root}":null}}}}'.encode(), bad


def test_one_bad_entity_id_does_not_blank_the_batch_as_police(deployment: Deployment) -> None:
    good = _setiabudi_foreigner(deployment)
    reps = [{"__typename": "Foreigner", "id": str(good)},
            {"__typename": "Foreigner", "id": "9223372036854775808"},
            {"__typename": "Foreigner", "id": 2**70},
            {"__typename": "Foreigner", "id": "-5"},
            {"__typename": "Foreigner", "id": "abc"},
            {"__typename": "Foreigner", "id": str(good)}]
    body = deployment.gql(ENTITIES, "setiabudi_police", reps=reps)
    assert "errors" not in body, body
    entities = body["data"]["_entities"]
    assert entities[0] is not None and entities[0]["id"] == str(good)
    assert entities[1:5] == [None, None, None, None]
    assert entities[5] == entities[0]


def test_bad_ids_in_one_document_do_not_blank_good_ones_as_immigration_officer(
    deployment: Deployment,
) -> None:
    good = _setiabudi_foreigner(deployment)
    body = deployment.gql(
        f'{{ a: foreigner(id: "{good}") {{ id }} b: foreigner(id: "99999999999999999999") '
        f'{{ id }} c: foreigner(id: "-1") {{ id }} }}', "immigration_officer")
    assert body == {"data": {"a": {"id": str(good)}, "b": None, "c": None}}


def test_activities_of_an_officer_id_out_of_range_are_none_as_immigration_supervisor(
    deployment: Deployment,
) -> None:
    for bad in ("9223372036854775808", "-1", "x"):
        body = deployment.gql(
            "query($o: ID!) { activities(officerId: $o) { nodes { id } "
            "pageInfo { endCursor hasNextPage } } }", "immigration_supervisor", o=bad)
        assert body == {"data": {"activities": {
            "nodes": [], "pageInfo": {"endCursor": None, "hasNextPage": False}}}}, bad


UPDATE = """
mutation Update($input: UpdateReportInput!) { updateReport(input: $input) { id } }
"""


def test_update_report_with_an_id_out_of_range_is_not_found_as_immigration_supervisor(
    deployment: Deployment,
) -> None:
    body = deployment.gql(UPDATE, "immigration_supervisor",
                          input={"id": "9223372036854775808", "status": "TRIAGED"})
    assert _codes(body) == ["NOT_FOUND"]


def test_update_report_assigning_an_officer_out_of_range_is_unknown_as_supervisor(
    deployment: Deployment,
) -> None:
    report = str(deployment.facts.reports[0]["id"])
    body = deployment.gql(UPDATE, "immigration_supervisor",
                          input={"id": report, "assignedOfficerId": "9223372036854775808"})
    assert _codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["message"] == "unknown officer"


RECORD = """
mutation Record($input: RecordActivityInput!) { recordActivity(input: $input) { id } }
"""


@pytest.mark.parametrize(("field", "message"), [("subjectForeignerId", "unknown foreigner"),
                                                ("reportId", "unknown report")])
def test_record_activity_with_a_foreign_key_out_of_range_is_unknown_as_immigration_officer(
    deployment: Deployment, field: str, message: str,
) -> None:
    body = deployment.gql(RECORD, "immigration_officer", input={
        "kind": "DOCUMENT_CHECK", "areaCode": deployment.facts.busiest_setiabudi_rt,
        field: "9223372036854775808", "notes": "never written"})
    assert body["data"] == {"recordActivity": None}
    assert _codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["message"] == message


def test_submit_report_about_a_foreigner_out_of_range_is_unknown_as_public(
    deployment: Deployment,
) -> None:
    body = deployment.gql(
        "mutation($input: SubmitReportInput!) { submitReport(input: $input) { status } }",
        "public", input={"category": "SUSPICIOUS_ACTIVITY", "text": "never written",
                         "areaCode": deployment.facts.busiest_setiabudi_rt,
                         "foreignerId": "-9223372036854775809"})
    assert _codes(body) == ["BAD_USER_INPUT"]


@pytest.mark.parametrize("officer_id", [2**31, 2**62])
def test_an_officer_id_claim_out_of_range_never_reaches_sql_as_immigration_officer(
    deployment: Deployment, officer_id: int,
) -> None:
    token = deployment.token_for("immigration_officer", "31.74", officer_id)
    response = deployment.post("{ activities(first: 5) { nodes { id } } }", token=token)
    # Refusing an unknown officer at the door (401) is fine too; an error from SQL is not.
    assert response.status_code in (200, 401), response.text
    if response.status_code == 200:
        body = response.json()
        assert "errors" not in body, body


def test_a_plain_cursor_with_a_key_out_of_range_is_bad_input_as_immigration_officer(
    deployment: Deployment,
) -> None:
    plain = base64.urlsafe_b64encode(json.dumps(
        {"o": "ID", "k": [2**63]}).encode()).decode().rstrip("=")
    body = deployment.gql("query($a: String) { foreigners(first: 2, after: $a) { nodes { id } } }",
                          "immigration_officer", a=plain)
    assert _codes(body) == ["BAD_USER_INPUT"]
