"""No linking (SPEC rule 7; issue 8, section 2), over real HTTP on SQLite and PostgreSQL.

The finding: police read the RT of a joint activity or a report, listed the foreigners of
that RT, and where it held one, that row was the activity's hidden subject or the report's
hidden linked foreigner — with nationality and street address. A home visit's geo point is
the subject's home. Now every role that may not read such a link sees where the record lies
no finer than the smallest enclosing area where K foreigners live (policies/main.polar,
location_k_minimum), no geo point, and the free text only where the record's own area
holds K. Privacy assertions read the raw response bytes.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import SETIABUDI, Deployment, run_async
from sqlalchemy import delete, event
from sqlalchemy.ext.asyncio import create_async_engine

from resolvers.models import OfficerActivity

K = 5  # location_k_minimum of reports.polar and activities.polar
PARTNERS = ["setiabudi_police", "setiabudi_military"]

REPORTS = """{ reports(first: 1000) { nodes { id areaCode text createdAt
  area { code name foreignerCount } foreigner { id } } } }"""
ACTIVITIES = """{ activities(first: 1000) { nodes { id kind occurredAt areaCode latitude
  longitude notes officer { id } area { code name foreignerCount } subject { id } } } }"""
RECORD = """mutation($input: RecordActivityInput!) {
  recordActivity(input: $input) { id areaCode latitude notes area { code } } }"""
MARKER_PREFIX = "sisada-no-linking-test-"


@pytest.fixture(scope="module", autouse=True)
def _leave_the_seeded_data_as_found(deployment: Deployment) -> Iterator[None]:
    yield

    async def delete_fresh_rows() -> None:
        engine = create_async_engine(deployment.database_url)
        try:
            async with engine.begin() as conn:
                await conn.execute(delete(OfficerActivity).where(
                    OfficerActivity.notes.startswith(MARKER_PREFIX)))
        finally:
            await engine.dispose()

    run_async(delete_fresh_rows())


# -- what the seeded data holds -------------------------------------------------------


def _exact(row: dict[str, Any]) -> str:
    return row["rt_code"] or row["rw_code"] or row["kelurahan_code"]


def _within(code: str, area: str) -> bool:
    return code == area or code.startswith(area + ".")


def residents(d: Deployment, area: str) -> int:
    """Foreigners whose current residence lies in the area."""
    return sum(1 for r in d.facts.current_by_foreigner.values() if _within(_exact(r), area))


def _small(d: Deployment, row: dict[str, Any]) -> bool:
    """The record's own area holds fewer than K foreigners: its exact place singles out."""
    return residents(d, _exact(row)) < K


def _facts(d: Deployment, kind: str) -> dict[int, dict[str, Any]]:
    rows = d.facts.reports if kind == "reports" else d.facts.activities
    return {r["id"]: r for r in rows}


def _nodes(body: dict[str, Any], root: str) -> list[dict[str, Any]]:
    assert "errors" not in body, body
    return body["data"][root]["nodes"]


def _assert_coarsened(d: Deployment, node: dict[str, Any], row: dict[str, Any]) -> None:
    code = node["areaCode"]
    assert code is not None and _within(_exact(row), code), (node, _exact(row))
    assert residents(d, code) >= K, f"{code} holds {residents(d, code)} < {K} foreigners"
    assert node["area"] is None or node["area"]["code"] == code


# -- every read path: lists, single records, mutation results -------------------------


@pytest.mark.parametrize("persona", PARTNERS)
def test_report_locations_hold_k_foreigners_as(deployment: Deployment, persona: str) -> None:
    response = deployment.post(REPORTS, persona)
    body = response.json()
    facts = _facts(deployment, "reports")
    seen = [n for n in _nodes(body, "reports") if int(n["id"]) in facts]
    coarsened = 0
    for node in seen:
        row = facts[int(node["id"])]
        _assert_coarsened(deployment, node, row)
        if node["areaCode"] != _exact(row):
            coarsened += 1
            # Reporters name the place ("RT 003/RW 02, Kelurahan …"): the text is withheld.
            assert node["text"] is None
            assert "text" in body["extensions"]["redacted"]["Report"]
        elif node["text"] is not None:
            assert node["text"] == row["text"]
    assert seen and coarsened, "the seeded Setiabudi reports include small RTs"
    small = {_exact(r) for r in facts.values()
             if r["kecamatan_code"] == SETIABUDI and _small(deployment, r)}
    raw = response.content.decode()
    assert small and not [code for code in small if f'"{code}"' in raw]


@pytest.mark.parametrize("persona", PARTNERS)
def test_joint_activity_locations_hold_k_foreigners_without_geo_as(
    deployment: Deployment, persona: str
) -> None:
    response = deployment.post(ACTIVITIES, persona)
    facts = _facts(deployment, "activities")
    seen = [n for n in _nodes(response.json(), "activities") if int(n["id"]) in facts]
    assert seen
    for node in seen:
        _assert_coarsened(deployment, node, facts[int(node["id"])])
        assert node["latitude"] is None and node["longitude"] is None
    raw = response.content.decode()
    small = {_exact(a) for a in facts.values()
             if a["joint_operation"] and a["kecamatan_code"] == SETIABUDI
             and _small(deployment, a)}
    assert small and not [code for code in small if f'"{code}"' in raw]
    points = [str(a["latitude"]) for a in facts.values() if a["latitude"] is not None]
    assert not [p for p in points if p in raw]


def test_a_single_report_is_coarsened_as_police(deployment: Deployment) -> None:
    facts = _facts(deployment, "reports")
    lone = [r for r in facts.values() if r["kecamatan_code"] == SETIABUDI
            and r["foreigner_id"] and residents(deployment, _exact(r)) == 1]
    assert lone, "the seeded data has a linked report in an RT of one foreigner"
    for row in lone:
        response = deployment.post(
            "query($id: ID!) { report(id: $id) { id areaCode text area { code name } } }",
            "setiabudi_police", {"id": str(row["id"])})
        node = response.json()["data"]["report"]
        _assert_coarsened(deployment, node, row)
        assert _exact(row).encode() not in response.content
        assert row["text"].encode() not in response.content


def test_immigration_sees_exact_locations(deployment: Deployment) -> None:
    facts = _facts(deployment, "reports")
    for node in _nodes(deployment.gql(REPORTS, "immigration_officer"), "reports"):
        if int(node["id"]) in facts:
            row = facts[int(node["id"])]
            assert node["areaCode"] == _exact(row) and node["text"] == row["text"]
    facts = _facts(deployment, "activities")
    for node in _nodes(deployment.gql(ACTIVITIES, "immigration_supervisor"), "activities"):
        if int(node["id"]) in facts:
            row = facts[int(node["id"])]
            assert node["areaCode"] == _exact(row) and node["latitude"] == row["latitude"]


def _lone_resident(d: Deployment) -> dict[str, Any]:
    """The current residence of a Setiabudi foreigner who lives alone in their RT."""
    by_rt: dict[str, list[dict[str, Any]]] = {}
    for r in d.facts.current_by_foreigner.values():
        if r["kecamatan_code"] == SETIABUDI and r["rt_code"]:
            by_rt.setdefault(r["rt_code"], []).append(r)
    return next(rs[0] for _code, rs in sorted(by_rt.items()) if len(rs) == 1)


def _record(d: Deployment, **values: Any) -> dict[str, Any]:
    notes = f"{MARKER_PREFIX}{uuid.uuid4().hex}"
    body = d.gql(RECORD, "immigration_officer", input={"jointOperation": True,
                                                       "notes": notes, **values})
    assert "errors" not in body, body
    return body["data"]["recordActivity"]


def test_a_home_visit_to_a_lone_resident_does_not_single_them_out_as_police(
    deployment: Deployment,
) -> None:
    """The issue's attack, replayed: a joint home visit to the only foreigner of an RT."""
    home = _lone_resident(deployment)
    recorded = _record(deployment, kind="HOME_VISIT", areaCode=home["rt_code"],
                       subjectForeignerId=str(home["foreigner_id"]),
                       latitude=home["latitude"], longitude=home["longitude"])
    # The officer who recorded it may read the subject: the exact place.
    assert recorded["areaCode"] == home["rt_code"] and recorded["latitude"] is not None
    response = deployment.post(ACTIVITIES, "setiabudi_police")
    node = next(n for n in _nodes(response.json(), "activities") if n["id"] == recorded["id"])
    _assert_coarsened(deployment, node, home)
    assert node["areaCode"] != home["rt_code"] and node["notes"] is None
    for secret in (home["rt_code"], str(home["latitude"]), str(home["longitude"])):
        assert secret.encode() not in response.content
    # Listing the foreigners of the area shown no longer finds one person.
    listed = deployment.gql(
        "query($a: String!) { foreigners(filter: {areaCode: $a}) { totalCount } }",
        "setiabudi_police", a=node["areaCode"])
    assert listed["data"]["foreigners"]["totalCount"] >= K


def test_the_reidentification_attack_finds_nobody_as_police(deployment: Deployment) -> None:
    """For every linked report and joint activity police see, the foreigners listed in the
    area shown are at least K: the hidden link is one of K or more, never one alone."""
    reports = _facts(deployment, "reports")
    activities = _facts(deployment, "activities")
    shown: set[str] = set()
    vulnerable = 0
    for root, facts, link in (("reports", reports, "foreigner_id"),
                              ("activities", activities, "subject_foreigner_id")):
        query = REPORTS if root == "reports" else ACTIVITIES
        for node in _nodes(deployment.gql(query, "setiabudi_police"), root):
            row = facts.get(int(node["id"]))
            if row is None or not row[link]:
                continue
            vulnerable += residents(deployment, _exact(row)) == 1
            shown.add(node["areaCode"])
    assert vulnerable, "before the fix, some of these singled out their foreigner"
    for code in sorted(shown):
        body = deployment.gql(
            "query($a: String!) { foreigners(first: 1000, filter: {areaCode: $a}) "
            "{ totalCount nodes { id } } }", "setiabudi_police", a=code)
        assert body["data"]["foreigners"]["totalCount"] >= K, code


def test_a_record_older_than_every_resident_withholds_its_place_as_police(
    deployment: Deployment,
) -> None:
    """Residents who moved in after a record's day cannot be the person it concerns, so
    they do not count towards K: with nobody living there that early, nothing is shown."""
    earliest = min(r["valid_from"] for r in deployment.facts.current_by_foreigner.values())
    before = dt.datetime.combine(earliest - dt.timedelta(days=2), dt.time(12), dt.UTC)
    rt = deployment.facts.busiest_setiabudi_rt
    recorded = _record(deployment, kind="DOCUMENT_CHECK", areaCode=rt,
                       occurredAt=before.isoformat())
    assert recorded["areaCode"] == rt
    response = deployment.post(ACTIVITIES, "setiabudi_police")
    body = response.json()
    node = next(n for n in _nodes(body, "activities") if n["id"] == recorded["id"])
    assert node["areaCode"] is None and node["area"] is None
    assert {"areaCode", "area"} <= set(body["extensions"]["redacted"]["Activity"])


def test_reports_and_activities_take_no_area_argument(deployment: Deployment) -> None:
    """Filtering by area would narrow a record below the precision shown: there is no such
    argument. (Add one only at the caller's precision; see SECURITY.md, no linking.)"""
    body = deployment.gql('{ __type(name: "Query") { fields { name args { name } } } }',
                          "immigration_officer")
    args = {f["name"]: {a["name"] for a in f["args"]} for f in body["data"]["__type"]["fields"]}
    for root in ("reports", "activities", "report"):
        assert not {a for a in args[root] if "area" in a.lower()}, args[root]


# -- constant statements: coarsening is part of the page's one statement ---------------


def _statements(d: Deployment, query: str, first: int) -> tuple[int, int]:
    """(statements executed, nodes returned) for one request as city police."""
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = d.app.state.sisada.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        body = d.gql(query, "city_police", first=first)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert "errors" not in body, body
    root = next(iter(body["data"]))
    return len(statements), len(body["data"][root]["nodes"])


@pytest.mark.parametrize("root", ["reports", "activities"])
def test_coarsened_lists_cost_constant_statements_as_police(
    deployment: Deployment, root: str
) -> None:
    query = (f"query($first: Int!) {{ {root}(first: $first) {{ nodes {{ id areaCode "
             "area { name foreignerCount } } } }")
    _statements(deployment, query, 2)  # warm-up: pool connections
    few, few_nodes = _statements(deployment, query, 2)
    many, many_nodes = _statements(deployment, query, 20)
    assert few_nodes == 2 and many_nodes > 10
    # Counts are one GROUP BY per level of the areas shown (resolvers/loaders.py): coarsened
    # areas of a longer list may span more of the five levels, never more statements per row.
    assert few <= many <= few + 4 and many <= 8


# -- derived values change for everyone at once ---------------------------------------


def _band_on_new_year(birth: dt.date) -> str:
    """Age on 1 January of this year: the year's difference, less one unless born on 1/1."""
    age = dt.date.today().year - birth.year - (0 if (birth.month, birth.day) == (1, 1) else 1)
    if age < 18:
        return "under 18"
    if age >= 65:
        return "65+"
    low = 18 if age < 25 else age - (age - 25) % 10
    return f"{low}-{24 if low == 18 else low + 9}"


def test_age_band_is_as_of_the_first_of_january_as_police(deployment: Deployment) -> None:
    births = {f["id"]: f["birth_date"] for f in deployment.facts.foreigners}
    body = deployment.gql("{ foreigners(first: 1000) { nodes { id ageBand } } }",
                          "setiabudi_police")
    nodes = body["data"]["foreigners"]["nodes"]
    assert nodes
    for node in nodes:
        assert node["ageBand"] == _band_on_new_year(births[int(node["id"])])
