"""Consistent output values (issue 12 §4): a field with a fixed set of values is a GraphQL
enum, the same enum its filters and inputs take; every DateTime carries its offset (UTC)."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

from conftest import SETIABUDI, Deployment, on_db
from sqlalchemy import select

from resolvers.models import OfficerActivity

# (type, field) -> the enum its values come from, and the argument or input field taking it.
OUTPUT_ENUMS = {
    ("Foreigner", "sex"): "Sex",
    ("Foreigner", "ageBand"): "AgeBand",
    ("Foreigner", "permitType"): "PermitType",
    ("Foreigner", "permitStatus"): "PermitStatus",
    ("Foreigner", "sponsorType"): "SponsorType",
    ("StayPermit", "permitType"): "PermitType",
    ("StayPermit", "status"): "PermitStatus",
    ("StayPermit", "sponsorType"): "SponsorType",
    ("Area", "level"): "AreaLevel",
    ("Report", "category"): "ReportCategory",
    ("Report", "status"): "ReportState",
    ("ReportStatus", "status"): "ReportState",
    ("ReportReceipt", "status"): "ReportState",
    ("Activity", "kind"): "ActivityKind",
}
INPUTS = {
    ("ForeignerFilterInput", "permitType"): ("Foreigner", "permitType"),
    ("ForeignerFilterInput", "permitStatus"): ("Foreigner", "permitStatus"),
    ("SubmitReportInput", "category"): ("Report", "category"),
    ("UpdateReportInput", "status"): ("Report", "status"),
    ("RecordActivityInput", "kind"): ("Activity", "kind"),
}
ARGUMENTS = {
    ("Query", "areas", "level"): ("Area", "level"),
    ("Query", "reports", "status"): ("Report", "status"),
    ("Query", "reports", "category"): ("Report", "category"),
    ("Subscription", "reportUpdated", "status"): ("Report", "status"),
}
ENUM_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
UTC_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00")

TYPES = """{ __schema { types { name kind enumValues { name }
  fields { name type { kind name ofType { kind name ofType { name } } }
           args { name type { name ofType { name } } } }
  inputFields { name type { name ofType { name } } } } } }"""

SUPERVISOR_VIEW = """query ($area: String!) {
  foreigners(first: 40, filter: {areaCode: $area}) { nodes { id sex ageBand permitType
    permitStatus sponsorType permits { permitType status sponsorType } } }
  areas(level: KELURAHAN, parentCode: $area) { code level }
  reports(first: 40) { nodes { id category status createdAt updatedAt } }
  activities(first: 40) { nodes { id kind occurredAt } }
}"""


def _named(type_ref: dict[str, Any]) -> str:
    while type_ref.get("name") is None:
        type_ref = type_ref["ofType"]
    return type_ref["name"]


def _schema_types(deployment: Deployment) -> dict[str, dict[str, Any]]:
    body = deployment.gql(TYPES, "immigration_supervisor")
    assert "errors" not in body, body
    return {t["name"]: t for t in body["data"]["__schema"]["types"]}


def test_fixed_value_fields_are_the_enums_their_inputs_take(deployment: Deployment) -> None:
    types = _schema_types(deployment)

    def output(type_name: str, field_name: str) -> str:
        field = next(f for f in types[type_name]["fields"] if f["name"] == field_name)
        return _named(field["type"])

    for (type_name, field_name), enum in OUTPUT_ENUMS.items():
        assert output(type_name, field_name) == enum, (type_name, field_name)
        assert types[enum]["kind"] == "ENUM"
        assert all(ENUM_NAME.fullmatch(v["name"]) for v in types[enum]["enumValues"]), enum
    for (input_name, field_name), (type_name, output_field) in INPUTS.items():
        given = next(f for f in types[input_name]["inputFields"] if f["name"] == field_name)
        assert _named(given["type"]) == output(type_name, output_field), (input_name, field_name)
    for (root, field_name, argument), (type_name, output_field) in ARGUMENTS.items():
        field = next(f for f in types[root]["fields"] if f["name"] == field_name)
        arg = next(a for a in field["args"] if a["name"] == argument)
        assert _named(arg["type"]) == output(type_name, output_field), (field_name, argument)


def test_outputs_are_enum_names_and_utc_times_as_supervisor(deployment: Deployment) -> None:
    types = _schema_types(deployment)
    names = {enum: {v["name"] for v in types[enum]["enumValues"]}
             for enum in set(OUTPUT_ENUMS.values())}
    body = deployment.gql(SUPERVISOR_VIEW, "immigration_supervisor", area=SETIABUDI)
    assert "errors" not in body, body
    data = body["data"]
    seen: dict[str, set[str]] = {}

    def check(type_name: str, record: dict[str, Any]) -> None:
        for field_name, value in record.items():
            enum = OUTPUT_ENUMS.get((type_name, field_name))
            if enum is not None:
                assert value in names[enum], (type_name, field_name, value)
                seen.setdefault(enum, set()).add(value)

    for node in data["foreigners"]["nodes"]:
        check("Foreigner", node)
        for permit in node["permits"]:
            check("StayPermit", permit)
    for area in data["areas"]:
        check("Area", area)
    times = []
    for report in data["reports"]["nodes"]:
        check("Report", report)
        times += [report["createdAt"], report["updatedAt"]]
    for activity in data["activities"]["nodes"]:
        check("Activity", activity)
        times.append(activity["occurredAt"])
    # Every enum of the view was sent (not vacuous), as the stored value's name.
    assert set(seen) == set(names)
    assert seen["AreaLevel"] == {"KELURAHAN"}
    stored_sex = {f["id"]: f["sex"] for f in deployment.facts.foreigners}
    for node in data["foreigners"]["nodes"]:
        assert node["sex"] == {"M": "MALE", "F": "FEMALE"}[stored_sex[int(node["id"])]]
    stored_kind = {a["id"]: a["kind"] for a in deployment.facts.activities}
    for node in data["activities"]["nodes"]:
        assert node["kind"] == stored_kind[int(node["id"])].upper()
    times = [t for t in times if t is not None]
    assert times
    assert all(UTC_TIME.fullmatch(t) for t in times), times[:5]
    stored_at = {a["id"]: a["occurred_at"] for a in deployment.facts.activities}
    for node in data["activities"]["nodes"]:
        stored = stored_at[int(node["id"])]
        stored = stored if stored.tzinfo else stored.replace(tzinfo=dt.UTC)
        assert dt.datetime.fromisoformat(node["occurredAt"]) == stored


def test_an_output_value_is_taken_back_as_a_filter_as_supervisor(
    deployment: Deployment,
) -> None:
    first = deployment.gql("{ reports(first: 1) { nodes { id status category } } }",
                           "immigration_supervisor")["data"]["reports"]["nodes"][0]
    query = """query ($s: ReportState, $c: ReportCategory) {
      reports(status: $s, category: $c, first: 100) { nodes { status category } } }"""
    body = deployment.gql(query, "immigration_supervisor", s=first["status"],
                          c=first["category"])
    assert "errors" not in body, body
    nodes = body["data"]["reports"]["nodes"]
    assert nodes and all(n == {"status": first["status"], "category": first["category"]}
                         for n in nodes)


def test_areas_level_is_an_enum_as_public(deployment: Deployment) -> None:
    body = deployment.gql("{ areas(level: KECAMATAN) { level } }", "public")
    assert "errors" not in body, body
    assert {a["level"] for a in body["data"]["areas"]} == {"KECAMATAN"}
    body = deployment.gql('{ areas(level: "kecamatan") { level } }', "public")
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["GRAPHQL_VALIDATION_FAILED"]


RECORD = """mutation ($input: RecordActivityInput!) {
  recordActivity(input: $input) { id kind occurredAt } }"""


def test_a_time_with_an_offset_is_stored_as_that_instant_as_immigration_officer(
    deployment: Deployment,
) -> None:
    body = deployment.gql(RECORD, "immigration_officer", input={
        "kind": "DOCUMENT_CHECK", "areaCode": deployment.facts.busiest_setiabudi_rt,
        "notes": f"offset test {uuid.uuid4().hex[:8]}",
        "occurredAt": "2026-11-30T09:15:00+07:00"})
    assert "errors" not in body, body
    activity = body["data"]["recordActivity"]
    assert activity["kind"] == "DOCUMENT_CHECK"
    assert activity["occurredAt"] == "2026-11-30T02:15:00+00:00"
    # As stored (the mutation's answer is read back from the database too): that instant.
    stored = on_db(deployment.database_url, lambda db: db.scalar(
        select(OfficerActivity.occurred_at).where(OfficerActivity.id == int(activity["id"]))))
    stored = stored if stored.tzinfo else stored.replace(tzinfo=dt.UTC)
    assert stored == dt.datetime(2026, 11, 30, 2, 15, tzinfo=dt.UTC)
