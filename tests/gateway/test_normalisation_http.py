"""Unicode in document numbers and area codes over real HTTP (issue 8, section 3.4).

Every place these arguments enter NFKC-normalises them before comparing: a fullwidth
passport number checks as the same number, a fullwidth area code names the same area.
A value that normalises to something outside the grammar (Arabic-Indic digits, a stray
letter) is BAD_USER_INPUT — and the error never repeats it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import SETIABUDI, Deployment, delete_marked_rows, run_async
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from resolvers.models import OfficerActivity, Report

MARKER_PREFIX = "sisada-normalisation-test-"


def fullwidth(text: str) -> str:
    """ASCII letters, digits and punctuation as their fullwidth forms (U+FF01…U+FF5E)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def arabic_indic(text: str) -> str:
    """Digits of another script: NFKC keeps them, so they stay outside the grammar."""
    return "".join(chr(0x0660 + int(c)) if c.isdigit() else c for c in text)


def _codes(body: dict[str, Any]) -> list[str | None]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors", [])]


@pytest.fixture(scope="module", autouse=True)
def _leave_the_seeded_data_as_found(deployment: Deployment) -> Iterator[None]:
    yield
    delete_marked_rows(deployment.database_url, MARKER_PREFIX)


CHECK = """query($n: String!) { checkForeigner(documentNumber: $n)
  { documentNumber registered foreigner { id } } }"""


def test_fullwidth_passport_number_checks_as_the_same_as_immigration_officer(
    deployment: Deployment,
) -> None:
    someone = deployment.facts.foreigners[5]
    plain = deployment.gql(CHECK, "immigration_officer", n=someone["passport_number"])
    wide = deployment.gql(CHECK, "immigration_officer",
                          n=" " + fullwidth(someone["passport_number"].lower()) + "\u3000")
    assert plain == wide
    assert wide["data"]["checkForeigner"] == {
        "documentNumber": someone["passport_number"], "registered": True,
        "foreigner": {"id": str(someone["id"])}}


def test_fullwidth_permit_number_filters_as_the_same_as_immigration_officer(
    deployment: Deployment,
) -> None:
    someone = deployment.facts.foreigners[7]
    permit = deployment.facts.permit_numbers[someone["id"]][0]
    query = "query($n: String!) { foreigners(filter: {documentNumber: $n}) { nodes { id } } }"
    body = deployment.gql(query, "immigration_officer", n=fullwidth(permit))
    assert body == {"data": {"foreigners": {"nodes": [{"id": str(someone["id"])}]}}}


@pytest.mark.parametrize("number", ["E1234567\u0660", "AB", "E12 34567", "E123-", "E12\x00345",
                                    "\u0415" + "1234567"])
def test_a_document_number_outside_the_grammar_is_bad_input_as_immigration_officer(
    deployment: Deployment, number: str,
) -> None:
    for query in (CHECK, "query($n: String!) { foreigners(filter: {documentNumber: $n}) "
                         "{ totalCount } }"):
        response = deployment.post(query, "immigration_officer", {"n": number})
        body = response.json()
        assert _codes(body) == ["BAD_USER_INPUT"], (number, body)
        assert number.encode() not in response.content


AREA = "query($c: String!) { area(code: $c) { code name foreignerCount } }"


def test_fullwidth_area_code_names_the_same_area_as_police(deployment: Deployment) -> None:
    plain = deployment.gql(AREA, "setiabudi_police", c=SETIABUDI)
    wide = deployment.gql(AREA, "setiabudi_police", c=fullwidth(SETIABUDI))
    assert "errors" not in wide
    assert plain == wide
    assert wide["data"]["area"]["code"] == SETIABUDI


def test_fullwidth_area_codes_filter_and_list_as_the_same_as_police(
    deployment: Deployment,
) -> None:
    count = "query($c: String!) { foreigners(filter: {areaCode: $c}) { totalCount } }"
    children = "query($c: String!) { areas(parentCode: $c) { code } }"
    for query in (count, children):
        plain = deployment.gql(query, "setiabudi_police", c=SETIABUDI)
        wide = deployment.gql(query, "setiabudi_police", c=fullwidth(SETIABUDI))
        assert "errors" not in wide
        assert plain == wide


@pytest.mark.parametrize("code", [arabic_indic(SETIABUDI), SETIABUDI + "x", SETIABUDI + "\n",
                                  "31.74.2", "", "31\uff0e74\uff0e0\u0662"])
def test_an_area_code_outside_the_grammar_is_bad_input_as_police(
    deployment: Deployment, code: str,
) -> None:
    for query in (AREA,
                  "query($c: String!) { foreigners(filter: {areaCode: $c}) { totalCount } }",
                  "query($c: String!) { areas(parentCode: $c) { code } }"):
        response = deployment.post(query, "setiabudi_police", {"c": code})
        body = response.json()
        assert _codes(body) == ["BAD_USER_INPUT"], (code, query, body)
        if code.strip():
            assert code.encode() not in response.content


def test_fullwidth_entity_code_resolves_and_a_bad_one_fails_alone_as_public(
    deployment: Deployment,
) -> None:
    body = deployment.gql(
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on Area { code level } } }",
        "public", r=[{"__typename": "Area", "code": fullwidth(SETIABUDI)},
                     {"__typename": "Area", "code": arabic_indic(SETIABUDI)},
                     {"__typename": "Area", "code": SETIABUDI}])
    assert body["data"]["_entities"] == [{"code": SETIABUDI, "level": "KECAMATAN"}, None,
                                         {"code": SETIABUDI, "level": "KECAMATAN"}]
    assert _codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["path"] == ["_entities", 1]


def _stored_rt(deployment: Deployment, model: Any, column: Any, marker: str) -> list[str]:
    async def read() -> list[str]:
        engine = create_async_engine(deployment.database_url)
        try:
            async with engine.connect() as conn:
                return list((await conn.scalars(
                    select(model.rt_code).where(column == marker))).all())
        finally:
            await engine.dispose()

    return list(run_async(read()))


def test_submit_report_with_a_fullwidth_area_code_stores_the_code_as_public(
    deployment: Deployment,
) -> None:
    marker = f"{MARKER_PREFIX}{uuid.uuid4().hex}"
    rt = deployment.facts.busiest_setiabudi_rt
    body = deployment.gql(
        "mutation($input: SubmitReportInput!) { submitReport(input: $input) { status } }",
        "public", input={"category": "SUSPICIOUS_ACTIVITY", "text": marker,
                         "areaCode": fullwidth(rt)})
    assert "errors" not in body, body
    assert _stored_rt(deployment, Report, Report.text, marker) == [rt]


def test_submit_report_with_a_foreign_script_area_code_is_bad_input_as_public(
    deployment: Deployment,
) -> None:
    marker = f"{MARKER_PREFIX}{uuid.uuid4().hex}"
    body = deployment.gql(
        "mutation($input: SubmitReportInput!) { submitReport(input: $input) { status } }",
        "public", input={"category": "SUSPICIOUS_ACTIVITY", "text": marker,
                         "areaCode": arabic_indic(deployment.facts.busiest_setiabudi_rt)})
    assert _codes(body) == ["BAD_USER_INPUT"]
    assert _stored_rt(deployment, Report, Report.text, marker) == []


def test_record_activity_with_a_fullwidth_area_code_stores_the_code_as_immigration_officer(
    deployment: Deployment,
) -> None:
    marker = f"{MARKER_PREFIX}{uuid.uuid4().hex}"
    rt = deployment.facts.busiest_setiabudi_rt
    body = deployment.gql(
        "mutation($input: RecordActivityInput!) { recordActivity(input: $input) { id } }",
        "immigration_officer", input={"kind": "DOCUMENT_CHECK", "areaCode": fullwidth(rt),
                                      "notes": marker})
    assert "errors" not in body, body
    assert _stored_rt(deployment, OfficerActivity, OfficerActivity.notes, marker) == [rt]
