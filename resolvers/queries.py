"""Scoped read queries. Every statement that returns rows of a scoped type carries
the principal's scope condition, so out-of-scope rows never leave the database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, func, select, tuple_

from policies.loader import LocationPrecision
from resolvers.db import Database
from resolvers.ids import row_ids
from resolvers.models import (
    Area,
    Foreigner,
    Officer,
    OfficerActivity,
    Report,
    StayPermit,
)
from resolvers.paging import CursorError, Page, decode_cursor, encode_cursor
from resolvers.precision import activity_select, report_select
from resolvers.scopes import CURRENT_RESIDENCE, Condition, foreigners_living_in

# Names live in the registry (resolvers.identity): no order by name in the office's SQL.
FOREIGNER_ORDERS = {
    "ID": (),
    "PERMIT_EXPIRES_ON": (StayPermit.expires_on,),
}


@dataclass(frozen=True, slots=True)
class ForeignerFilter:
    area_code: str | None = None
    nationality: str | None = None
    permit_type: str | None = None
    permit_status: str | None = None
    expires_before: dt.date | None = None
    # Registry ids a look-up matched (by name, by document number): the filters on identity
    # are answered by the registry, then scoped here like any other id.
    registry_ids: tuple[int, ...] | None = None


# The current residence travels with its foreigner (one row each), labelled to keep apart.
RESIDENCE_COLUMNS = ("id", "street_address", "latitude", "longitude", "city_code",
                     "kecamatan_code", "kelurahan_code", "rw_code", "rt_code", "valid_from",
                     "valid_to")


def foreigner_select(after_id: int | None = None) -> Select[Any]:
    """Foreigner columns with the permit in force and the current residence, one row each.

    `after_id` repeats a keyset bound on the joined tables' foreigner ids: the rows are
    the same, but PostgreSQL then starts every index scan at the cursor instead of merging
    from the first foreigner (it does not carry inequalities across a join).
    """
    residence = [getattr(CURRENT_RESIDENCE, c).label(f"residence_{c}") for c in RESIDENCE_COLUMNS]
    permit_on = [StayPermit.foreigner_id == Foreigner.id, StayPermit.is_current.is_(True)]
    residence_on = [CURRENT_RESIDENCE.foreigner_id == Foreigner.id,
                    CURRENT_RESIDENCE.valid_to.is_(None)]
    if after_id is not None:
        permit_on.append(StayPermit.foreigner_id > after_id)
        residence_on.append(CURRENT_RESIDENCE.foreigner_id > after_id)
    return select(
        Foreigner.id,
        Foreigner.age_base_year,
        Foreigner.nationality,
        Foreigner.sex,
        StayPermit.id.label("permit_id"),
        StayPermit.permit_type,
        StayPermit.status.label("permit_status"),
        StayPermit.expires_on.label("permit_expires_on"),
        StayPermit.sponsor_type,
        *residence,
    ).outerjoin(StayPermit, and_(*permit_on)).outerjoin(CURRENT_RESIDENCE, and_(*residence_on))


def foreigner_filter_conditions(f: ForeignerFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if f.area_code is not None:
        conditions.append(foreigners_living_in(f.area_code))
    if f.nationality is not None:
        conditions.append(Foreigner.nationality == f.nationality.upper())
    if f.permit_type is not None:
        conditions.append(StayPermit.permit_type == f.permit_type)
    if f.permit_status is not None:
        conditions.append(StayPermit.status == f.permit_status)
    if f.expires_before is not None:
        conditions.append(StayPermit.expires_on < f.expires_before)
    if f.registry_ids is not None:
        conditions.append(Foreigner.id.in_(row_ids(f.registry_ids)) if f.registry_ids
                          else false())
    return conditions


async def foreigner_page(
    db: Database,
    scope: Condition,
    filters: ForeignerFilter,
    order: str,
    first: int,
    after: str | None,
) -> Page:
    keys = (*FOREIGNER_ORDERS[order], Foreigner.id)
    last: list[Any] | None = None
    if after is not None:
        last = decode_cursor(order, after)
        if len(last) != len(keys):
            raise CursorError()
        last = _cursor_values(order, last)
    after_id = last[0] if last is not None and order == "ID" else None
    statement = foreigner_select(after_id).where(scope, *foreigner_filter_conditions(filters))
    if last is not None:
        statement = statement.where(tuple_(*keys) > tuple_(*last))
    statement = statement.order_by(*keys).limit(first + 1)
    rows = list(await db.all(statement))
    has_next = len(rows) > first
    rows = rows[:first]
    end = None
    if rows:
        end = encode_cursor(order, _cursor_key(order, rows[-1]))
    return Page(rows=rows, end_cursor=end, has_next_page=has_next)


def _cursor_key(order: str, row: Any) -> list[Any]:
    if order == "PERMIT_EXPIRES_ON":
        expires = row["permit_expires_on"]
        return [expires.isoformat() if expires else None, row["id"]]
    return [row["id"]]


def _cursor_values(order: str, key: list[Any]) -> list[Any]:
    try:
        if order == "PERMIT_EXPIRES_ON":
            return [dt.date.fromisoformat(key[0]), int(key[1])]
        return [int(key[0])]
    except (TypeError, ValueError) as exc:
        raise CursorError() from exc


async def foreigner_count(db: Database, scope: Condition, filters: ForeignerFilter) -> int:
    statement = (
        select(func.count())
        .select_from(foreigner_select().where(scope, *foreigner_filter_conditions(filters))
                     .subquery())
    )
    return int(await db.scalar(statement) or 0)


async def foreigner_ids_in_scope(db: Database, scope: Condition,
                                 ids: Sequence[int]) -> list[int]:
    """Which of these registry ids are foreigners in the caller's scope (one statement)."""
    held = row_ids(ids)
    if not held:
        return []
    statement = (foreigner_select().where(scope, Foreigner.id.in_(held))
                 .with_only_columns(Foreigner.id, maintain_column_froms=True)
                 .order_by(Foreigner.id))
    return [int(row["id"]) for row in await db.all(statement)]


async def foreigner_among(db: Database, scope: Condition, ids: Sequence[int]) -> Any | None:
    """The first foreigner in scope among these registry ids (a field check's matches)."""
    held = row_ids(ids)
    if not held:
        return None
    statement = (foreigner_select().where(scope, Foreigner.id.in_(held))
                 .order_by(Foreigner.id).limit(1))
    return await db.first(statement)


# -- areas ---------------------------------------------------------------------


async def areas(
    db: Database, scope: Condition, level: str | None, parent_code: str | None
) -> list[Any]:
    statement = select(Area).where(scope)
    if level is not None:
        statement = statement.where(Area.level == level)
    if parent_code is not None:
        statement = statement.where(Area.parent_code == parent_code)
    return list(await db.all(statement.order_by(Area.code).limit(5000)))


# -- reports -------------------------------------------------------------------


async def report_page(
    db: Database,
    scope: Condition,
    status: str | None,
    category: str | None,
    first: int,
    after: str | None,
    precision: LocationPrecision | None = None,
) -> Page:
    statement = report_select(precision).where(scope)
    if status is not None:
        statement = statement.where(Report.status == status)
    if category is not None:
        statement = statement.where(Report.category == category)
    return await _id_page(db, statement, Report.id, "REPORT", first, after)


async def report_status(db: Database, receipt_code: str) -> Any | None:
    statement = select(Report.receipt_code, Report.status, Report.updated_at).where(
        Report.receipt_code == receipt_code.strip().upper()
    )
    return await db.first(statement)


# -- activities ----------------------------------------------------------------


async def activity_page(
    db: Database,
    scope: Condition,
    officer_id: int | None,
    since: dt.datetime | None,
    joint_only: bool,
    first: int,
    after: str | None,
    precision: LocationPrecision | None = None,
) -> Page:
    statement = activity_select(precision).where(scope)
    if officer_id is not None:
        statement = statement.where(OfficerActivity.officer_id == officer_id)
    if since is not None:
        statement = statement.where(OfficerActivity.occurred_at >= since)
    if joint_only:
        statement = statement.where(OfficerActivity.joint_operation.is_(True))
    return await _id_page(db, statement, OfficerActivity.id, "ACTIVITY", first, after)


async def officers(db: Database, scope: Condition) -> list[Any]:
    return list(await db.all(select(Officer).where(scope).order_by(Officer.id)))


async def _id_page(
    db: Database, statement: Select[Any], id_column: Any, kind: str, first: int, after: str | None
) -> Page:
    """Newest first, keyed on the id."""
    if after is not None:
        key = decode_cursor(kind, after)
        try:
            last_id = int(key[0])
        except (IndexError, TypeError, ValueError) as exc:
            raise CursorError() from exc
        statement = statement.where(id_column < last_id)
    rows = list(await db.all(statement.order_by(id_column.desc()).limit(first + 1)))
    has_next = len(rows) > first
    rows = rows[:first]
    end = encode_cursor(kind, [rows[-1]["id"]]) if rows else None
    return Page(rows=rows, end_cursor=end, has_next_page=has_next)
