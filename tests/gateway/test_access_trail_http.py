"""The access trail over real HTTP, on SQLite and PostgreSQL (SPEC rule 6, issue 10).

Every path to a recorded field (policies/trail.polar) writes exactly one entry per record
(type, id, the field names returned, the stated purpose, who, which request and document),
read back straight from the `access_trail` table and through `accessTrail`; reads of
nothing recorded write nothing; a reader without a purpose its role may state gets nulls
(PURPOSE_REQUIRED) and nothing is fetched from the registry; when the trail cannot be
written no identity byte leaves; the trail is readable by the office's supervisor and the
auditor only, and the auditor reads no personal data anywhere.

The deployment is shared: each test reads with a token of its own subject (a unique
marker), and selects the entries it wrote by that subject (or, for callers whose subject
it cannot choose, by `seq` past the last entry before it ran).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import (
    CITY,
    PURPOSE,
    Deployment,
    ServerThread,
    delete_marked_rows,
    make_settings,
    purpose_headers,
    run_async,
)
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.app import create_app
from gateway.auth import mint_dev_token
from gateway.cursors import trail_document_key
from resolvers.db import Database, create_engine
from resolvers.models import AccessTrailEntry, AccessTrailRecord, StayPermit
from resolvers.trail import TrailRecord, append_records
from resolvers.trail.locking import CHAIN_LOCK_KEY

ROOT = Path(__file__).resolve().parents[2]
TABLE = AccessTrailEntry.__table__
RECORDS = AccessTrailRecord.__table__
MARKER = "sisada-trail-http-"
PURPOSES = ("field_check", "report_follow_up", "permit_supervision")
OTHER_OFFICE = "31.71"
FOREIGNER_RECORDED = ("fullName", "passportNumber", "birthDate", "photoUrl", "permitNumber")
PERMIT_RECORDED = ("number", "sponsorName")
ENTRY_FIELDS = ("seq at issuer subject role area officerId recordType recordId fields purpose "
                "requestId operationName documentHash clientAddress")
TRAIL = f"""
query Trail($filter: AccessTrailFilter, $first: Int!, $after: String) {{
  accessTrail(filter: $filter, first: $first, after: $after) {{
    nodes {{ {ENTRY_FIELDS} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}
"""


@pytest.fixture(scope="module", autouse=True)
def _leave_the_seeded_data_as_found(deployment: Deployment) -> Iterator[None]:
    yield
    delete_marked_rows(deployment.database_url, MARKER)


# -- helpers --------------------------------------------------------------------------------


class Reader:
    """A token of its own subject: the entries it causes are found by that subject."""

    def __init__(self, deployment: Deployment, role: str = "immigration_officer",
                 area: str | None = CITY, officer: int | None = 1) -> None:
        self.deployment = deployment
        self.role, self.area, self.officer = role, area, officer
        self.subject = f"{MARKER}{uuid.uuid4().hex}"
        self.token = mint_dev_token(deployment.settings, role, area=area, officer_id=officer,
                                    subject=self.subject)

    def post(self, query: str, variables: dict[str, Any] | None = None,
             purpose: str | None = PURPOSE, operation_name: str | None = None
             ) -> httpx.Response:
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        if operation_name is not None:
            body["operationName"] = operation_name
        return send(self.deployment, body, self.token, purpose)

    def gql(self, query: str, variables: dict[str, Any] | None = None,
            purpose: str | None = PURPOSE, operation_name: str | None = None) -> dict[str, Any]:
        response = self.post(query, variables, purpose, operation_name)
        assert response.status_code == 200, response.text
        return response.json()

    def entries(self) -> list[dict[str, Any]]:
        return stored_entries(self.deployment, TABLE.c.subject == self.subject)


def send(deployment: Deployment, body: Any, token: str | None,
         purpose: str | None = PURPOSE) -> httpx.Response:
    headers = purpose_headers(purpose)
    if token:
        headers["authorization"] = f"Bearer {token}"
    return deployment.client.post(f"{deployment.base_url}/graphql", json=body, headers=headers)


def on_database(url: str, action: Any) -> Any:
    async def run() -> Any:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                return await action(conn)
        finally:
            await engine.dispose()

    return run_async(run())


def stored_entries(deployment: Deployment, *conditions: Any) -> list[dict[str, Any]]:
    """One row per record read straight from the tables (each chained entry with each of
    its record rows), oldest first, `fields` as a list."""
    async def read(conn: Any) -> list[dict[str, Any]]:
        joined = TABLE.join(RECORDS, RECORDS.c.seq == TABLE.c.seq)
        rows = (await conn.execute(select(TABLE, RECORDS.c.record_id).select_from(joined)
                                   .where(*conditions)
                                   .order_by(TABLE.c.seq, RECORDS.c.record_id))
                ).mappings().all()
        return [{**row, "fields": row["fields"].split(",") if row["fields"] else []}
                for row in rows]

    return on_database(deployment.database_url, read)


def last_seq(deployment: Deployment) -> int:
    async def read(conn: Any) -> int:
        return int(await conn.scalar(select(func.coalesce(func.max(TABLE.c.seq), 0))))

    return on_database(deployment.database_url, read)


def entries_after(deployment: Deployment, seq: int) -> list[dict[str, Any]]:
    return stored_entries(deployment, TABLE.c.seq > seq)


def triples(entries: list[dict[str, Any]]) -> list[tuple[str, str, tuple[str, ...]]]:
    """(record type, record id, fields) per entry, sorted."""
    return sorted((e["record_type"], e["record_id"], tuple(e["fields"])) for e in entries)


def document_hash(query: str) -> str:
    """The keyed hash the gateway records (HMAC under the key derived from the test secret,
    which every deployment of the suite shares)."""
    key = trail_document_key(make_settings("sqlite://", Path("unused")))
    return hmac.new(key, query.encode(), hashlib.sha256).hexdigest()


def codes(body: dict[str, Any]) -> list[str | None]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors", [])]


def error_paths(body: dict[str, Any], code: str) -> list[list[Any]]:
    return sorted((e["path"] for e in body.get("errors", [])
                   if e.get("extensions", {}).get("code") == code), key=repr)


def recorded_values(data: Any, path: list[Any] | None = None
                    ) -> list[tuple[list[Any], str, str, str]]:
    """(path, type, record id, field) of every non-null recorded value a response carries.
    A dict with `number`/`sponsorName` keys is a StayPermit, one with a recorded Foreigner
    field a Foreigner; the queries of this module select `id` beside them and use no alias
    for a recorded field unless it says so."""
    path = path or []
    found: list[tuple[list[Any], str, str, str]] = []
    if isinstance(data, list):
        for index, item in enumerate(data):
            found.extend(recorded_values(item, [*path, index]))
    elif isinstance(data, dict):
        kind = ("StayPermit" if any(k in data for k in PERMIT_RECORDED)
                else "Foreigner" if any(k in data for k in FOREIGNER_RECORDED) else None)
        names = PERMIT_RECORDED if kind == "StayPermit" else FOREIGNER_RECORDED
        for key, value in data.items():
            if kind is not None and key in names and value is not None:
                found.append(([*path, key], kind, str(data["id"]), key))
            else:
                found.extend(recorded_values(value, [*path, key]))
    return found


def expected_triples(data: Any) -> list[tuple[str, str, tuple[str, ...]]]:
    """One (type, id, sorted fields) per record whose recorded values the data carries."""
    by_record: dict[tuple[str, str], set[str]] = {}
    for _path, kind, record_id, name in recorded_values(data):
        by_record.setdefault((kind, record_id), set()).add(name)
    return sorted((kind, record_id, tuple(sorted(names)))
                  for (kind, record_id), names in by_record.items())


def foreigner(deployment: Deployment, index: int) -> dict[str, Any]:
    return sorted(deployment.facts.foreigners, key=lambda f: f["id"])[index]


def secrets_of(deployment: Deployment) -> dict[str, set[str]]:
    """Every seeded personal value a response must not carry to a role that may not read
    it: identity from the registry (names, documents, birth dates, photos, sponsors'
    names), street addresses and reporters' contacts from the office database."""
    from examples.registry.models import PermitDocument

    async def sponsors(conn: Any) -> set[str]:
        rows = (await conn.execute(select(PermitDocument.sponsor_name))).scalars().all()
        return {name for name in rows if name}

    facts = deployment.facts
    return {
        "name": {f["full_name"] for f in facts.foreigners},
        "passport": {f["passport_number"] for f in facts.foreigners},
        "birth date": {f["birth_date"].isoformat() for f in facts.foreigners},
        "photo": {f["photo_url"] for f in facts.foreigners if f.get("photo_url")},
        "permit number": {n for numbers in facts.permit_numbers.values() for n in numbers},
        "sponsor name": on_database(deployment.registry_database_url, sponsors),
        "street address": {r["street_address"] for r in facts.current_by_foreigner.values()
                           if r.get("street_address")},
        "reporter contact": {r["reporter_contact"] for r in facts.reports
                             if r.get("reporter_contact")},
    }


def leaked(raw: bytes, secrets: dict[str, set[str]]) -> list[str]:
    text_ = raw.decode()
    return [f"{kind}: {value!r}" for kind, values in secrets.items() for value in values
            if value in text_]


def trail_nodes(deployment: Deployment, token: str | None, filter_: dict[str, Any] | None,
                first: int = 100, after: str | None = None) -> dict[str, Any]:
    variables: dict[str, Any] = {"filter": filter_, "first": first, "after": after}
    response = send(deployment, {"query": TRAIL, "variables": variables}, token)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]["accessTrail"]


def as_node(entry: dict[str, Any]) -> dict[str, Any]:
    """A stored entry as `accessTrail` shows it (without `at`, compared apart)."""
    officer = entry["officer_id"]
    return {"seq": str(entry["seq"]), "issuer": entry["issuer"], "subject": entry["subject"],
            "role": entry["role"], "area": entry["area"],
            "officerId": None if officer is None else str(officer),
            "recordType": entry["record_type"], "recordId": entry["record_id"],
            "fields": entry["fields"], "purpose": entry["purpose"],
            "requestId": entry["request_id"], "operationName": entry["operation_name"],
            "documentHash": entry["document_hash"], "clientAddress": entry["client_address"]}


def without_at(node: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in node.items() if k != "at"}


def sisada_trail(deployment: Deployment, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SISADA_DATABASE_URL": deployment.database_url}
    return subprocess.run([sys.executable, "-m", "gateway.cli", "trail", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)


# -- 1. every identity path writes exactly its entries --------------------------------------

PAGE = """
{ foreigners(first: 20) { nodes { id nationality fullName passportNumber } } }
"""


def test_foreigner_page_writes_one_entry_per_record_as_immigration_officer(
    deployment: Deployment,
) -> None:
    reader = Reader(deployment)
    body = reader.gql(PAGE)
    assert "errors" not in body, body
    nodes = body["data"]["foreigners"]["nodes"]
    assert len(nodes) == 20 and all(n["fullName"] and n["passportNumber"] for n in nodes)
    entries = reader.entries()
    assert triples(entries) == sorted(
        ("Foreigner", n["id"], ("fullName", "passportNumber")) for n in nodes)
    # One batch: one request id, one time; one chained entry listing the 20 records.
    assert len({e["request_id"] for e in entries}) == 1
    assert len({e["at"] for e in entries}) == 1
    assert len({e["seq"] for e in entries}) == 1
    assert {(e["record_count"], e["chain_format"]) for e in entries} == {(20, 2)}
    first = entries[0]
    assert first["purpose"] == PURPOSE
    assert (first["role"], first["area"], first["office_code"], first["officer_id"]) == (
        "immigration_officer", CITY, CITY, 1)
    assert first["issuer"] == deployment.settings.jwt_issuer
    assert first["document_hash"] == document_hash(PAGE)
    assert first["operation_name"] is None
    assert first["client_address"] == "127.0.0.1"


def test_foreigner_by_id_writes_one_entry_with_the_fields_returned_as_immigration_officer(
    deployment: Deployment,
) -> None:
    reader = Reader(deployment)
    someone = foreigner(deployment, 3)
    body = reader.gql("query($id: ID!) { foreigner(id: $id) { id nationality sex ageBand "
                      "fullName passportNumber birthDate photoUrl permitNumber } }",
                      {"id": str(someone["id"])})
    assert "errors" not in body, body
    got = body["data"]["foreigner"]
    assert (got["fullName"], got["passportNumber"]) == (someone["full_name"],
                                                        someone["passport_number"])
    returned = tuple(sorted(f for f in FOREIGNER_RECORDED if got[f] is not None))
    assert {"fullName", "passportNumber", "birthDate", "permitNumber"} <= set(returned)
    assert triples(reader.entries()) == [("Foreigner", str(someone["id"]), returned)]


def test_check_foreigner_by_permit_number_writes_one_entry_as_immigration_officer(
    deployment: Deployment,
) -> None:
    reader = Reader(deployment)
    someone = foreigner(deployment, 5)
    number = deployment.facts.permit_numbers[someone["id"]][0]
    body = reader.gql("query($n: String!) { checkForeigner(documentNumber: $n) "
                      "{ registered foreigner { id fullName passportNumber } } }", {"n": number})
    assert "errors" not in body, body
    assert body["data"]["checkForeigner"] == {"registered": True, "foreigner": {
        "id": str(someone["id"]), "fullName": someone["full_name"],
        "passportNumber": someone["passport_number"]}}
    assert triples(reader.entries()) == [
        ("Foreigner", str(someone["id"]), ("fullName", "passportNumber"))]


def test_unregistered_check_writes_no_entry_as_immigration_officer(
    deployment: Deployment,
) -> None:
    reader = Reader(deployment)
    body = reader.gql("{ checkForeigner(documentNumber: \"ZZ0000000\") "
                      "{ registered foreigner { id fullName } } }")
    assert body["data"]["checkForeigner"] == {"registered": False, "foreigner": None}
    assert reader.entries() == []


def test_entities_write_one_entry_per_foreigner_as_immigration_officer(
    deployment: Deployment,
) -> None:
    reader = Reader(deployment)
    ids = [str(foreigner(deployment, i)["id"]) for i in (7, 8, 9)]
    reps = [{"__typename": "Foreigner", "id": i} for i in ids]
    body = reader.gql("query($reps: [_Any!]!) { _entities(representations: $reps) "
                      "{ ... on Foreigner { id nationality fullName birthDate } } }",
                      {"reps": reps})
    assert "errors" not in body, body
    assert [e["id"] for e in body["data"]["_entities"]] == ids
    assert triples(reader.entries()) == sorted(
        ("Foreigner", i, ("birthDate", "fullName")) for i in ids)


def test_report_foreigners_write_one_entry_per_linked_foreigner_as_immigration_officer(
    deployment: Deployment,
) -> None:
    reader = Reader(deployment)
    body = reader.gql("{ reports(first: 100) { nodes { id category foreigner { id fullName } } } }")
    assert "errors" not in body, body
    nodes = body["data"]["reports"]["nodes"]
    linked = {str(n["foreigner"]["id"]) for n in nodes if n["foreigner"] is not None}
    seeded = {str(r["foreigner_id"]) for r in deployment.facts.reports if r["foreigner_id"]}
    assert linked and linked <= seeded
    # A foreigner linked to two reports is one record: one entry.
    assert triples(reader.entries()) == sorted(("Foreigner", i, ("fullName",)) for i in linked)


def test_activity_subjects_write_one_entry_per_subject_as_immigration_supervisor(
    deployment: Deployment,
) -> None:
    reader = Reader(deployment, "immigration_supervisor", CITY, 2)
    body = reader.gql("{ activities(first: 100) { nodes { id kind subject "
                      "{ id fullName passportNumber } } } }")
    assert "errors" not in body, body
    subjects = {n["subject"]["id"] for n in body["data"]["activities"]["nodes"]
                if n["subject"] is not None}
    assert subjects
    entries = reader.entries()
    assert triples(entries) == sorted(
        ("Foreigner", i, ("fullName", "passportNumber")) for i in subjects)
    assert {(e["role"], e["officer_id"]) for e in entries} == {("immigration_supervisor", 2)}


def test_permit_numbers_write_stay_permit_entries_only_as_immigration_officer(
    deployment: Deployment,
) -> None:
    reader = Reader(deployment)
    body = reader.gql("{ foreigners(first: 6) { nodes { id nationality "
                      "permits { id status number sponsorName } } } }",
                      purpose="permit_supervision")
    assert "errors" not in body, body
    data = body["data"]
    expected = expected_triples(data)
    assert expected and {kind for kind, _, _ in expected} == {"StayPermit"}
    entries = reader.entries()
    assert triples(entries) == expected
    assert {e["purpose"] for e in entries} == {"permit_supervision"}
    seeded = {n for numbers in deployment.facts.permit_numbers.values() for n in numbers}
    numbers = [p["number"] for n in data["foreigners"]["nodes"] for p in n["permits"]]
    assert numbers and set(numbers) <= seeded


def test_mutation_result_with_a_foreigner_name_writes_an_entry_as_immigration_supervisor(
    deployment: Deployment,
) -> None:
    linked = foreigner(deployment, 11)
    text_ = f"{MARKER}{uuid.uuid4().hex}"
    submitted = deployment.gql(
        "mutation($input: SubmitReportInput!) { submitReport(input: $input) { receiptCode } }",
        "immigration_officer", input={"category": "OVERSTAY", "text": text_,
                          "areaCode": deployment.facts.busiest_setiabudi_rt,
                          "foreignerId": str(linked["id"])})
    assert "errors" not in submitted, submitted
    supervisor = Reader(deployment, "immigration_supervisor", CITY, 2)
    found = supervisor.gql("{ reports(first: 200) { nodes { id text } } }")
    report_id = next(n["id"] for n in found["data"]["reports"]["nodes"] if n["text"] == text_)
    assert supervisor.entries() == []  # the listing selected nothing recorded
    body = supervisor.gql(
        "mutation($input: UpdateReportInput!) { updateReport(input: $input) "
        "{ id status foreigner { id nationality fullName } } }",
        {"input": {"id": report_id, "status": "TRIAGED"}}, purpose="report_follow_up")
    assert "errors" not in body, body
    assert body["data"]["updateReport"]["foreigner"] == {
        "id": str(linked["id"]), "nationality": linked["nationality"],
        "fullName": linked["full_name"]}
    entries = supervisor.entries()
    assert triples(entries) == [("Foreigner", str(linked["id"]), ("fullName",))]
    assert entries[0]["purpose"] == "report_follow_up"


def test_activity_result_with_its_subject_writes_an_entry_as_immigration_officer(
    deployment: Deployment,
) -> None:
    reader = Reader(deployment)
    subject = foreigner(deployment, 12)
    body = reader.gql(
        "mutation($input: RecordActivityInput!) { recordActivity(input: $input) "
        "{ id kind subject { id fullName passportNumber } } }",
        {"input": {"kind": "DOCUMENT_CHECK", "areaCode": deployment.facts.busiest_setiabudi_rt,
                   "subjectForeignerId": str(subject["id"]),
                   "notes": f"{MARKER}{uuid.uuid4().hex}"}})
    assert "errors" not in body, body
    assert body["data"]["recordActivity"]["subject"]["fullName"] == subject["full_name"]
    assert triples(reader.entries()) == [
        ("Foreigner", str(subject["id"]), ("fullName", "passportNumber"))]


def test_one_foreigner_through_three_paths_writes_one_entry_as_immigration_officer(
    deployment: Deployment,
) -> None:
    reader = Reader(deployment)
    someone = foreigner(deployment, 14)
    body = reader.gql(
        "query($id: ID!, $n: String!, $reps: [_Any!]!) { foreigner(id: $id) { id fullName } "
        "checkForeigner(documentNumber: $n) { foreigner { id passportNumber } } "
        "_entities(representations: $reps) { ... on Foreigner { id birthDate } } }",
        {"id": str(someone["id"]), "n": someone["passport_number"],
         "reps": [{"__typename": "Foreigner", "id": str(someone["id"])}]})
    assert "errors" not in body, body
    assert triples(reader.entries()) == [
        ("Foreigner", str(someone["id"]), ("birthDate", "fullName", "passportNumber"))]


def test_get_request_writes_its_entries_as_immigration_officer(deployment: Deployment) -> None:
    reader = Reader(deployment)
    someone = str(foreigner(deployment, 18)["id"])
    query = f"query ByGet {{ foreigner(id: \"{someone}\") {{ id fullName }} }}"
    response = deployment.client.get(
        f"{deployment.base_url}/graphql", params={"query": query},
        headers={"authorization": f"Bearer {reader.token}", **purpose_headers()})
    assert response.status_code == 200, response.text
    assert response.json()["data"]["foreigner"]["fullName"]
    entries = reader.entries()
    assert triples(entries) == [("Foreigner", someone, ("fullName",))]
    assert (entries[0]["operation_name"], entries[0]["document_hash"]) == (
        "ByGet", document_hash(query))


def test_whole_office_list_writes_one_entry_per_record_as_immigration_officer(
    deployment: Deployment,
) -> None:
    reader = Reader(deployment)
    body = reader.gql("{ foreigners(first: 1000) { nodes { id fullName "
                      "permits { id number } } } }", purpose="permit_supervision")
    assert "errors" not in body, body
    nodes = body["data"]["foreigners"]["nodes"]
    assert len(nodes) == len(deployment.facts.foreigners)
    expected = expected_triples(body["data"])
    assert len(expected) == len(nodes) + sum(len(n["permits"]) for n in nodes)
    assert triples(reader.entries()) == expected


def test_aliases_of_one_foreigner_write_one_entry_with_the_union_of_fields_as_immigration_officer(
    deployment: Deployment,
) -> None:
    reader = Reader(deployment)
    someone = str(foreigner(deployment, 13)["id"])
    body = reader.gql("query($id: ID!) { a: foreigner(id: $id) { id fullName } "
                      "b: foreigner(id: $id) { id passportNumber name: fullName } "
                      "c: foreigner(id: $id) { id nationality } }", {"id": someone})
    assert "errors" not in body, body
    assert triples(reader.entries()) == [("Foreigner", someone, ("fullName", "passportNumber"))]


def test_batch_of_two_operations_writes_entries_per_operation_as_immigration_officer(
    deployment: Deployment,
) -> None:
    reader = Reader(deployment)
    one, two = (str(foreigner(deployment, i)["id"]) for i in (15, 16))
    first = "query($id: ID!) { foreigner(id: $id) { id fullName } }"
    second = "query Second($id: ID!) { foreigner(id: $id) { id passportNumber } }"
    response = send(deployment, [{"query": first, "variables": {"id": one}},
                                 {"query": second, "variables": {"id": two}}], reader.token)
    assert response.status_code == 200, response.text
    results = response.json()
    assert isinstance(results, list) and len(results) == 2, results
    assert all("errors" not in r for r in results), results
    entries = reader.entries()
    assert triples(entries) == sorted([("Foreigner", one, ("fullName",)),
                                       ("Foreigner", two, ("passportNumber",))])
    by_record = {e["record_id"]: e for e in entries}
    assert by_record[one]["document_hash"] == document_hash(first)
    assert by_record[two]["document_hash"] == document_hash(second)
    assert (by_record[one]["operation_name"], by_record[two]["operation_name"]) == (
        None, "Second")


def test_batch_reading_one_foreigner_twice_writes_an_entry_per_operation_as_immigration_officer(
    deployment: Deployment,
) -> None:
    reader = Reader(deployment)
    someone = str(foreigner(deployment, 17)["id"])
    query = "query($id: ID!) { foreigner(id: $id) { id fullName } }"
    response = send(deployment, [{"query": query, "variables": {"id": someone}}] * 2,
                    reader.token)
    assert response.status_code == 200, response.text
    assert triples(reader.entries()) == [("Foreigner", someone, ("fullName",))] * 2


def test_named_operation_records_the_operation_name_as_immigration_officer(
    deployment: Deployment,
) -> None:
    reader = Reader(deployment)
    one, two = (str(foreigner(deployment, i)["id"]) for i in (19, 20))
    document = (f"query LookOne {{ foreigner(id: \"{one}\") {{ id fullName }} }} "
                f"query LookTwo {{ foreigner(id: \"{two}\") {{ id birthDate }} }}")
    body = reader.gql(document, operation_name="LookTwo")
    assert "errors" not in body, body
    entries = reader.entries()
    assert triples(entries) == [("Foreigner", two, ("birthDate",))]
    assert entries[0]["operation_name"] == "LookTwo"
    assert entries[0]["document_hash"] == document_hash(document)
    # Named in the document only: the document's name is recorded.
    alone = Reader(deployment)
    alone.gql(f"query FieldCheck {{ foreigner(id: \"{one}\") {{ id fullName }} }}")
    assert [e["operation_name"] for e in alone.entries()] == ["FieldCheck"]


@pytest.mark.parametrize("purpose", PURPOSES)
def test_each_purpose_reads_identity_and_is_recorded_as_immigration_officer(
    deployment: Deployment, purpose: str,
) -> None:
    reader = Reader(deployment)
    someone = foreigner(deployment, 21)
    body = reader.gql("query($id: ID!) { foreigner(id: $id) { id fullName } }",
                      {"id": str(someone["id"])}, purpose=purpose)
    assert body == {"data": {"foreigner": {"id": str(someone["id"]),
                                           "fullName": someone["full_name"]}}}
    entries = reader.entries()
    assert [(e["record_id"], e["purpose"]) for e in entries] == [(str(someone["id"]), purpose)]


# -- 2. reads of nothing recorded write nothing ---------------------------------------------

IDENTITY_EVERYWHERE = """
{
  foreigners(first: 30) { totalCount nodes { id nationality permitType fullName passportNumber
    birthDate photoUrl permitNumber residence { areaCode } permits { id number sponsorName } } }
  reports(first: 30) { nodes { id status foreigner { id fullName } } }
  activities(first: 30) { nodes { id kind subject { id fullName } } }
  areas(level: KECAMATAN) { code foreignerCount }
}
"""


def test_profile_fields_write_no_entry_as_immigration_officer(deployment: Deployment) -> None:
    reader = Reader(deployment)
    before = last_seq(deployment)
    body = reader.gql("{ foreigners(first: 50) { totalCount nodes { id nationality sex ageBand "
                      "permitType permitStatus permitExpiresOn sponsorType redactedFields "
                      "residence { streetAddress areaCode } permits { id status expiresOn } } } "
                      "areas(level: KECAMATAN) { code foreignerCount "
                      "byNationality { key count } } }")
    assert "errors" not in body, body
    assert len(body["data"]["foreigners"]["nodes"]) == 50
    assert reader.entries() == []
    assert entries_after(deployment, before) == []


@pytest.mark.parametrize("persona", ["setiabudi_police", "city_police", "tebet_district",
                                     "rt_head", "public", "auditor"])
def test_any_query_writes_no_entry_as(deployment: Deployment, persona: str) -> None:
    before = last_seq(deployment)
    response = deployment.post(IDENTITY_EVERYWHERE, persona)
    assert response.status_code == 200, response.text
    body = response.json()
    assert recorded_values(body.get("data")) == [], body
    assert entries_after(deployment, before) == []


def test_area_counts_write_no_entry_as_public(deployment: Deployment) -> None:
    before = last_seq(deployment)
    body = deployment.gql("{ areas(level: KECAMATAN) { code name foreignerCount } }",
                          "public")
    assert "errors" not in body, body
    assert entries_after(deployment, before) == []


@pytest.mark.parametrize("persona", ["immigration_supervisor", "auditor"])
def test_reading_the_trail_writes_no_entry_as(deployment: Deployment, persona: str) -> None:
    Reader(deployment).gql("{ foreigners(first: 2) { nodes { id fullName } } }")
    before = last_seq(deployment)
    nodes = trail_nodes(deployment, deployment.token(persona), None, first=20)["nodes"]
    assert nodes
    assert entries_after(deployment, before) == []


# -- 3. purposes -----------------------------------------------------------------------------

PURPOSE_QUERY = """
query($id: ID!) {
  foreigner(id: $id) { id nationality sex fullName passportNumber birthDate
    residence { areaCode } permits { id status number sponsorName } }
  foreigners(first: 3) { nodes { id nationality fullName } }
}
"""


@pytest.mark.parametrize("purpose", [None, "", "marketing", "x" * 500, "FIELD_CHECK",
                                     "field_check;drop"],
                         ids=["none", "empty", "not-stated-by-role", "huge", "upper-case",
                              "malformed"])
def test_without_a_purpose_the_role_may_state_identity_is_withheld_as_immigration_officer(
    deployment: Deployment, purpose: str | None,
) -> None:
    reader = Reader(deployment)
    someone = foreigner(deployment, 23)
    with_purpose = reader.gql(PURPOSE_QUERY, {"id": str(someone["id"])})
    assert "errors" not in with_purpose, with_purpose
    withheld_paths = sorted((p for p, *_ in recorded_values(with_purpose["data"])), key=repr)
    assert withheld_paths
    before = last_seq(deployment)
    deployment.registry.clear_requests()
    response = reader.post(PURPOSE_QUERY, {"id": str(someone["id"])}, purpose=purpose)
    assert response.status_code == 200, response.text
    body = response.json()
    # Every recorded field that had a value is null, each with its own PURPOSE_REQUIRED.
    assert recorded_values(body["data"]) == []
    assert set(codes(body)) == {"PURPOSE_REQUIRED"}
    assert error_paths(body, "PURPOSE_REQUIRED") == withheld_paths
    # Everything else is as it was.
    expected = json.loads(json.dumps(with_purpose["data"]))
    for path in withheld_paths:
        parent = expected
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = None
    assert body["data"] == expected
    assert someone["full_name"].encode() not in response.content
    assert someone["passport_number"].encode() not in response.content
    # Nothing asked of the registry, nothing written.
    assert deployment.registry.requests() == []
    assert entries_after(deployment, before) == []


IDENTITY_SEARCHES = {
    "name-filter": "query($v: String!) { foreigners(first: 5, filter: {name: $v}) "
                   "{ totalCount nodes { id nationality } } }",
    "document-filter": "query($v: String!) { foreigners(first: 5, filter: {documentNumber: $v}) "
                       "{ totalCount nodes { id nationality } } }",
    "check-foreigner": "query($v: String!) { checkForeigner(documentNumber: $v) "
                       "{ registered foreigner { id nationality } } }",
}


@pytest.mark.parametrize("search", sorted(IDENTITY_SEARCHES))
def test_search_by_identity_without_a_purpose_asks_the_registry_nothing_as_immigration_officer(
    deployment: Deployment, search: str,
) -> None:
    someone = foreigner(deployment, 24)
    value = (max(someone["full_name"].split(), key=len) if search == "name-filter"
             else someone["passport_number"])
    reader = Reader(deployment)
    deployment.registry.clear_requests()
    body = reader.gql(IDENTITY_SEARCHES[search], {"v": value}, purpose=None)
    asked = [r.get("operation_name") or (r.get("query") or "")[:40]
             for r in deployment.registry.requests()]
    answered = json.dumps(body["data"])
    assert asked == [] and str(someone["id"]) not in answered, (
        f"PRODUCT BUG: without a purpose its role may state, an immigration officer still "
        f"searches the registry by a recorded field ({search}): the registry was asked "
        f"{asked} and the answer {answered} singles out foreigner {someone['id']}. The search "
        f"argument is checked with GraphQLContext.require_readable (schema/context.py), which "
        f"reads the role's full access, not the purpose view (context.readable), so "
        f"recorded fields withheld for want of a purpose can still be searched by "
        f"(SPEC rule 5; issue 10: nothing is fetched from the registry without a purpose)")
    assert set(codes(body)) & {"PURPOSE_REQUIRED", "FORBIDDEN"}, body


def test_a_purpose_changes_nothing_for_police_and_writes_nothing(
    deployment: Deployment,
) -> None:
    before = last_seq(deployment)
    bodies = [deployment.post(IDENTITY_EVERYWHERE, "setiabudi_police", purpose=p).json()
              for p in (None, "field_check", "marketing")]
    assert bodies[0] == bodies[1] == bodies[2]
    assert "PURPOSE_REQUIRED" not in codes(bodies[0])
    assert entries_after(deployment, before) == []


# -- 4. the trail cannot be written: no identity leaves -------------------------------------

FAIL_QUERY = """
query Failing {
  foreigners(first: 12) { totalCount nodes { id nationality sex permitType fullName
    passportNumber birthDate permitNumber residence { areaCode streetAddress }
    permits { id status number sponsorName } } }
  areas(level: KECAMATAN) { code foreignerCount }
  sisadaMe { role area officerId }
}
"""


def expected_when_blanked(data: dict[str, Any]) -> tuple[dict[str, Any], list[list[Any]]]:
    """`data` with every recorded value nulled, and the paths nulled."""
    blanked = json.loads(json.dumps(data))
    paths = sorted((p for p, *_ in recorded_values(data)), key=repr)
    for path in paths:
        parent = blanked
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = None
    return blanked, paths


def assert_failed_closed(deployment: Deployment, good: dict[str, Any],
                         response: httpx.Response, secrets: dict[str, set[str]]) -> None:
    assert response.status_code == 200, response.text
    raw = response.content
    assert leaked(raw, {k: secrets[k] for k in ("name", "passport", "birth date",
                                                "permit number", "sponsor name")}) == [], (
        "identity left the gateway although its trail entry was not written")
    body = response.json()
    blanked, paths = expected_when_blanked(good)
    assert paths
    assert set(codes(body)) == {"ACCESS_TRAIL_UNAVAILABLE"}, body.get("errors")
    assert error_paths(body, "ACCESS_TRAIL_UNAVAILABLE") == paths
    # Nothing but the recorded values was lost.
    assert body["data"] == blanked


@contextlib.contextmanager
def trail_table_away(deployment: Deployment, table: str = "access_trail") -> Iterator[None]:
    rename = "ALTER TABLE {} RENAME TO {}"

    async def move(conn: Any, old: str, new: str) -> None:
        await conn.execute(text(rename.format(old, new)))

    on_database(deployment.database_url, lambda c: move(c, table, f"{table}_away"))
    try:
        yield
    finally:
        on_database(deployment.database_url, lambda c: move(c, f"{table}_away", table))


def test_trail_write_failure_returns_no_identity_bytes_as_immigration_officer(
    deployment: Deployment,
) -> None:
    reader = Reader(deployment)
    secrets = secrets_of(deployment)
    good = reader.gql(FAIL_QUERY)
    assert "errors" not in good, good
    written = len(reader.entries())
    assert written == len(expected_triples(good["data"]))
    with trail_table_away(deployment):
        response = reader.post(FAIL_QUERY)
        single = reader.post("query($id: ID!) { foreigner(id: $id) { id fullName } }",
                                    {"id": str(foreigner(deployment, 2)["id"])})
    assert_failed_closed(deployment, good["data"], response, secrets)
    alone = single.json()
    assert alone["data"] == {"foreigner": {"id": str(foreigner(deployment, 2)["id"]),
                                           "fullName": None}}
    assert codes(alone) == ["ACCESS_TRAIL_UNAVAILABLE"]
    assert len(reader.entries()) == written
    # The gateway recovers as soon as the table is back.
    again = reader.gql(FAIL_QUERY)
    assert again == good
    assert len(reader.entries()) == 2 * written


def test_a_failed_record_write_leaves_no_entry_and_no_identity_as_immigration_officer(
    deployment: Deployment,
) -> None:
    """The entries go in, the records cannot: one transaction, so neither stays, and the
    response carries no recorded value."""
    reader = Reader(deployment)
    secrets = secrets_of(deployment)
    good = reader.gql(FAIL_QUERY)

    async def chained(conn: Any) -> list[int]:
        # The entry table alone: an entry left without its records would show here.
        rows = await conn.execute(select(TABLE.c.seq).where(TABLE.c.subject == reader.subject))
        return sorted(rows.scalars())

    before = on_database(deployment.database_url, chained)
    assert before
    with trail_table_away(deployment, "access_trail_record"):
        response = reader.post(FAIL_QUERY)
    assert_failed_closed(deployment, good["data"], response, secrets)
    assert on_database(deployment.database_url, chained) == before
    assert sisada_trail(deployment, "verify").returncode == 0


@contextlib.contextmanager
def chain_lock_held(database_url: str) -> Iterator[None]:
    """Hold the trail's chain lock (as a long prune would) from another connection."""
    taken, release = threading.Event(), threading.Event()
    failure: list[BaseException] = []

    async def hold() -> None:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as conn:
                if conn.dialect.name == "postgresql":
                    async with conn.begin():
                        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                           {"key": CHAIN_LOCK_KEY})
                        taken.set()
                        await asyncio.to_thread(release.wait, 60)
                else:
                    await conn.execution_options(isolation_level="AUTOCOMMIT")
                    await conn.exec_driver_sql("BEGIN IMMEDIATE")
                    taken.set()
                    await asyncio.to_thread(release.wait, 60)
                    await conn.exec_driver_sql("ROLLBACK")
        finally:
            await engine.dispose()

    def run() -> None:
        try:
            asyncio.run(hold())
        except BaseException as exc:  # reported to the test below
            failure.append(exc)
            taken.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert taken.wait(30), "the chain lock was not taken"
    assert not failure, failure
    try:
        yield
    finally:
        release.set()
        thread.join(30)
    assert not failure, failure


def test_trail_lock_timeout_returns_no_identity_bytes_as_immigration_officer(
    deployment: Deployment, tmp_path: Path,
) -> None:
    settings = deployment.settings_with(tmp_path, trail_write_timeout_seconds=0.5)
    secrets = secrets_of(deployment)
    reader = Reader(deployment)
    good = reader.gql(FAIL_QUERY)
    assert "errors" not in good, good
    written = len(reader.entries())
    with ServerThread(create_app(settings)) as base_url:
        other = Deployment(**{**deployment.__dict__, "base_url": base_url})
        with chain_lock_held(deployment.database_url):
            response = send(other, {"query": FAIL_QUERY}, reader.token)
        assert_failed_closed(deployment, good["data"], response, secrets)
        assert len(reader.entries()) == written
        after = send(other, {"query": FAIL_QUERY}, reader.token)
        assert after.json() == good
    assert len(reader.entries()) == 2 * written


def test_concurrent_identity_reads_in_one_gateway_all_carry_their_names_as_immigration_officer(
    deployment: Deployment,
) -> None:
    """16 readers at once on one gateway, 15 reads each: every response keeps its names,
    and the trail holds exactly one entry per name that left."""
    readers = [Reader(deployment) for _ in range(16)]
    query = "{ foreigners(first: 20) { nodes { id fullName } } }"

    def read(reader: Reader) -> list[dict[str, Any]]:
        with httpx.Client(timeout=60) as client:
            return [client.post(f"{deployment.base_url}/graphql", json={"query": query},
                                headers={"authorization": f"Bearer {reader.token}",
                                         **purpose_headers()}).json()
                    for _ in range(15)]

    with ThreadPoolExecutor(len(readers)) as pool:
        bodies = [body for batch in pool.map(read, readers) for body in batch]
    carried = sum(1 for body in bodies for node in body["data"]["foreigners"]["nodes"]
                  if node["fullName"])
    subjects = [reader.subject for reader in readers]
    assert len(stored_entries(deployment, TABLE.c.subject.in_(subjects))) == carried
    failed = [body for body in bodies if "errors" in body]
    assert failed == [], (
        f"PRODUCT BUG ({deployment.backend}): {len(failed)} of {len(bodies)} responses of ONE "
        f"gateway process lost their names with ACCESS_TRAIL_UNAVAILABLE under 16 concurrent "
        f"readers, e.g. {failed[0]['errors'][:1]}: the trail write waited past "
        f"trail_write_timeout_seconds (2 s) for SQLite's write lock (BEGIN IMMEDIATE, "
        f"resolvers/trail/locking.py), which the busy handler hands out by polling, not in "
        f"order, while each holder keeps it ~10 ms" if failed else "")
    assert carried == len(bodies) * 20


# -- 5. accessTrail ----------------------------------------------------------------------------


def other_office_reads(deployment: Deployment, subject: str, count: int) -> None:
    """Entries as a reader of another office (31.71) leaves them.

    The seeded data lives in one office (31.74): another office's officer reads no one here
    (its queries write nothing, see below), so its reads are written with the gateway's own
    storage function, as its gateway would have written them."""
    now = dt.datetime.now(dt.UTC)
    records = [TrailRecord(
        at=now, issuer=deployment.settings.jwt_issuer, subject=subject,
        role="immigration_officer", area=OTHER_OFFICE, office_code=OTHER_OFFICE, officer_id=1,
        record_type="Foreigner", record_id=str(foreigner(deployment, i)["id"]),
        fields=("fullName",), purpose="field_check", request_id=uuid.uuid4().hex,
        operation_name=None, document_hash="0" * 64, client_address="10.0.0.7")
        for i in range(count)]

    async def write() -> None:
        db = Database(create_engine(deployment.database_url))
        try:
            await append_records(db, records, timeout=10)
        finally:
            await db.engine.dispose()

    run_async(write())


def test_supervisor_reads_the_entries_of_an_officer_of_its_office_as_immigration_supervisor(
    deployment: Deployment,
) -> None:
    reader = Reader(deployment)
    reader.gql(PAGE)
    stored = reader.entries()
    assert len(stored) == 20
    page = trail_nodes(deployment, deployment.token("immigration_supervisor"),
                       {"subject": reader.subject})
    nodes = page["nodes"]
    # Newest first, and exactly what the table holds, field names and never values.
    assert [without_at(n) for n in nodes] == [as_node(e) for e in reversed(stored)]
    for node, entry in zip(nodes, reversed(stored), strict=True):
        at = dt.datetime.fromisoformat(node["at"])
        stored_at = entry["at"] if entry["at"].tzinfo else entry["at"].replace(tzinfo=dt.UTC)
        assert at == stored_at
    assert page["pageInfo"]["hasNextPage"] is False


def test_other_office_reads_are_invisible_to_this_office_as_immigration_supervisor(
    deployment: Deployment,
) -> None:
    before = last_seq(deployment)
    other_officer = Reader(deployment, "immigration_officer", OTHER_OFFICE, 1)
    body = other_officer.gql(IDENTITY_EVERYWHERE)
    assert recorded_values(body["data"]) == []
    assert entries_after(deployment, before) == []  # it read no one here
    ours = Reader(deployment)
    ours.gql("{ foreigners(first: 3) { nodes { id fullName } } }")
    theirs = f"{MARKER}{uuid.uuid4().hex}"
    other_office_reads(deployment, theirs, 4)
    this_supervisor = deployment.token("immigration_supervisor")
    other_supervisor = deployment.token_for("immigration_supervisor", OTHER_OFFICE, 2)
    auditor = deployment.token("auditor")
    for subject, visible_to in ((ours.subject, {"this", "auditor"}),
                                (theirs, {"other", "auditor"})):
        for who, token in (("this", this_supervisor), ("other", other_supervisor),
                           ("auditor", auditor)):
            nodes = trail_nodes(deployment, token, {"subject": subject})["nodes"]
            count = 3 if subject == ours.subject else 4
            assert len(nodes) == (count if who in visible_to else 0), (who, subject, nodes)
    # Unfiltered, newest first: the office's supervisor sees no 31.71 entry at all.
    recent = trail_nodes(deployment, this_supervisor, None, first=100)["nodes"]
    assert recent and all(n["area"] != OTHER_OFFICE for n in recent)
    seen_by_auditor = trail_nodes(deployment, auditor, None, first=100)["nodes"]
    assert {n["subject"] for n in seen_by_auditor} >= {ours.subject, theirs}


def test_filter_by_foreigner_includes_its_stay_permits_as_auditor(
    deployment: Deployment,
) -> None:
    reader = Reader(deployment)
    one, two = foreigner(deployment, 25), foreigner(deployment, 26)
    query = ("query($id: ID!) { foreigner(id: $id) { id fullName "
             "permits { id number } } }")
    body = reader.gql(query, {"id": str(one["id"])})
    permit_ids = {p["id"] for p in body["data"]["foreigner"]["permits"]}
    assert permit_ids
    reader.gql(query, {"id": str(two["id"])})
    auditor = deployment.token("auditor")
    mine = trail_nodes(deployment, auditor, {"foreignerId": str(one["id"]),
                                             "subject": reader.subject})["nodes"]
    assert sorted((n["recordType"], n["recordId"]) for n in mine) == sorted(
        [("Foreigner", str(one["id"])), *(("StayPermit", p) for p in permit_ids)])
    # Unfiltered by reader: every entry is about that foreigner or one of its permits.
    async def permits_of(conn: Any) -> set[str]:
        rows = await conn.execute(select(StayPermit.id).where(StayPermit.foreigner_id
                                                              == one["id"]))
        return {str(r) for r in rows.scalars()}

    all_permits = on_database(deployment.database_url, permits_of)
    everyone = trail_nodes(deployment, auditor, {"foreignerId": str(one["id"])})["nodes"]
    assert {(n["seq"], n["recordType"], n["recordId"]) for n in mine} <= {
        (n["seq"], n["recordType"], n["recordId"]) for n in everyone}
    assert all((n["recordType"], n["recordId"]) == ("Foreigner", str(one["id"]))
               or (n["recordType"] == "StayPermit" and n["recordId"] in all_permits)
               for n in everyone), everyone
    # A foreigner id that names no row: no entries, no error.
    assert trail_nodes(deployment, auditor, {"foreignerId": "x1"})["nodes"] == []


def test_filter_by_role_purpose_and_time_as_immigration_supervisor(
    deployment: Deployment,
) -> None:
    officer = Reader(deployment)
    supervisor_reader = Reader(deployment, "immigration_supervisor", CITY, 2)
    query = "query($id: ID!) { foreigner(id: $id) { id fullName } }"
    t0 = dt.datetime.now(dt.UTC)
    officer.gql(query, {"id": str(foreigner(deployment, 30)["id"])}, purpose="field_check")
    t1 = dt.datetime.now(dt.UTC)
    officer.gql(query, {"id": str(foreigner(deployment, 31)["id"])},
                purpose="report_follow_up")
    supervisor_reader.gql(query, {"id": str(foreigner(deployment, 32)["id"])},
                          purpose="permit_supervision")
    t2 = dt.datetime.now(dt.UTC)
    token = deployment.token("immigration_supervisor")

    def ids(filter_: dict[str, Any]) -> list[str]:
        return [n["recordId"] for n in trail_nodes(deployment, token, filter_)["nodes"]]

    f30, f31, f32 = (str(foreigner(deployment, i)["id"]) for i in (30, 31, 32))
    assert ids({"subject": officer.subject}) == [f31, f30]
    assert ids({"subject": officer.subject, "purpose": "report_follow_up"}) == [f31]
    assert ids({"subject": officer.subject, "purpose": "permit_supervision"}) == []
    assert ids({"subject": officer.subject, "since": t0.isoformat(),
                "until": t1.isoformat()}) == [f30]
    assert ids({"subject": officer.subject, "since": t1.isoformat()}) == [f31]
    assert ids({"subject": officer.subject, "until": t0.isoformat()}) == []
    # A time with another offset names the same instant.
    wib = dt.timezone(dt.timedelta(hours=7))
    assert ids({"subject": officer.subject, "since": t1.astimezone(wib).isoformat(),
                "until": t2.astimezone(wib).isoformat()}) == [f31]
    by_role = trail_nodes(deployment, token, {"role": "immigration_supervisor",
                                              "since": t0.isoformat()})["nodes"]
    assert [n["recordId"] for n in by_role if n["subject"] == supervisor_reader.subject] == [f32]
    assert all(n["role"] == "immigration_supervisor" for n in by_role)
    by_purpose = trail_nodes(deployment, token, {"purpose": "permit_supervision",
                                                 "since": t0.isoformat()})["nodes"]
    assert by_purpose and all(n["purpose"] == "permit_supervision" for n in by_purpose)


def test_paging_with_after_returns_every_entry_once_as_auditor(deployment: Deployment) -> None:
    reader = Reader(deployment)
    reader.gql("{ foreigners(first: 7) { nodes { id fullName } } }")
    stored = reader.entries()
    assert len(stored) == 7
    auditor = deployment.token("auditor")
    seen: list[str] = []
    flags: list[bool] = []
    after = None
    for _ in range(10):
        page = trail_nodes(deployment, auditor, {"subject": reader.subject}, first=3,
                           after=after)
        seen.extend((n["seq"], n["recordId"]) for n in page["nodes"])
        flags.append(page["pageInfo"]["hasNextPage"])
        after = page["pageInfo"]["endCursor"]
        if not page["pageInfo"]["hasNextPage"]:
            break
    # The seven reads are one chained entry: the pages walk its records, each once.
    assert len({seq for seq, _ in seen}) == 1
    assert seen == [(str(e["seq"]), e["record_id"]) for e in reversed(stored)]
    assert flags == [True, True, False]
    # The cursor is sealed: it names no seq in the clear, and a forged one is refused.
    first_page = trail_nodes(deployment, auditor, {"subject": reader.subject}, first=3)
    cursor = first_page["pageInfo"]["endCursor"]
    assert first_page["nodes"][-1]["seq"] not in cursor
    forged = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
    response = send(deployment, {"query": TRAIL, "variables": {
        "filter": {"subject": reader.subject}, "first": 3, "after": forged}}, auditor)
    body = response.json()
    assert body["data"] == {"accessTrail": None}, body
    assert codes(body) == ["BAD_USER_INPUT"], body


@pytest.mark.parametrize("persona", ["immigration_officer", "setiabudi_police",
                                     "setiabudi_military", "tebet_district", "rt_head",
                                     "public"])
def test_access_trail_is_forbidden_as(deployment: Deployment, persona: str) -> None:
    token = deployment.token(persona)
    plain = send(deployment, {"query": TRAIL, "variables": {"first": 10}}, token).json()
    assert plain["data"] == {"accessTrail": None}
    assert codes(plain) == ["FORBIDDEN"]
    # A filter changes nothing: no oracle on who read whom.
    filtered = send(deployment, {"query": TRAIL, "variables": {
        "first": 10, "filter": {"foreignerId": str(foreigner(deployment, 0)["id"]),
                                "role": "immigration_officer"}}}, token).json()
    assert filtered == plain


# -- 6. the auditor reads no personal data ---------------------------------------------------

AUDITOR_QUERIES = [
    TRAIL,
    "{ sisadaMe { role area officerId } }",
    "{ areas { code name level foreignerCount byNationality { key count } "
    "byPermitType { key count } } }",
    "{ foreigners(first: 50) { totalCount nodes { id nationality fullName passportNumber "
    "birthDate photoUrl permitNumber residence { streetAddress areaCode } "
    "permits { id number sponsorName } } } }",
    "{ reports(first: 50) { nodes { id text reporterContact areaCode "
    "foreigner { id fullName } } } }",
    "{ activities(first: 50) { nodes { id notes latitude subject { id fullName } } } }",
    "{ officers { id name rank unit } }",
    "query($id: ID!) { foreigner(id: $id) { id fullName passportNumber } "
    "checkForeigner(documentNumber: \"P0000000\") { registered foreigner { fullName } } }",
]


def test_auditor_reads_no_personal_data_anywhere_as_auditor(deployment: Deployment) -> None:
    reader = Reader(deployment)
    reader.gql(FAIL_QUERY)  # the trail now holds entries about these people
    secrets = secrets_of(deployment)
    auditor = deployment.token("auditor")
    someone = foreigner(deployment, 0)
    reps = [{"__typename": "Foreigner", "id": str(f["id"])}
            for f in deployment.facts.foreigners[:20]]
    checked = [(q, {"id": str(someone["id"]), "first": 100, "filter": None})
               for q in AUDITOR_QUERIES]
    checked.append(("query($reps: [_Any!]!) { _entities(representations: $reps) "
                    "{ ... on Foreigner { id nationality fullName passportNumber } } }",
                    {"reps": reps}))
    checked.append(("query($n: String!) { checkForeigner(documentNumber: $n) "
                    "{ registered foreigner { id fullName } } }",
                    {"n": someone["passport_number"]}))
    before = last_seq(deployment)
    trail_seen = 0
    for query, variables in checked:
        used = {k: v for k, v in variables.items() if f"${k}" in query}
        response = send(deployment, {"query": query, "variables": used or None}, auditor)
        assert response.status_code == 200, response.text
        assert leaked(response.content, secrets) == [], query
        data = response.json().get("data") or {}
        trail_seen += len((data.get("accessTrail") or {}).get("nodes") or [])
    assert trail_seen > 0
    assert entries_after(deployment, before) == []


# -- 7. the CLI over what the gateway wrote ---------------------------------------------------


def test_trail_export_lists_the_reads_of_a_foreigner_without_values(
    deployment: Deployment,
) -> None:
    reader = Reader(deployment)
    someone = foreigner(deployment, 40)
    body = reader.gql("query($id: ID!) { foreigner(id: $id) { id fullName passportNumber "
                      "permits { id number sponsorName } } }", {"id": str(someone["id"])})
    permits = body["data"]["foreigner"]["permits"]
    assert permits
    done = sisada_trail(deployment, "export", "--foreigner", str(someone["id"]),
                        "--format", "json")
    assert done.returncode == 0, done.stderr
    exported = [e for e in json.loads(done.stdout) if e["subject"] == reader.subject]
    assert sorted((e["record_type"], e["record_id"], tuple(e["fields"])) for e in exported) == (
        triples(reader.entries()))
    assert {e["record_type"] for e in exported} == {"Foreigner", "StayPermit"}
    assert {e["purpose"] for e in exported} == {PURPOSE}
    values = [someone["full_name"], someone["passport_number"],
              *(p["number"] for p in permits), *(p["sponsorName"] for p in permits
                                                  if p["sponsorName"])]
    assert [v for v in values if v in done.stdout] == []


def test_trail_verify_exits_0_after_every_read_of_this_suite(deployment: Deployment) -> None:
    assert last_seq(deployment) > 0
    done = sisada_trail(deployment, "verify")
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert done.stdout.startswith("intact: "), done.stdout


# -- review of issue 10: searches are reads; the auditor reads no caller's free text -------


def test_a_name_search_records_every_match_as_immigration_officer(
    deployment: Deployment,
) -> None:
    # Review F1: growing a name one letter at a time and watching which ids match rebuilt
    # a name while the trail stayed empty. Every in-scope match is a read of the name.
    someone = deployment.facts.foreigners[11]
    part = max(someone["full_name"].split(), key=len)[:4].lower()
    reader = Reader(deployment)
    body = reader.gql("query($n: String!) { foreigners(filter: {name: $n}, first: 5) "
                      "{ totalCount nodes { id } } }", {"n": part})
    matches = {str(f["id"]) for f in deployment.facts.foreigners
               if part in f["full_name"].lower()}
    assert body["data"]["foreigners"]["totalCount"] == len(matches)
    entries = reader.entries()
    assert {e["record_id"] for e in entries} == matches
    assert {tuple(e["fields"]) for e in entries} == {("fullName",)}


def test_a_document_check_records_the_holder_as_immigration_officer(
    deployment: Deployment,
) -> None:
    someone = deployment.facts.foreigners[12]
    reader = Reader(deployment)
    body = reader.gql("query($n: String!) { checkForeigner(documentNumber: $n) { registered } }",
                      {"n": someone["passport_number"]})
    assert body["data"]["checkForeigner"] == {"registered": True}
    (entry,) = reader.entries()
    assert (entry["record_id"], entry["fields"]) == (str(someone["id"]), ["passportNumber"])


def test_the_auditor_does_not_read_operation_names_as_auditor(deployment: Deployment) -> None:
    # Review F2: an operation name is the caller's free text, and can spell a passport.
    reader = Reader(deployment)
    someone = deployment.facts.foreigners[13]
    spelled = f"Look_{someone['passport_number']}"
    reader.gql(f"query {spelled} {{ foreigner(id: \"{someone['id']}\") {{ fullName }} }}")
    response = deployment.post(TRAIL, "auditor", {"filter": {"subject": reader.subject},
                                                  "first": 5})
    assert someone["passport_number"].encode() not in response.content
    nodes = response.json()["data"]["accessTrail"]["nodes"]
    assert nodes and all(n["operationName"] is None for n in nodes)
    assert response.json()["extensions"]["redacted"] == {"AccessTrailEntry": ["operationName"]}
    supervisor = deployment.post(TRAIL, "immigration_supervisor",
                                 {"filter": {"subject": reader.subject}, "first": 5}).json()
    assert supervisor["data"]["accessTrail"]["nodes"][0]["operationName"] == spelled


def test_the_document_hash_is_keyed_as_immigration_officer(deployment: Deployment) -> None:
    # Review F2: a plain SHA-256 of a document with a literal passport number was brute
    # forced from its template in seconds.
    reader = Reader(deployment)
    someone = deployment.facts.foreigners[14]
    query = f'{{ checkForeigner(documentNumber: "{someone["passport_number"]}") {{ registered }} }}'
    reader.gql(query)
    (entry,) = reader.entries()
    assert entry["document_hash"] != hashlib.sha256(query.encode()).hexdigest()
    assert entry["document_hash"] == document_hash(query)
