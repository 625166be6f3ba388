"""The row decision of a live event (policies/row_match.py, on the event's record) equals
the SQL a query applies (resolvers/scopes.py), for every role, every level of area its
token may carry and every resource type, on the seeded data of both backends.

Records are built the way events carry them (resolvers/outbox.py) for activities and
reports, and from the same columns resolvers/scopes.py names for the other types.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import CITY, SETIABUDI, TEBET, Deployment, on_db
from sqlalchemy import select

from policies import Policy, Principal
from policies.area_codes import LEVELS
from policies.loader import AREA_LEVELS
from policies.principal import dev_subject
from policies.resources import RESOURCES
from policies.row_match import row_matches
from resolvers.db import Database
from resolvers.models import Area, Foreigner, Officer, OfficerActivity, Report
from resolvers.outbox import activity_record, report_record
from resolvers.scopes import CURRENT_RESIDENCE, row_condition

TYPES = tuple(name for name in RESOURCES if name != "AccessTrailEntry")
_WIDTH = {"city": 5, "kecamatan": 8, "kelurahan": 13, "rw": 16, "rt": 20}


def _located(row: Any) -> dict[str, Any]:
    return {f"{level}_code": row[f"{level}_code"] for level in LEVELS}


async def _records(db: Database, type_name: str) -> dict[int | str, dict[str, Any]]:
    """Every row of a type as (its id, its resource record)."""
    if type_name == "Activity":
        rows = await db.all(select(OfficerActivity))
        return {r["id"]: activity_record(r["id"], r) for r in rows}
    if type_name == "Report":
        return {r["id"]: report_record(r) for r in await db.all(select(Report))}
    if type_name == "Officer":
        return {r["id"]: {"id": r["id"], "office_area_code": r["office_area_code"]}
                for r in await db.all(select(Officer))}
    if type_name == "Area":
        return {r["code"]: {"code": r["code"], "level": r["level"],
                            **{f"{level}_code": (r["code"][:width]
                                                 if len(r["code"]) >= width else None)
                               for level, width in _WIDTH.items()}}
                for r in await db.all(select(Area))}
    statement = (select(Foreigner.id, *[getattr(CURRENT_RESIDENCE, f"{level}_code")
                                        for level in LEVELS])
                 .outerjoin(CURRENT_RESIDENCE, (CURRENT_RESIDENCE.foreigner_id == Foreigner.id)
                            & CURRENT_RESIDENCE.valid_to.is_(None)))
    return {r["id"]: {"id": r["id"], **_located(r)} for r in await db.all(statement)}


async def _selected(db: Database, type_name: str, principal: Principal,
                    access: Any) -> set[int | str]:
    condition = row_condition(type_name, access.row_filter(type_name, principal.area_level),
                              principal)
    if type_name == "Area":
        return {r["code"] for r in await db.all(select(Area.code).where(condition))}
    model = {"Activity": OfficerActivity, "Report": Report, "Officer": Officer}.get(type_name)
    if model is not None:
        return {r["id"] for r in await db.all(select(model.id).where(condition))}
    statement = (select(Foreigner.id)
                 .outerjoin(CURRENT_RESIDENCE, (CURRENT_RESIDENCE.foreigner_id == Foreigner.id)
                            & CURRENT_RESIDENCE.valid_to.is_(None)).where(condition))
    return {r["id"] for r in await db.all(statement)}


def _areas(deployment: Deployment) -> dict[str | None, list[str | None]]:
    """Areas of each level to stand in a principal's jurisdiction (two kecamatan)."""
    rt = deployment.facts.busiest_setiabudi_rt
    return {None: [None], "city": [CITY, "31.71"], "kecamatan": [SETIABUDI, TEBET],
            "kelurahan": [rt[:13]], "rw": [rt[:16]], "rt": [rt]}


def _principals(deployment: Deployment, policy: Policy) -> list[Principal]:
    """Every role at every level, with the officer ids and submitters the data holds."""
    principals = []
    for role in sorted(policy.roles):
        for level in AREA_LEVELS:
            for area in _areas(deployment)[level]:
                for officer in (None, 1, 2, 3):
                    principals.append(Principal(
                        role=role, area=area, officer_id=officer,
                        subject=dev_subject(role, area, officer), issuer="sisada-dev"))
    return principals


@pytest.mark.parametrize("type_name", TYPES)
def test_in_process_row_decision_equals_the_sql_for_every_role_and_level(
        deployment: Deployment, policy: Policy, compiled: Any, type_name: str) -> None:
    principals = _principals(deployment, policy)

    async def check(db: Database) -> list[str]:
        records = await _records(db, type_name)
        mismatches = []
        for principal in principals:
            access = compiled.for_role(principal.role)
            in_sql = await _selected(db, type_name, principal, access)
            row_filter = access.row_filter(type_name, principal.area_level)
            in_process = {key for key, record in records.items()
                          if row_matches(row_filter, record, principal)}
            if in_sql != in_process:
                mismatches.append(f"{principal.role}@{principal.area}/{principal.officer_id}: "
                                  f"{len(in_sql)} in SQL, {len(in_process)} in process")
        return mismatches

    assert on_db(deployment.database_url, check) == []


def test_every_role_sees_some_rows_somewhere_so_the_comparison_is_not_empty(
        deployment: Deployment, policy: Policy, compiled: Any) -> None:
    async def visible(db: Database) -> int:
        records = await _records(db, "Activity")
        principal = Principal(role="immigration_supervisor", area=CITY, officer_id=2)
        access = compiled.for_role(principal.role)
        return sum(row_matches(access.row_filter("Activity", "city"), r, principal)
                   for r in records.values())

    assert on_db(deployment.database_url, visible) > 0


def test_null_satisfies_no_comparison_as_sql() -> None:
    from policies.row_filters import Claim, Comparison

    principal = Principal(role="police", area=SETIABUDI)
    neq = ((Comparison("rt_code", "neq", "x"),),)
    nin = ((Comparison("rt_code", "nin", ("x",)),),)
    claim = ((Comparison("kecamatan_code", "eq", Claim("area")),),)
    assert not row_matches(neq, {"rt_code": None}, principal)
    assert not row_matches(nin, {"rt_code": None}, principal)
    assert row_matches(claim, {"kecamatan_code": SETIABUDI}, principal)
    assert not row_matches(claim, {"kecamatan_code": SETIABUDI}, Principal(role="police"))
    assert not row_matches(claim, {}, principal)
    assert row_matches(((),), {}, principal)
    assert not row_matches((), {"kecamatan_code": SETIABUDI}, principal)
