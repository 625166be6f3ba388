"""Reading the trail: pages for `accessTrail`, and every entry about one record (exports)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, String, and_, cast, or_, select
from sqlalchemy.engine import RowMapping

from resolvers.db import Database
from resolvers.models import AccessTrailEntry, StayPermit
from resolvers.paging import Page, encode_cursor
from resolvers.trail.chain import utc

TABLE = AccessTrailEntry.__table__
CURSOR_KIND = "TRAIL"
# What a reader of the trail is shown: the chain's hashes are for `trail verify`.
SHOWN_COLUMNS = ("seq", "at", "issuer", "subject", "role", "area", "office_code",
                 "officer_id", "record_type", "record_id", "fields", "purpose", "request_id",
                 "operation_name", "document_hash", "client_address")


@dataclass(frozen=True, slots=True)
class TrailFilter:
    record_type: str | None = None
    record_id: str | None = None
    subject: str | None = None
    role: str | None = None
    purpose: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    # Entries about this foreigner and their stay permits (a data subject's question).
    foreigner_id: int | None = None


def entry_dict(row: RowMapping) -> dict[str, Any]:
    """An entry as readers see it: `at` aware UTC, `fields` a list of names."""
    entry = {column: row[column] for column in SHOWN_COLUMNS}
    entry["at"] = utc(entry["at"])
    entry["fields"] = entry["fields"].split(",") if entry["fields"] else []
    return entry


async def entries_for_record(db: Database, record_type: str,
                             record_id: str) -> list[dict[str, Any]]:
    """Every entry about one record, oldest first (a data subject's request)."""
    statement = (select(*(TABLE.c[column] for column in SHOWN_COLUMNS))
                 .where(TABLE.c.record_type == record_type, TABLE.c.record_id == record_id)
                 .order_by(TABLE.c.seq))
    return [entry_dict(row) for row in await db.all(statement)]


async def trail_page(db: Database, scope_condition: ColumnElement[bool], filters: TrailFilter,
                     first: int, after_seq: int | None) -> Page:
    """Newest first, keyed on `seq`; `scope_condition` is the caller's row scope (e.g. its
    office's `office_code`). Rows are `entry_dict`s; the end cursor is a plain cursor."""
    statement = select(*(TABLE.c[column] for column in SHOWN_COLUMNS)).where(scope_condition)
    for condition in _conditions(filters):
        statement = statement.where(condition)
    if after_seq is not None:
        statement = statement.where(TABLE.c.seq < after_seq)
    rows = list(await db.all(statement.order_by(TABLE.c.seq.desc()).limit(first + 1)))
    has_next = len(rows) > first
    entries = [entry_dict(row) for row in rows[:first]]
    end = encode_cursor(CURSOR_KIND, [entries[-1]["seq"]]) if entries else None
    return Page(rows=entries, end_cursor=end, has_next_page=has_next)


def _conditions(filters: TrailFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    for column in ("record_type", "record_id", "subject", "role", "purpose"):
        value = getattr(filters, column)
        if value is not None:
            conditions.append(TABLE.c[column] == value)
    if filters.foreigner_id is not None:
        conditions.append(about_foreigner(filters.foreigner_id))
    if filters.since is not None:
        conditions.append(TABLE.c.at >= _stored_time(filters.since))
    if filters.until is not None:
        conditions.append(TABLE.c.at < _stored_time(filters.until))
    return conditions


def _stored_time(value: dt.datetime) -> dt.datetime:
    # Entries are stored in UTC; SQLite compares the text, so the bound must be UTC too.
    return utc(value)


async def entries_about_foreigner(db: Database, foreigner_id: int) -> list[dict[str, Any]]:
    """Every entry about a foreigner and their stay permits, oldest first: what a data
    subject's request for "who processed my data" is answered with."""
    statement = (select(*(TABLE.c[column] for column in SHOWN_COLUMNS))
                 .where(about_foreigner(foreigner_id)).order_by(TABLE.c.seq))
    return [entry_dict(row) for row in await db.all(statement)]


def about_foreigner(foreigner_id: int) -> ColumnElement[bool]:
    """Entries about a foreigner's record and about their stay permits' records."""
    permits = select(cast(StayPermit.id, String)).where(
        StayPermit.foreigner_id == foreigner_id).scalar_subquery()
    return or_(and_(TABLE.c.record_type == "Foreigner", TABLE.c.record_id == str(foreigner_id)),
               and_(TABLE.c.record_type == "StayPermit", TABLE.c.record_id.in_(permits)))
