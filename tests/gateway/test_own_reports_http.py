"""Whose report is "own", over real HTTP (issue 8 §3, finding 3).

"Own submitted" reports matched on the token's subject alone, and the demo minted one
subject for police, military and district of a kecamatan: the district then read the
police's reports, receipt codes included. Own is now the same issuer, the same role and
the same subject; demo tokens carry a subject per role, jurisdiction and officer.
"""

from __future__ import annotations

import datetime as dt
import uuid

import jwt
from conftest import SETIABUDI, Deployment, run_async
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.auth import mint_dev_token
from policies.area_codes import located_codes
from resolvers.models import Report

SUBMIT = """mutation($input: SubmitReportInput!) {
  submitReport(input: $input) { receiptCode } }"""
REPORTS = "{ reports(first: 100) { nodes { id text receiptCode } } }"


def submit(deployment: Deployment, token: str, text: str) -> str:
    response = deployment.post(SUBMIT, token=token, variables={"input": {
        "category": "SUSPICIOUS_ACTIVITY", "text": text,
        "areaCode": deployment.facts.busiest_setiabudi_rt}})
    body = response.json()
    assert "errors" not in body, body
    return str(body["data"]["submitReport"]["receiptCode"])


def marker() -> str:
    return f"own-report-{uuid.uuid4().hex}"


def test_demo_tokens_carry_a_subject_per_role_and_officer(deployment: Deployment) -> None:
    settings = deployment.settings
    minted = [mint_dev_token(settings, "police", area=SETIABUDI),
              mint_dev_token(settings, "military", area=SETIABUDI),
              mint_dev_token(settings, "district", area=SETIABUDI),
              mint_dev_token(settings, "immigration_officer", area="31.74", officer_id=1),
              mint_dev_token(settings, "immigration_officer", area="31.74", officer_id=4)]
    subjects = [jwt.decode(t, options={"verify_signature": False})["sub"] for t in minted]
    assert len(set(subjects)) == len(subjects)


def test_police_report_is_not_own_as_district_of_the_same_kecamatan(
    deployment: Deployment,
) -> None:
    text = marker()
    police = mint_dev_token(deployment.settings, "police", area=SETIABUDI)
    code = submit(deployment, police, text)
    district = mint_dev_token(deployment.settings, "district", area=SETIABUDI)
    response = deployment.post(REPORTS, token=district)
    assert response.status_code == 200, response.text
    assert code.encode() not in response.content
    assert text.encode() not in response.content


def test_same_subject_in_another_role_is_not_own_as_district(deployment: Deployment) -> None:
    # What the old demo minted: one subject for police and district of one kecamatan.
    shared = f"shared-{uuid.uuid4().hex}"
    text = marker()
    police = mint_dev_token(deployment.settings, "police", area=SETIABUDI, subject=shared)
    code = submit(deployment, police, text)
    district = mint_dev_token(deployment.settings, "district", area=SETIABUDI, subject=shared)
    response = deployment.post(REPORTS, token=district)
    assert response.status_code == 200, response.text
    assert code.encode() not in response.content
    assert text.encode() not in response.content
    # ...while the district's own report, under the same subject, is its own.
    mine = marker()
    own_code = submit(deployment, district, mine)
    response = deployment.post(REPORTS, token=district)
    assert own_code.encode() in response.content and mine.encode() in response.content
    assert code.encode() not in response.content


def test_same_subject_from_another_issuer_is_not_own_as_rt_head(deployment: Deployment) -> None:
    rt = deployment.facts.busiest_setiabudi_rt
    subject = f"rt-head-{uuid.uuid4().hex}"
    text, receipt = marker(), f"SSD-TEST-{uuid.uuid4().hex[:4].upper()}-ISSR-0000"

    async def insert_foreign_report() -> None:
        engine = create_async_engine(deployment.database_url)
        now = dt.datetime.now(dt.UTC)
        try:
            async with engine.begin() as conn:
                await conn.execute(insert(Report).values(
                    receipt_code=receipt, category="other", text=text, status="received",
                    submitter_issuer="https://another-idp.example.org",
                    submitter_role="neighbourhood", submitted_by=subject,
                    created_at=now, updated_at=now, **located_codes(rt)))
        finally:
            await engine.dispose()

    run_async(insert_foreign_report())
    token = mint_dev_token(deployment.settings, "neighbourhood", area=rt, subject=subject)
    response = deployment.post(REPORTS, token=token)
    assert response.status_code == 200, response.text
    assert receipt.encode() not in response.content
    assert text.encode() not in response.content
