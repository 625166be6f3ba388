"""Mutations over real HTTP: anyone may submit a report and follow it by receipt code;
field work and triage are immigration's. Every mutation obeys the policy: a denied
mutation is a FORBIDDEN error that writes nothing, bad input is BAD_USER_INPUT, an id
the caller cannot see is "unknown" whether or not it exists, and the result of a
mutation is read under the same field policy as any query.

Mutations write into the shared seeded database, so each test works on fresh rows it
creates itself (marked with a unique text), never asserts global counts, and deletes
those rows when the module is done, so later suites see the seeded data unchanged."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import SETIABUDI, TEBET, Deployment, delete_marked_rows, run_async
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.auth import mint_dev_token
from resolvers.models import OfficerActivity, Report

RECEIPT = re.compile(r"SSD(-[A-HJ-NP-Z2-9]{4}){4}")  # 16 symbols of 32: 80 bits

SUBMIT = """
mutation Submit($input: SubmitReportInput!) {
  submitReport(input: $input) { receiptCode status }
}
"""

STATUS = """
query Status($code: String!) { reportStatus(receiptCode: $code) { receiptCode status updatedAt } }
"""

OWN_REPORTS = "{ reports(first: 200) { nodes { id receiptCode status text areaCode } } }"

RECORD = """
mutation Record($input: RecordActivityInput!) {
  recordActivity(input: $input) { id kind areaCode notes officer { id } }
}
"""

UPDATE = """
mutation Update($input: UpdateReportInput!) {
  updateReport(input: $input) { id status receiptCode text }
}
"""


MARKER_PREFIX = "sisada-mutation-test-"


def _marker() -> str:
    return f"{MARKER_PREFIX}{uuid.uuid4().hex}"


@pytest.fixture(scope="module", autouse=True)
def _leave_the_seeded_data_as_found(deployment: Deployment) -> Iterator[None]:
    yield
    delete_marked_rows(deployment.database_url, MARKER_PREFIX)


def _report_input(deployment: Deployment, text: str, **extra: Any) -> dict[str, Any]:
    return {"category": "SUSPICIOUS_ACTIVITY", "text": text,
            "areaCode": deployment.facts.busiest_setiabudi_rt, **extra}


def _error_codes(body: dict[str, Any]) -> list[str | None]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors", [])]


def _rows_with(deployment: Deployment, model: type, condition: Any) -> int:
    """How many rows of `model` match, read straight from the database (not via the API)."""

    async def count() -> int:
        engine = create_async_engine(deployment.database_url)
        try:
            async with engine.connect() as conn:
                return int(await conn.scalar(
                    select(func.count()).select_from(model).where(condition)))
        finally:
            await engine.dispose()

    return int(run_async(count()))


def _reports_with_text(deployment: Deployment, text: str) -> int:
    return _rows_with(deployment, Report, Report.text == text)


def _activities_with_notes(deployment: Deployment, notes: str) -> int:
    return _rows_with(deployment, OfficerActivity, OfficerActivity.notes == notes)


def _submit(deployment: Deployment, persona: str, text: str, **extra: Any) -> dict[str, Any]:
    body = deployment.gql(SUBMIT, persona, input=_report_input(deployment, text, **extra))
    assert "errors" not in body, body
    return body["data"]["submitReport"]


def _own_report(deployment: Deployment, persona: str, receipt: str) -> dict[str, Any]:
    body = deployment.gql(OWN_REPORTS, persona)
    assert "errors" not in body, body
    return next(r for r in body["data"]["reports"]["nodes"] if r["receiptCode"] == receipt)


def _a_foreigner_in(deployment: Deployment, area: str) -> str:
    return str(min(deployment.facts.in_area(area)))


def _missing_foreigner_id(deployment: Deployment) -> str:
    return str(max(f["id"] for f in deployment.facts.foreigners) + 100_000)


# -- submitReport and reportStatus ---------------------------------------------------------


def test_submit_report_anonymously_returns_receipt_as_public(deployment: Deployment) -> None:
    receipt = _submit(deployment, "public", _marker())
    assert RECEIPT.fullmatch(receipt["receiptCode"])
    assert receipt["status"] == "RECEIVED"


def test_report_status_by_receipt_code_only_as_public(deployment: Deployment) -> None:
    text = _marker()
    code = _submit(deployment, "public", text, reporterContact="reporter@example.org")[
        "receiptCode"]
    response = deployment.post(STATUS, "public", {"code": code})
    body = response.json()
    assert "errors" not in body
    status = body["data"]["reportStatus"]
    assert set(status) == {"receiptCode", "status", "updatedAt"}
    assert status["receiptCode"] == code
    assert status["status"] == "RECEIVED"
    assert status["updatedAt"] is None  # not status: when the office last worked on it
    assert text.encode() not in response.content
    assert b"reporter@example.org" not in response.content
    assert deployment.facts.busiest_setiabudi_rt.encode() not in response.content


def test_receipt_and_status_types_carry_nothing_else_as_public(deployment: Deployment) -> None:
    body = deployment.gql("""{
      receipt: __type(name: "ReportReceipt") { fields { name } }
      status: __type(name: "ReportStatus") { fields { name } }
    }""", "public")
    assert {f["name"] for f in body["data"]["receipt"]["fields"]} == {"receiptCode", "status"}
    # `updatedAt` (when the office last worked on it) is null for the public, and its
    # introspection (its own contract, schema/introspection_view.py) does not show it.
    assert {f["name"] for f in body["data"]["status"]["fields"]} == {"receiptCode", "status"}


def test_submit_report_result_has_no_report_fields_as_public(deployment: Deployment) -> None:
    text = _marker()
    body = deployment.gql(
        "mutation($input: SubmitReportInput!) { submitReport(input: $input) { receiptCode text } }",
        "public", input=_report_input(deployment, text))
    assert body["data"] is None
    assert len(body["errors"]) == 1
    assert "text" in body["errors"][0]["message"]
    assert _reports_with_text(deployment, text) == 0


def test_unknown_receipt_code_is_null_as_public(deployment: Deployment) -> None:
    body = deployment.gql(STATUS, "public", code="SSD-ZZZZ-ZZZZ")
    assert body == {"data": {"reportStatus": None}}
    body = deployment.gql(STATUS, "public", code=f"SSD-{uuid.uuid4().hex[:4].upper()}-2222")
    assert body["data"]["reportStatus"] is None


def test_submit_report_in_unknown_area_is_bad_input_as_public(deployment: Deployment) -> None:
    text = _marker()
    for area in ("31.74.02.9999", "31.74.02", "not-an-area"):
        body = deployment.gql(SUBMIT, "public",
                              input=_report_input(deployment, text, areaCode=area))
        assert body["data"] == {"submitReport": None}
        assert _error_codes(body) == ["BAD_USER_INPUT"]
    assert _reports_with_text(deployment, text) == 0


def test_submit_report_with_empty_text_is_bad_input_as_public(deployment: Deployment) -> None:
    for text in ("", "   "):
        body = deployment.gql(SUBMIT, "public", input=_report_input(deployment, text))
        assert body["data"] == {"submitReport": None}
        assert _error_codes(body) == ["BAD_USER_INPUT"]


def test_submit_report_foreigner_is_unknown_whether_or_not_it_exists_as_public(
    deployment: Deployment,
) -> None:
    text = _marker()
    existing = _a_foreigner_in(deployment, SETIABUDI)
    missing = _missing_foreigner_id(deployment)
    answers = []
    for foreigner_id in (existing, missing):
        response = deployment.post(SUBMIT, "public", {
            "input": _report_input(deployment, text, foreignerId=foreigner_id)})
        body = response.json()
        assert body["data"] == {"submitReport": None}
        assert _error_codes(body) == ["BAD_USER_INPUT"]
        assert body["errors"][0]["message"] == "unknown foreigner"
        answers.append(response.content)
    assert answers[0] == answers[1]  # byte for byte: the id travels in the variables
    assert _reports_with_text(deployment, text) == 0


def test_submit_report_foreigner_outside_jurisdiction_is_unknown_as_police(
    deployment: Deployment,
) -> None:
    text = _marker()
    tebet = _a_foreigner_in(deployment, TEBET)
    missing = _missing_foreigner_id(deployment)
    answers = []
    for foreigner_id in (tebet, missing):
        response = deployment.post(SUBMIT, "setiabudi_police", {
            "input": _report_input(deployment, text, foreignerId=foreigner_id)})
        body = response.json()
        assert _error_codes(body) == ["BAD_USER_INPUT"]
        assert body["errors"][0]["message"] == "unknown foreigner"
        answers.append(response.content)
    assert answers[0] == answers[1]  # byte for byte: the id travels in the variables
    assert _reports_with_text(deployment, text) == 0
    in_scope = _a_foreigner_in(deployment, SETIABUDI)
    receipt = _submit(deployment, "setiabudi_police", text, foreignerId=in_scope)
    assert RECEIPT.fullmatch(receipt["receiptCode"])


def test_submitted_report_is_listed_with_receipt_as_rt_head(deployment: Deployment) -> None:
    text = _marker()
    code = _submit(deployment, "rt_head", text)["receiptCode"]
    report = _own_report(deployment, "rt_head", code)
    assert report["text"] == text
    assert report["status"] == "RECEIVED"
    assert report["areaCode"] == deployment.facts.busiest_setiabudi_rt


def test_report_of_another_rt_head_is_invisible_as_rt_head(deployment: Deployment) -> None:
    text = _marker()
    code = _submit(deployment, "rt_head", text)["receiptCode"]
    own_rt = deployment.facts.busiest_setiabudi_rt
    other_rt = min(r["rt_code"] for r in deployment.facts.current_by_foreigner.values()
                   if r["kecamatan_code"] == SETIABUDI and r["rt_code"] != own_rt)
    other = mint_dev_token(deployment.settings, "neighbourhood", area=other_rt)
    response = deployment.post(OWN_REPORTS, token=other)
    assert response.status_code == 200
    assert "errors" not in response.json()
    assert text.encode() not in response.content
    assert code.encode() not in response.content


# -- recordActivity ------------------------------------------------------------------------


def test_record_activity_as_immigration_officer(deployment: Deployment) -> None:
    notes = _marker()
    area = deployment.facts.busiest_setiabudi_rt
    body = deployment.gql(RECORD, "immigration_officer", input={
        "kind": "HOME_VISIT", "areaCode": area, "latitude": -6.21, "longitude": 106.83,
        "notes": notes})
    assert "errors" not in body, body
    activity = body["data"]["recordActivity"]
    assert activity["kind"] == "HOME_VISIT"
    assert activity["areaCode"] == area
    assert activity["notes"] == notes
    assert activity["officer"] == {"id": "1"}
    assert _activities_with_notes(deployment, notes) == 1


def test_record_activity_is_forbidden_as_police(deployment: Deployment) -> None:
    notes = _marker()
    body = deployment.gql(RECORD, "setiabudi_police", input={
        "kind": "DOCUMENT_CHECK", "areaCode": deployment.facts.busiest_setiabudi_rt,
        "notes": notes})
    assert body["data"] == {"recordActivity": None}
    assert _error_codes(body) == ["FORBIDDEN"]
    assert _activities_with_notes(deployment, notes) == 0


def test_record_activity_is_forbidden_as_public(deployment: Deployment) -> None:
    notes = _marker()
    body = deployment.gql(RECORD, "public", input={
        "kind": "DOCUMENT_CHECK", "areaCode": deployment.facts.busiest_setiabudi_rt,
        "notes": notes})
    assert body["data"] == {"recordActivity": None}
    assert _error_codes(body) == ["FORBIDDEN"]
    assert _activities_with_notes(deployment, notes) == 0


def test_record_activity_with_latitude_only_is_bad_input_as_immigration_officer(
    deployment: Deployment,
) -> None:
    notes = _marker()
    body = deployment.gql(RECORD, "immigration_officer", input={
        "kind": "DOCUMENT_CHECK", "areaCode": deployment.facts.busiest_setiabudi_rt,
        "latitude": -6.2, "notes": notes})
    assert body["data"] == {"recordActivity": None}
    assert _error_codes(body) == ["BAD_USER_INPUT"]
    assert _activities_with_notes(deployment, notes) == 0


# -- updateReport --------------------------------------------------------------------------


def test_update_report_changes_status_as_immigration_supervisor(deployment: Deployment) -> None:
    text = _marker()
    code = _submit(deployment, "rt_head", text)["receiptCode"]
    report_id = _own_report(deployment, "rt_head", code)["id"]
    body = deployment.gql(UPDATE, "immigration_supervisor",
                          input={"id": report_id, "status": "INVESTIGATING"})
    assert "errors" not in body, body
    assert body["data"]["updateReport"] == {
        "id": report_id, "status": "INVESTIGATING", "receiptCode": code, "text": text}
    followed = deployment.gql(STATUS, "public", code=code)["data"]["reportStatus"]
    assert followed["status"] == "INVESTIGATING"


def test_update_report_is_forbidden_as_police(deployment: Deployment) -> None:
    code = _submit(deployment, "rt_head", _marker())["receiptCode"]
    report_id = _own_report(deployment, "rt_head", code)["id"]
    body = deployment.gql(UPDATE, "setiabudi_police", input={"id": report_id, "status": "CLOSED"})
    assert body["data"] == {"updateReport": None}
    assert _error_codes(body) == ["FORBIDDEN"]
    assert deployment.gql(STATUS, "public", code=code)["data"]["reportStatus"]["status"] == (
        "RECEIVED")


def test_update_report_is_forbidden_as_rt_head(deployment: Deployment) -> None:
    code = _submit(deployment, "rt_head", _marker())["receiptCode"]
    report_id = _own_report(deployment, "rt_head", code)["id"]
    body = deployment.gql(UPDATE, "rt_head", input={"id": report_id, "status": "CLOSED"})
    assert body["data"] == {"updateReport": None}
    assert _error_codes(body) == ["FORBIDDEN"]
    assert deployment.gql(STATUS, "public", code=code)["data"]["reportStatus"]["status"] == (
        "RECEIVED")


def test_update_missing_report_is_not_found_as_immigration_supervisor(
    deployment: Deployment,
) -> None:
    body = deployment.gql(UPDATE, "immigration_supervisor",
                          input={"id": "987654321", "status": "CLOSED"})
    assert body["data"] == {"updateReport": None}
    assert _error_codes(body) == ["NOT_FOUND"]


# -- transport -----------------------------------------------------------------------------


def _get(deployment: Deployment, query: str, persona: str, **variables: Any) -> httpx.Response:
    token = deployment.token(persona)
    headers = {"authorization": f"Bearer {token}"} if token else {}
    params = {"query": query, "variables": json.dumps(variables)}
    return deployment.client.get(f"{deployment.base_url}/graphql", params=params,
                                 headers=headers)


def test_mutation_over_get_is_rejected_as_public(deployment: Deployment) -> None:
    text = _marker()
    response = _get(deployment, SUBMIT, "public", input=_report_input(deployment, text))
    assert response.status_code != 200
    assert b"SSD-" not in response.content
    assert _reports_with_text(deployment, text) == 0


def test_mutation_over_get_is_rejected_as_immigration_officer(deployment: Deployment) -> None:
    notes = _marker()
    response = _get(deployment, RECORD, "immigration_officer", input={
        "kind": "DOCUMENT_CHECK", "areaCode": deployment.facts.busiest_setiabudi_rt,
        "notes": notes})
    assert response.status_code != 200
    assert _activities_with_notes(deployment, notes) == 0


def test_query_over_get_still_works_as_public(deployment: Deployment) -> None:
    response = _get(deployment, STATUS, "public", code="SSD-ZZZZ-ZZZZ")
    assert response.status_code == 200
    assert response.json() == {"data": {"reportStatus": None}}


def test_a_batch_with_an_unselectable_operation_runs_nothing_as_immigration_officer(
    deployment: Deployment,
) -> None:
    # Review of issue 10, F4: the batch answered 400 for its bad operation while the good
    # one carried on, recording an activity behind the 400.
    notes = _marker()
    variables = {"input": {"kind": "HOME_VISIT", "notes": notes,
                           "areaCode": deployment.facts.busiest_setiabudi_rt}}
    token = deployment.token("immigration_officer")
    response = deployment.client.post(
        f"{deployment.base_url}/graphql", headers={"authorization": f"Bearer {token}"},
        json=[{"query": RECORD, "variables": variables, "operationName": "Record"},
              {"query": RECORD, "variables": variables, "operationName": "Z"}])
    assert response.status_code == 400
    assert b"Unknown operation named" in response.content
    time.sleep(0.5)  # nothing runs on in the background either
    assert _activities_with_notes(deployment, notes) == 0
