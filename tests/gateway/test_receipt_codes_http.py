"""Receipt codes over real HTTP (issue 8 §3, finding 1): unguessable, not reproducible
from the public default seed, and what they open is the status only."""

from __future__ import annotations

import re
import uuid

from conftest import SEED_FOREIGNERS, Deployment

from resolvers.seed import build_seed_rows

# 16 symbols of a 32-symbol alphabet: 80 bits (SECURITY.md has the guessing arithmetic).
RECEIPT = re.compile(r"SSD(-[ABCDEFGHJKLMNPQRSTUVWXYZ23456789]{4}){4}")
SUBMIT = """mutation($input: SubmitReportInput!) {
  submitReport(input: $input) { receiptCode } }"""
STATUS = "query($c: String!) { reportStatus(receiptCode: $c) { receiptCode status updatedAt } }"


def submit(deployment: Deployment) -> str:
    body = deployment.gql(SUBMIT, "public", input={
        "category": "OTHER", "text": f"receipt-{uuid.uuid4().hex}",
        "areaCode": deployment.facts.busiest_setiabudi_rt})
    return str(body["data"]["submitReport"]["receiptCode"])


def test_receipt_codes_carry_80_random_bits_as_public(deployment: Deployment) -> None:
    codes = {submit(deployment) for _ in range(5)}
    assert len(codes) == 5
    assert all(RECEIPT.fullmatch(code) for code in codes)


def test_seeded_receipt_codes_are_not_reproducible_from_the_default_seed_as_public(
    deployment: Deployment,
) -> None:
    seeded = {r["receipt_code"] for r in deployment.facts.reports}
    assert all(RECEIPT.fullmatch(code) for code in seeded)
    replayed = [r["receipt_code"] for r in build_seed_rows(foreigners=SEED_FOREIGNERS).reports]
    assert not seeded & set(replayed)
    for code in replayed[:3]:
        response = deployment.post(STATUS, "public", {"c": code})
        assert response.content == b'{"data":{"reportStatus":null}}'


def test_report_status_is_status_only_as_public(deployment: Deployment) -> None:
    report = next(r for r in deployment.facts.reports if r["status"] != "received")
    response = deployment.post(STATUS, "public", {"c": report["receipt_code"]})
    body = response.json()
    assert body["data"]["reportStatus"] == {"receiptCode": report["receipt_code"],
                                            "status": report["status"].upper(), "updatedAt": None}
    assert body["extensions"]["redacted"] == {"ReportStatus": ["updatedAt"]}
    updated = report["updated_at"]
    for shown in (updated.isoformat(), updated.strftime("%Y-%m-%dT%H:%M")):
        assert shown.encode() not in response.content
    assert report["text"].encode() not in response.content


def test_report_status_shows_when_it_changed_as_immigration_supervisor(
    deployment: Deployment,
) -> None:
    report = deployment.facts.reports[0]
    body = deployment.gql(STATUS, "immigration_supervisor", c=report["receipt_code"])
    assert body["data"]["reportStatus"]["updatedAt"] is not None
