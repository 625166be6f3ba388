"""The default visibility table of SPEC.md, cell by cell, over real HTTP, on SQLite and
PostgreSQL. Privacy assertions read the raw response bytes, not only parsed fields."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import CITY, SETIABUDI, TEBET, Deployment

FOREIGNER_FIELDS = """
  id fullName passportNumber birthDate photoUrl permitNumber nationality sex ageBand
  permitType permitStatus permitExpiresOn sponsorType
  permits { id number permitType status issuedOn expiresOn sponsorType sponsorName }
  residence { id streetAddress latitude longitude areaCode kecamatanCode rtCode
              area { code name level } }
  residenceHistory { streetAddress areaCode }
"""
LIST = "query($after: String) { foreigners(first: 1000, after: $after) { totalCount " \
       f"pageInfo {{ endCursor hasNextPage }} nodes {{ {FOREIGNER_FIELDS} }} }} }}"
ONE = f"query($id: ID!) {{ foreigner(id: $id) {{ {FOREIGNER_FIELDS} }} }}"
REPORTS = """{ reports(first: 1000) { nodes { id receiptCode category text areaCode status
  reporterContact createdAt area { code } foreigner { id fullName nationality }
  assignedOfficer { id name } } } }"""
ACTIVITIES = """{ activities(first: 1000) { nodes { id kind occurredAt areaCode latitude
  longitude notes jointOperation officer { id name } subject { id fullName nationality }
  report { id } } } }"""
AREAS = "{ areas { code level foreignerCount byNationality { key count } } }"

NON_IMMIGRATION = ["setiabudi_police", "tebet_police", "city_police", "setiabudi_military",
                   "tebet_district", "setiabudi_district", "rt_head", "public", "auditor",
                   "other_office_officer"]


def identity_values(d: Deployment) -> list[str]:
    facts = d.facts
    values = [f["full_name"] for f in facts.foreigners]
    values += [f["passport_number"] for f in facts.foreigners]
    values += [f["birth_date"].isoformat() for f in facts.foreigners]
    values += [n for numbers in facts.permit_numbers.values() for n in numbers]
    values += [r["reporter_contact"] for r in facts.reports if r["reporter_contact"]]
    return values


def street_addresses(d: Deployment) -> list[str]:
    return [r["street_address"] for r in d.facts.current_by_foreigner.values()]


def every_response(d: Deployment, persona: str) -> list[bytes]:
    """Every read path a persona could take, raw bytes."""
    sample = [str(f["id"]) for f in d.facts.foreigners[:40]]
    bodies = [d.post(LIST, persona).content, d.post(REPORTS, persona).content,
              d.post(ACTIVITIES, persona).content, d.post(AREAS, persona).content]
    bodies += [d.post(ONE, persona, {"id": fid}).content for fid in sample]
    reps = [{"__typename": "Foreigner", "id": fid} for fid in sample]
    entities = ("query($r: [_Any!]!) { _entities(representations: $r) "
                f"{{ ... on Foreigner {{ {FOREIGNER_FIELDS} }} }} }}")
    bodies.append(d.post(entities, persona, {"r": reps}).content)
    return bodies


def errors_of(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


def list_ids(d: Deployment, persona: str) -> set[int]:
    body = d.gql("{ foreigners(first: 1000) { nodes { id } } }", persona)
    return {int(n["id"]) for n in body["data"]["foreigners"]["nodes"]}


# -- identity ------------------------------------------------------------------


@pytest.mark.parametrize("persona", NON_IMMIGRATION)
def test_no_identity_value_in_any_response(deployment: Deployment, persona: str) -> None:
    secrets = identity_values(deployment)
    for raw in every_response(deployment, persona):
        text = raw.decode()
        leaked = [s for s in secrets if s in text]
        assert not leaked, f"{persona} saw identity data: {leaked[:3]}"


def test_identity_is_visible_as_immigration_officer(deployment: Deployment) -> None:
    raw = deployment.post(LIST, "immigration_officer").content.decode()
    first = deployment.facts.foreigners[0]
    assert first["full_name"] in raw
    assert first["passport_number"] in raw


def test_foreigner_name_is_null_as_police(deployment: Deployment) -> None:
    body = deployment.gql(LIST, "setiabudi_police")
    nodes = body["data"]["foreigners"]["nodes"]
    assert nodes
    for node in nodes:
        assert node["fullName"] is None and node["passportNumber"] is None
        assert node["birthDate"] is None and node["photoUrl"] is None
        assert node["permitNumber"] is None and node["permits"] is None
        assert node["nationality"] and node["permitType"] and node["ageBand"]
        assert node["residence"]["streetAddress"]
    redacted = body["extensions"]["redacted"]["Foreigner"]
    assert {"fullName", "passportNumber", "birthDate", "photoUrl", "permitNumber"} <= set(redacted)


@pytest.mark.parametrize("persona", ["tebet_district", "setiabudi_district"])
def test_street_address_and_geo_are_null_as_district(deployment: Deployment, persona: str
                                                     ) -> None:
    response = deployment.post(LIST, persona)
    body = response.json()
    nodes = body["data"]["foreigners"]["nodes"]
    assert nodes
    for node in nodes:
        residence = node["residence"]
        assert residence["streetAddress"] is None
        assert residence["latitude"] is None and residence["longitude"] is None
        assert residence["areaCode"] and residence["kecamatanCode"]
        assert node["nationality"] and node["permitStatus"]
    text = response.content.decode()
    assert not [a for a in street_addresses(deployment) if a in text]
    assert "streetAddress" in body["extensions"]["redacted"]["Residence"]


def test_residence_history_is_immigration_only(deployment: Deployment) -> None:
    police = deployment.gql(LIST, "setiabudi_police")["data"]["foreigners"]["nodes"]
    assert all(n["residenceHistory"] is None for n in police)
    officer = deployment.gql(LIST, "immigration_officer")["data"]["foreigners"]["nodes"]
    assert any(len(n["residenceHistory"]) > 1 for n in officer)


# -- row scope -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "area"),
    [("setiabudi_police", SETIABUDI), ("tebet_police", TEBET), ("city_police", CITY),
     ("setiabudi_military", SETIABUDI), ("tebet_district", TEBET)],
)
def test_only_foreigners_living_in_jurisdiction(deployment: Deployment, persona: str,
                                                area: str) -> None:
    expected = deployment.facts.in_area(area)
    assert expected
    assert list_ids(deployment, persona) == expected
    total = deployment.gql("{ foreigners { totalCount } }", persona)
    assert total["data"]["foreigners"]["totalCount"] == len(expected)


def test_whole_office_as_immigration_officer(deployment: Deployment) -> None:
    assert list_ids(deployment, "immigration_officer") == {
        f["id"] for f in deployment.facts.foreigners}


def test_nothing_of_this_office_as_immigration_officer_of_another_office(
    deployment: Deployment,
) -> None:
    persona = "other_office_officer"
    assert list_ids(deployment, persona) == set()
    assert report_ids(deployment, persona) == set()
    assert deployment.gql("{ areas { code } }", persona)["data"]["areas"] == []
    someone = deployment.facts.foreigners[0]
    check = deployment.gql('query($n: String!) { checkForeigner(documentNumber: $n) '
                           '{ registered } }', persona, n=someone["passport_number"])
    assert check["data"]["checkForeigner"] == {"registered": False}


def test_out_of_scope_foreigner_answers_like_a_missing_one_as_police(deployment: Deployment
                                                                      ) -> None:
    outside = min(deployment.facts.in_area(TEBET))
    missing = 10_000_000
    a = deployment.post(ONE, "setiabudi_police", {"id": str(outside)})
    b = deployment.post(ONE, "setiabudi_police", {"id": str(missing)})
    assert a.status_code == b.status_code == 200
    assert a.content == b.content == b'{"data":{"foreigner":null}}'


def test_area_filter_outside_jurisdiction_returns_nothing_as_police(deployment: Deployment
                                                                     ) -> None:
    body = deployment.gql('{ foreigners(filter: {areaCode: "31.74.01"}) { totalCount } }',
                          "setiabudi_police")
    assert body["data"]["foreigners"]["totalCount"] == 0


def test_cursor_pagination_walks_every_row_once_as_police(deployment: Deployment) -> None:
    seen: list[int] = []
    after = None
    while True:
        body = deployment.gql(
            "query($after: String) { foreigners(first: 37, after: $after, "
            "orderBy: PERMIT_EXPIRES_ON) { pageInfo { endCursor hasNextPage } nodes { id } } }",
            "setiabudi_police", after=after)
        page = body["data"]["foreigners"]
        seen += [int(n["id"]) for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen))
    assert set(seen) == deployment.facts.in_area(SETIABUDI)


# -- roles that see no foreigner rows -------------------------------------------


@pytest.mark.parametrize("persona", ["rt_head", "public", "auditor"])
def test_foreigner_lists_are_forbidden(deployment: Deployment, persona: str) -> None:
    for query in ("{ foreigners { totalCount } }", '{ foreigner(id: "1") { id } }'):
        body = deployment.gql(query, persona)
        assert errors_of(body) == ["FORBIDDEN"]
        assert body["data"] is None or all(v is None for v in body["data"].values())


# -- side channels ---------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    ['{ foreigners(filter: {name: "an"}) { totalCount } }',
     '{ foreigners(filter: {documentNumber: "PB4806026"}) { totalCount } }',
     '{ checkForeigner(documentNumber: "PB4806026") { registered } }'],
)
@pytest.mark.parametrize("persona", ["setiabudi_police", "setiabudi_military",
                                     "tebet_district"])
def test_filtering_by_identity_is_forbidden(deployment: Deployment, persona: str,
                                            query: str) -> None:
    body = deployment.gql(query, persona)
    assert errors_of(body) == ["FORBIDDEN"]
    assert body["data"] is None or all(v is None for v in body["data"].values())


def test_profile_filters_are_allowed_as_district(deployment: Deployment) -> None:
    body = deployment.gql(
        '{ foreigners(filter: {nationality: "CHN", permitType: KITAS}) '
        "{ totalCount nodes { nationality permitType } } }", "tebet_district")
    assert "errors" not in body
    nodes = body["data"]["foreigners"]["nodes"]
    assert all(n["nationality"] == "CHN" and n["permitType"] == "KITAS" for n in nodes)


def test_check_foreigner_by_passport_and_permit_as_immigration(deployment: Deployment) -> None:
    someone = deployment.facts.foreigners[3]
    permit = deployment.facts.permit_numbers[someone["id"]][0]
    query = "query($n: String!) { checkForeigner(documentNumber: $n) " \
            "{ registered foreigner { id fullName } } }"
    for number in (someone["passport_number"], permit):
        found = deployment.gql(query, "immigration_officer", n=number)["data"]["checkForeigner"]
        assert found == {"registered": True,
                         "foreigner": {"id": str(someone["id"]), "fullName": someone["full_name"]}}
    missing = deployment.gql(query, "immigration_officer", n="ZZ0000000")
    assert missing["data"]["checkForeigner"] == {"registered": False, "foreigner": None}


# -- counts ---------------------------------------------------------------------

COUNT = "query($c: String!) { area(code: $c) { code foreignerCount " \
        "byNationality { key count } byPermitType { key count } } }"


def test_counts_for_own_jurisdiction_as_police(deployment: Deployment) -> None:
    area = deployment.gql(COUNT, "setiabudi_police", c=SETIABUDI)["data"]["area"]
    expected = deployment.facts.in_area(SETIABUDI)
    assert area["foreignerCount"] == len(expected)
    assert sum(b["count"] for b in area["byNationality"]) == len(expected)
    assert sum(b["count"] for b in area["byPermitType"]) == len(expected)
    assert deployment.gql(COUNT, "setiabudi_police", c=TEBET)["data"]["area"] is None
    assert deployment.gql(COUNT, "setiabudi_police", c=CITY)["data"]["area"] is None


def test_counts_for_own_kecamatan_as_district(deployment: Deployment) -> None:
    area = deployment.gql(COUNT, "tebet_district", c=TEBET)["data"]["area"]
    assert area["foreignerCount"] == len(deployment.facts.in_area(TEBET))
    assert deployment.gql(COUNT, "tebet_district", c=SETIABUDI)["data"]["area"] is None


def test_count_only_as_rt_head(deployment: Deployment) -> None:
    rt = deployment.facts.busiest_setiabudi_rt
    body = deployment.gql(COUNT, "rt_head", c=rt)
    area = body["data"]["area"]
    assert area["foreignerCount"] == len(deployment.facts.in_area(rt))
    assert area["byNationality"] is None and area["byPermitType"] is None
    assert set(body["extensions"]["redacted"]["Area"]) >= {"byNationality", "byPermitType"}
    rw = rt.rsplit(".", 1)[0]
    assert deployment.gql(COUNT, "rt_head", c=rw)["data"]["area"] is None
    areas = deployment.gql("{ areas { code } }", "rt_head")["data"]["areas"]
    assert [a["code"] for a in areas] == [rt]


def test_public_sees_kecamatan_totals_only(deployment: Deployment) -> None:
    body = deployment.gql(AREAS, "public")
    areas = body["data"]["areas"]
    assert len(areas) == 10
    assert {a["level"] for a in areas} == {"KECAMATAN"}
    for area in areas:
        expected = len(deployment.facts.in_area(area["code"]))
        assert area["foreignerCount"] == (expected if expected >= 5 else None)
        assert area["byNationality"] is None
    for code in (CITY, deployment.facts.busiest_setiabudi_rt):
        assert deployment.gql(COUNT, "public", c=code)["data"]["area"] is None


# -- reports --------------------------------------------------------------------


def report_ids(d: Deployment, persona: str) -> set[int]:
    body = d.gql("{ reports(first: 1000) { nodes { id } } }", persona)
    return {int(n["id"]) for n in body["data"]["reports"]["nodes"]}


def test_reports_in_jurisdiction_without_contact_as_police(deployment: Deployment) -> None:
    expected = {r["id"] for r in deployment.facts.reports
                if r["kecamatan_code"] == SETIABUDI}
    assert report_ids(deployment, "setiabudi_police") >= expected
    body = deployment.gql(REPORTS, "setiabudi_police")
    for node in body["data"]["reports"]["nodes"]:
        assert node["reporterContact"] is None and node["foreigner"] is None
        assert node["receiptCode"] is None
        assert node["category"] and node["status"] and node["areaCode"].startswith(SETIABUDI)


def test_own_submitted_reports_only_as_district(deployment: Deployment) -> None:
    by_district = [r for r in deployment.facts.reports
                   if r["submitted_by"] and r["submitted_by"].count(".") == 2]
    assert by_district
    subject = by_district[0]["submitted_by"]
    kecamatan = subject.split(":")[2]  # dev:ROLE:AREA:OFFICER
    expected = {r["id"] for r in deployment.facts.reports if r["submitted_by"] == subject}
    token = deployment.token_for("district", kecamatan)
    body = deployment.post("{ reports(first: 1000) { nodes { id } } }", token=token).json()
    assert {int(n["id"]) for n in body["data"]["reports"]["nodes"]} == expected


def test_own_submitted_reports_only_as_rt_head(deployment: Deployment) -> None:
    by_rt_head = [r for r in deployment.facts.reports
                  if r["submitted_by"] and r["submitted_by"].count(".") == 5]
    assert by_rt_head
    subject = by_rt_head[0]["submitted_by"]
    expected = {r["id"] for r in deployment.facts.reports if r["submitted_by"] == subject}
    token = deployment.token_for("neighbourhood", subject.split(":")[2])
    body = deployment.post(REPORTS, token=token).json()
    nodes = body["data"]["reports"]["nodes"]
    seeded = {r["id"] for r in deployment.facts.reports}
    seen = {int(n["id"]) for n in nodes}
    # Reports other tests submit as this RT head are theirs too; seeded ones of others never.
    assert seen & seeded == expected
    for node in nodes:
        assert node["receiptCode"] and node["reporterContact"] is None
        assert node["foreigner"] is None and node["assignedOfficer"] is None


def test_reports_are_forbidden_as_public(deployment: Deployment) -> None:
    assert errors_of(deployment.gql(REPORTS, "public")) == ["FORBIDDEN"]


def test_report_status_by_receipt_code_as_public(deployment: Deployment) -> None:
    report = deployment.facts.reports[0]
    body = deployment.gql("query($c: String!) { reportStatus(receiptCode: $c) "
                          "{ receiptCode status } }", "public", c=report["receipt_code"])
    assert body["data"]["reportStatus"] == {"receiptCode": report["receipt_code"],
                                            "status": report["status"].upper()}


# -- activities -----------------------------------------------------------------


def activity_ids(d: Deployment, persona: str) -> set[int]:
    body = d.gql("{ activities(first: 1000) { nodes { id } } }", persona)
    return {int(n["id"]) for n in body["data"]["activities"]["nodes"]}


def test_own_activities_only_as_immigration_officer(deployment: Deployment) -> None:
    expected = {a["id"] for a in deployment.facts.activities if a["officer_id"] == 1}
    assert expected and activity_ids(deployment, "immigration_officer") >= expected
    body = deployment.gql(ACTIVITIES, "immigration_officer")
    assert {n["officer"]["id"] for n in body["data"]["activities"]["nodes"]} == {"1"}


def test_all_activities_with_geo_as_supervisor(deployment: Deployment) -> None:
    seeded = {a["id"] for a in deployment.facts.activities}
    assert activity_ids(deployment, "immigration_supervisor") >= seeded
    nodes = deployment.gql(ACTIVITIES, "immigration_supervisor")["data"]["activities"]["nodes"]
    assert any(n["latitude"] is not None for n in nodes)


def test_joint_operations_without_subject_or_geo_as_police(deployment: Deployment) -> None:
    expected = {a["id"] for a in deployment.facts.activities
                if a["joint_operation"] and a["kecamatan_code"] == SETIABUDI}
    assert expected
    assert activity_ids(deployment, "setiabudi_police") >= expected
    body = deployment.gql(ACTIVITIES, "setiabudi_police")
    for node in body["data"]["activities"]["nodes"]:
        # No linking: coarsened by pools, a record may be shown at an area enclosing
        # Setiabudi (the city), or withheld; never at an area beside it.
        code = node["areaCode"]
        assert node["jointOperation"] is True
        assert code is None or code.startswith(SETIABUDI) or SETIABUDI.startswith(code + ".")
        assert node["subject"] is None and node["latitude"] is None
        assert node["longitude"] is None and node["notes"] is None


@pytest.mark.parametrize("persona", ["tebet_district", "rt_head", "public", "auditor"])
def test_activities_are_forbidden(deployment: Deployment, persona: str) -> None:
    assert errors_of(deployment.gql(ACTIVITIES, persona)) == ["FORBIDDEN"]


def test_each_operation_of_a_batch_reports_only_its_own_redactions_as_police(
    deployment: Deployment,
) -> None:
    # The operations of a batch share one request context and run concurrently.
    batch = [{"query": "{ foreigners(first: 2) { nodes { id fullName } } }"},
             {"query": "{ foreigners(first: 2) { nodes { id nationality } } }"}]
    response = deployment.client.post(
        f"{deployment.base_url}/graphql", json=batch,
        headers={"authorization": f"Bearer {deployment.token('setiabudi_police')}"})
    assert response.status_code == 200
    with_name, without = response.json()
    assert with_name["extensions"]["redacted"] == {"Foreigner": ["fullName"]}
    assert "extensions" not in without
    assert response.content.count(b'"fullName":null') == 2
