"""No linking (SPEC rule 7; issue 8, section 2), over real HTTP on SQLite and PostgreSQL.

The finding: police read the RT of a joint activity or a report, listed the foreigners of
that RT, and where it held one, that row was the activity's hidden subject or the report's
hidden linked foreigner — with nationality and street address. A home visit's geo point is
the subject's home. Then the review's elimination ("suppression inference"): an RW shown
meant an RT of it held fewer than K, and counting its RTs found which. Now every role that
may not read such a link sees where the record lies by pooled K (policies/main.polar,
location_k_minimum; resolvers/precision.py): an area whose residents, less those whose own
place would be shown as another area, are K. No geo point, and the free text only where
the record's own area is shown. Privacy assertions read the raw response bytes.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import SETIABUDI, Deployment, delete_marked_rows, run_async
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import create_async_engine

from policies.loader import LocationPrecision
from resolvers.models import OfficerActivity, Residence

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
    delete_marked_rows(deployment.database_url, MARKER_PREFIX)


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


# -- suppression inference: what the shown area leaves a reader to eliminate ----------
#
# The review's attack (issue: "suppression inference"): police read a report's areaCode (an
# RW, so its RT held fewer than K), then listed the RW's foreigners with `residence { rtCode
# validFrom }` and counted, per RT, who lived there by the report's day. RTs holding K
# would have been shown themselves, so they were struck off — and only one RT of the RW was
# left, with 3 people in it. The pooled rule (resolvers/precision.py) shows an area only
# where the residents left in it after that elimination are K. The rule is restated here
# independently, over every residence of the database (a reader who has watched the
# register over time knows who lived where on the day, movers-out included).

LEVELS = ("rt", "rw", "kelurahan", "kecamatan", "city")  # finest first


def _day(moment: dt.datetime) -> dt.date:
    return moment.astimezone(dt.UTC).date() if moment.tzinfo else moment.date()


def _chain(row: dict[str, Any]) -> list[tuple[str, str]]:
    return [(level, row[f"{level}_code"]) for level in LEVELS if row[f"{level}_code"]]


def _shown_by_pools(residences: list[dict[str, Any]], day: dt.date, k: int
                    ) -> tuple[dict[str, int], Any]:
    """The rule as of `day`: (the shown-pool size of every area, and a function giving the
    area shown for a chain of codes). Residents of the day (R: begun by the day, not ended
    by it) decide which areas resolve on their own; current residents of the day (C)
    fill the pools that are shown."""
    lived = [r for r in residences
             if r["valid_from"] <= day and (r["valid_to"] is None or r["valid_to"] > day)]
    resolved: set[str] = set()
    current_pool: dict[str, int] = {}
    for depth, level in enumerate(LEVELS):
        finer = LEVELS[:depth]
        day_pool: dict[str, int] = {}
        for r in lived:
            code = r[f"{level}_code"]
            if code is None or any(r[f"{f}_code"] in resolved for f in finer):
                continue
            day_pool[code] = day_pool.get(code, 0) + 1
            if r["valid_to"] is None:
                current_pool[code] = current_pool.get(code, 0) + 1
        resolved |= {code for code, n in day_pool.items() if n >= k}

    def shown(row: dict[str, Any]) -> str | None:
        return next((code for _l, code in _chain(row) if current_pool.get(code, 0) >= k), None)

    return current_pool, shown


def _shown_by_old_rule(residences: list[dict[str, Any]], day: dt.date, k: int) -> Any:
    """The rule the review broke: the smallest area where K current residents lived."""
    held: dict[str, int] = {}
    for r in residences:
        if r["valid_to"] is None and r["valid_from"] <= day:
            for _level, code in _chain(r):
                held[code] = held.get(code, 0) + 1
    return lambda row: next((c for _l, c in _chain(row) if held.get(c, 0) >= k), None)


def _candidates(residences: list[dict[str, Any]], day: dt.date, area: str,
                shown: Any) -> list[int]:
    """The reader's elimination: the current residents of the shown area (moved in by the
    day) whose own place would be shown as this same area; everyone else is struck off."""
    return [r["foreigner_id"] for r in residences
            if r["valid_to"] is None and r["valid_from"] <= day
            and _within(r["rt_code"] or r["rw_code"] or r["kelurahan_code"], area)
            and shown(r) == area]


def _all_residences(d: Deployment) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        engine = create_async_engine(d.database_url)
        try:
            async with engine.connect() as conn:
                return [dict(r) for r in (await conn.execute(select(Residence))).mappings()]
        finally:
            await engine.dispose()

    return run_async(read())


ELIMINATION_QUERIES = {
    "reports": ("{ reports(first: 1000) { nodes { id areaCode createdAt } } }", "createdAt"),
    "activities": ("{ activities(first: 1000) { nodes { id areaCode occurredAt } } }",
                   "occurredAt"),
}


@pytest.mark.parametrize("persona", ["setiabudi_police", "city_police"])
def test_elimination_leaves_k_candidates_for_every_record_as(
    deployment: Deployment, persona: str
) -> None:
    residences = _all_residences(deployment)
    assert any(r["valid_to"] is not None for r in residences), "the seed has movers"
    rules: dict[dt.date, tuple[Any, Any]] = {}
    checked = withheld = broken_before = 0
    for root, (query, day_field) in ELIMINATION_QUERIES.items():
        facts = _facts(deployment, root)
        for node in _nodes(deployment.gql(query, persona), root):
            row = facts.get(int(node["id"]))
            if row is None:  # a record a concurrent test created
                continue
            day = _day(dt.datetime.fromisoformat(node[day_field]))
            if day not in rules:
                rules[day] = (_shown_by_pools(residences, day, K)[1],
                              _shown_by_old_rule(residences, day, K))
            shown, old = rules[day]
            # The gateway follows the rule: the same area, or withheld where it is None.
            assert node["areaCode"] == shown(row), (root, node, _exact(row))
            if node["areaCode"] is None:
                withheld += 1
                continue
            checked += 1
            left = _candidates(residences, day, node["areaCode"], shown)
            assert len(left) >= K, (root, node["id"], node["areaCode"], left)
            old_area = old(row)
            if old_area and old_area != _exact(row):
                broken_before += len(_candidates(residences, day, old_area, old)) < K
    assert checked
    # The regression has teeth: under the old rule, this very attack singled out records.
    assert broken_before, "the old rule left fewer than K candidates for some record"


def test_a_record_only_gets_coarser_as_residents_move_out() -> None:
    """Pools shown count current residents, but which sub-areas resolve on their own is
    judged on the day's residents, movers-out included: an RT dropping below K never pours
    its residents into its RW's pool, so no other record of that RW becomes finer (two
    readings a day apart would intersect to the few residents of the record's RT). The
    statement itself, on a database of its own."""
    from resolvers.models import Base
    from resolvers.precision import activity_select

    day = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)
    kelurahan = "31.74.02.1001"
    rw, other = f"{kelurahan}.01", f"{kelurahan}.02"
    busy, small = f"{rw}.001", f"{rw}.002"
    homes = [busy] * 5 + [small] * 3 + [f"{rw}.003"] + [f"{other}.001"] * 6 \
        + [f"{other}.002"] * 3

    def located(rt: str) -> dict[str, str]:
        return {"rt_code": rt, "rw_code": rt[:-4], "kelurahan_code": rt[:-7],
                "kecamatan_code": rt[:-12], "city_code": rt[:5]}

    async def shown_before_and_after() -> tuple[str | None, str | None]:
        engine = create_async_engine("sqlite+aiosqlite://")
        statement = activity_select(LocationPrecision(k=K)).where(OfficerActivity.id == 1)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(Base.metadata.create_all)
                await conn.execute(Residence.__table__.insert(), [
                    {"id": n, "foreigner_id": n, "street_address": "-", "latitude": 0.0,
                     "longitude": 0.0, "valid_from": dt.date(2025, 1, 1), "valid_to": None,
                     **located(rt)} for n, rt in enumerate(homes, 1)])
                await conn.execute(OfficerActivity.__table__.insert(), [
                    {"id": 1, "officer_id": 1, "kind": "DOCUMENT_CHECK", "occurred_at": day,
                     "joint_operation": True, **located(small)}])
                before = (await conn.execute(statement)).mappings().one()["area_code"]
                # One resident of the busy RT moves out (since the record's day).
                await conn.execute(Residence.__table__.update()
                                   .where(Residence.id == 1)
                                   .values(valid_to=dt.date(2026, 6, 1)))
                after = (await conn.execute(statement)).mappings().one()["area_code"]
        finally:
            await engine.dispose()
        return before, after

    before, after = run_async(shown_before_and_after())
    # Before: the busy RT shows itself, the RW's pool (3 + 1) is short: the kelurahan.
    assert before == kelurahan
    # After: the busy RT (4 now) shows itself no longer, yet its residents stay out of the
    # RW's pool (pooled on current residents alone, 4 + 3 + 1 would show the RW).
    assert after == kelurahan

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
    """Age on 1 January of this year: the year's difference, less one unless born on 1/1;
    its band as the API names it (AgeBand)."""
    age = dt.date.today().year - birth.year - (0 if (birth.month, birth.day) == (1, 1) else 1)
    if age < 18:
        return "UNDER_18"
    if age >= 65:
        return "AGE_65_PLUS"
    low = 18 if age < 25 else age - (age - 25) % 10
    return f"AGE_{low}_{24 if low == 18 else low + 9}"


def test_age_band_is_as_of_the_first_of_january_as_police(deployment: Deployment) -> None:
    births = {f["id"]: f["birth_date"] for f in deployment.facts.foreigners}
    body = deployment.gql("{ foreigners(first: 1000) { nodes { id ageBand } } }",
                          "setiabudi_police")
    nodes = body["data"]["foreigners"]["nodes"]
    assert nodes
    for node in nodes:
        assert node["ageBand"] == _band_on_new_year(births[int(node["id"])])
