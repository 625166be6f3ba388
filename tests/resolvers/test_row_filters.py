"""The SQL the gateway scopes rows with selects exactly the rows Oso allows one by one.

The gateway never asks Oso about a record: Oso's data filtering turns the `allow` rules
into one row filter per role and jurisdiction level, and the data layer into SQL. Here,
on the real seeded databases, every record of every scoped type is also put to Oso itself
(`allow(actor, "read", record)`, one evaluation per record, the way an application that
holds the record would ask) and the two answers must agree for every persona.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from conftest import PERSONAS, Deployment, run_async
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import create_async_engine

from policies import CompiledPolicy, Policy, Principal
from policies.area_codes import LEVELS, ancestors, located_codes
from policies.resources import Activity, Area, Foreigner, Officer, Report
from resolvers import models
from resolvers.scopes import CURRENT_RESIDENCE, row_condition

CODES = [f"{level}_code" for level in LEVELS]


def _located(row: Any) -> dict[str, Any]:
    return {name: row[name] for name in CODES}


# type → (statement of every row with the fields the policy sees, its key, resource view)
VIEWS: dict[str, tuple[Any, str, Callable[[Any], object]]] = {
    "Foreigner": (
        select(models.Foreigner.id, *[getattr(CURRENT_RESIDENCE, c) for c in CODES])
        .outerjoin(CURRENT_RESIDENCE, and_(CURRENT_RESIDENCE.foreigner_id == models.Foreigner.id,
                                           CURRENT_RESIDENCE.valid_to.is_(None))),
        "id", lambda r: Foreigner(id=r["id"], **_located(r)),
    ),
    "Report": (
        select(models.Report.id, models.Report.submitted_by,
               *[getattr(models.Report, c) for c in CODES]),
        "id", lambda r: Report(id=r["id"], submitted_by=r["submitted_by"], **_located(r)),
    ),
    "Activity": (
        select(models.OfficerActivity.id, models.OfficerActivity.officer_id,
               models.OfficerActivity.joint_operation,
               *[getattr(models.OfficerActivity, c) for c in CODES]),
        "id", lambda r: Activity(id=r["id"], officer_id=r["officer_id"],
                                 joint_operation=r["joint_operation"], **_located(r)),
    ),
    "Officer": (
        select(models.Officer.id, models.Officer.office_area_code),
        "id", lambda r: Officer(id=r["id"], office_area_code=r["office_area_code"]),
    ),
    "Area": (
        select(models.Area.code, models.Area.level),
        "code", lambda r: Area(code=r["code"], level=r["level"], **located_codes(r["code"])),
    ),
}

_KEY_COLUMNS = {"Foreigner": models.Foreigner.id, "Report": models.Report.id,
                "Activity": models.OfficerActivity.id, "Officer": models.Officer.id,
                "Area": models.Area.code}


def principals(deployment: Deployment) -> dict[str, Principal]:
    found = {}
    for persona, (role, area, officer) in PERSONAS.items():
        if persona == "rt_head":
            area = deployment.facts.busiest_setiabudi_rt
        subject = None if role == "public" else f"dev:{area or role}:{officer or '-'}"
        found[persona] = Principal(role=role, area=area, officer_id=officer, subject=subject)
    # Every level of jurisdiction, and the submitters the seed actually recorded.
    rt = deployment.facts.busiest_setiabudi_rt
    for level, code in zip(LEVELS, ancestors(rt), strict=True):
        found[f"police_at_{level}"] = Principal(role="police", area=code)
    submitters = run_async(_all(deployment.database_url,
                                select(models.Report.submitted_by).distinct()))
    for n, row in enumerate(sorted(r["submitted_by"] for r in submitters if r["submitted_by"])):
        if n < 3:
            found[f"submitter_{n}"] = Principal(role="neighbourhood", subject=row)
            found[f"district_submitter_{n}"] = Principal(role="district", subject=row,
                                                        area="31.74.02")
    return found


async def _all(url: str, statement: Any) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(statement)).mappings())
    finally:
        await engine.dispose()


@pytest.mark.parametrize("type_name", sorted(VIEWS))
def test_sql_row_filter_selects_exactly_what_oso_allows_per_record(
    deployment: Deployment, policy: Policy, compiled: CompiledPolicy, type_name: str
) -> None:
    statement, key, view = VIEWS[type_name]
    if type_name == "Area":
        # Thousands of RTs: keep every area above the RT level and the RTs of one kelurahan,
        # which holds the RT and RW of the neighbourhood persona.
        kelurahan = ancestors(deployment.facts.busiest_setiabudi_rt)[2]
        statement = statement.where(or_(models.Area.level != "rt",
                                        models.Area.code.like(kelurahan + ".%")))
    rows = run_async(_all(deployment.database_url, statement))
    assert rows, f"the seed has no {type_name} rows"
    disagreements: dict[str, tuple[list[Any], list[Any]]] = {}
    nonempty = 0
    for persona, principal in principals(deployment).items():
        access = compiled.for_role(principal.role)
        condition = row_condition(
            type_name, access.row_filter(type_name, principal.area_level), principal
        )
        scoped = statement.with_only_columns(_KEY_COLUMNS[type_name].label("key"))
        in_sql = {r["key"] for r in run_async(_all(deployment.database_url,
                                                   scoped.where(condition)))}
        by_oso = {r[key] for r in rows if policy.allow_row(principal, view(r))}
        nonempty += bool(by_oso)
        if in_sql != by_oso:
            disagreements[persona] = (sorted(in_sql - by_oso)[:5], sorted(by_oso - in_sql)[:5])
    assert disagreements == {}
    assert nonempty >= 1, "no persona sees any row: the comparison proves nothing"
