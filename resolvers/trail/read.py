"""Reading the trail: pages for `accessTrail`, and every entry about one record (exports).

Readers see one entry per record read, as they always have: a chained entry joined with
each of its record rows. A question about one record (a data subject's) reaches only that
record's rows, so it never shows the other records the same chained entry lists.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, String, and_, cast, or_, select, tuple_
from sqlalchemy.engine import RowMapping

from resolvers.db import Database
from resolvers.models import AccessTrailEntry, AccessTrailRecord, StayPermit
from resolvers.paging import Page, encode_cursor
from resolvers.trail.chain import utc

TABLE = AccessTrailEntry.__table__
RECORDS = AccessTrailRecord.__table__
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


def _per_record() -> Select[Any]:
    """One row per (entry, record): the entry's columns and one of its record ids."""
    columns = [RECORDS.c.record_id if column == "record_id" else TABLE.c[column]
               for column in SHOWN_COLUMNS]
    return select(*columns).select_from(TABLE.join(RECORDS, RECORDS.c.seq == TABLE.c.seq))


async def entries_for_record(db: Database, record_type: str,
                             record_id: str) -> list[dict[str, Any]]:
    """Every entry about one record, oldest first (a data subject's request)."""
    statement = (_per_record()
                 .where(TABLE.c.record_type == record_type, RECORDS.c.record_id == record_id)
                 .order_by(RECORDS.c.seq))
    return [entry_dict(row) for row in await db.all(statement)]


def trail_position(key: list[Any]) -> tuple[int, str]:
    """The (seq, record id) a plain cursor's key names; ValueError if it names none."""
    if (len(key) != 2 or type(key[0]) is not int or not isinstance(key[1], str)):
        raise ValueError("not a trail position")
    return key[0], key[1]


async def trail_page(db: Database, scope_condition: ColumnElement[bool], filters: TrailFilter,
                     first: int, after: tuple[int, str] | None) -> Page:
    """Newest first, one row per record read, keyed on (seq, record id); `scope_condition`
    is the caller's row scope (e.g. its office's `office_code`). Rows are `entry_dict`s;
    the end cursor is a plain cursor of `CURSOR_KIND` (`trail_position` reads it back)."""
    statement = _per_record().where(scope_condition)
    for condition in _conditions(filters):
        statement = statement.where(condition)
    if after is not None:
        statement = statement.where(tuple_(RECORDS.c.seq, RECORDS.c.record_id) < tuple_(*after))
    statement = statement.order_by(RECORDS.c.seq.desc(), RECORDS.c.record_id.desc())
    rows = list(await db.all(statement.limit(first + 1)))
    has_next = len(rows) > first
    entries = [entry_dict(row) for row in rows[:first]]
    end = (encode_cursor(CURSOR_KIND, [entries[-1]["seq"], entries[-1]["record_id"]])
           if entries else None)
    return Page(rows=entries, end_cursor=end, has_next_page=has_next)


def _conditions(filters: TrailFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.record_id is not None:
        conditions.append(RECORDS.c.record_id == filters.record_id)
    for column in ("record_type", "subject", "role", "purpose"):
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
    statement = (_per_record().where(about_foreigner(foreigner_id))
                 .order_by(RECORDS.c.seq, RECORDS.c.record_id))
    return [entry_dict(row) for row in await db.all(statement)]


def about_foreigner(foreigner_id: int) -> ColumnElement[bool]:
    """Entries about a foreigner's record and about their stay permits' records."""
    permits = select(cast(StayPermit.id, String)).where(
        StayPermit.foreigner_id == foreigner_id).scalar_subquery()
    return or_(and_(TABLE.c.record_type == "Foreigner", RECORDS.c.record_id == str(foreigner_id)),
               and_(TABLE.c.record_type == "StayPermit", RECORDS.c.record_id.in_(permits)))
