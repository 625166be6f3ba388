"""The event outbox: live events written with the change they announce, read back in order.

A mutation appends its event in its own transaction (`append_event`), so the event exists
exactly when the change committed. The gateway's relay reads committed events by id
(`events_after`) and fans them out; a crash between the commit and the publish loses
nothing, because the next read finds the row.

Ids are assigned in commit order, so a reader that remembers the last id it saw never
skips an event that commits later with a smaller id:

- SQLite has one writer at a time: a transaction holds the write lock from its first write
  to its commit, the outbox insert included;
- PostgreSQL hands out sequence values without waiting for commits, so the insert first
  takes a transaction-scoped advisory lock, released at commit. Outbox writers queue for
  the moment between their insert and their commit only (the insert is their last
  statement), and the next writer's id is taken after the previous one committed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from policies.area_codes import LEVELS
from policies.loader import LocationPrecision
from resolvers.db import Database
from resolvers.ids import row_ids
from resolvers.models import EventOutbox, OfficerActivity, Report
from resolvers.precision import activity_select, report_select
from resolvers.scopes import Condition

TOPIC_ACTIVITY = "activity"
TOPIC_REPORT = "report"
TOPICS = (TOPIC_ACTIVITY, TOPIC_REPORT)
# The advisory lock that orders outbox writers on PostgreSQL ("SSDO" in ASCII).
OUTBOX_LOCK = 0x5353_444F

_LOCATED = tuple(f"{level}_code" for level in LEVELS)


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    id: int
    topic: str
    record_id: int
    # The policy's resource fields of the record (policies/resources.py) and the fields the
    # feeds filter on: what the row decision and the filters read, nothing else.
    record: Mapping[str, Any]
    created_at: dt.datetime


def activity_record(activity_id: int, values: Mapping[str, Any]) -> dict[str, Any]:
    """What an activity event carries for its row decision and filters."""
    return {"id": activity_id, "officer_id": values["officer_id"],
            "joint_operation": bool(values["joint_operation"]),
            **{name: values.get(name) for name in _LOCATED}}


def report_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """What a report event carries for its row decision and filters (status as of the
    event: `reportUpdated(status:)` asks which reports *became* that status)."""
    return {"id": row["id"], "submitter_issuer": row["submitter_issuer"],
            "submitter_role": row["submitter_role"], "submitted_by": row["submitted_by"],
            "status": row["status"], **{name: row[name] for name in _LOCATED}}


async def append_event(conn: AsyncConnection, topic: str, record_id: int,
                       record: Mapping[str, Any]) -> int:
    """Append an event inside the caller's transaction; its id once that commits."""
    if conn.dialect.name == "postgresql":
        await conn.execute(select(func.pg_advisory_xact_lock(OUTBOX_LOCK)))
    result = await conn.execute(
        insert(EventOutbox).values(topic=topic, record_id=record_id,
                                   record=json.dumps(dict(record), sort_keys=True),
                                   created_at=dt.datetime.now(dt.UTC))
        .returning(EventOutbox.id))
    return int(result.scalar_one())


async def report_event(conn: AsyncConnection, report_id: int) -> int:
    """The event of a report just written in this transaction (its state as committed)."""
    row = (await conn.execute(select(Report).where(Report.id == report_id))).mappings().one()
    return await append_event(conn, TOPIC_REPORT, report_id, report_record(row))


async def last_event_id(db: Database) -> int:
    return int(await db.scalar(select(func.coalesce(func.max(EventOutbox.id), 0))))


async def events_after(db: Database, after_id: int, limit: int,
                       topics: Iterable[str] | None = None,
                       up_to: int | None = None) -> list[OutboxEvent]:
    """Committed events with ids above `after_id` (and at most `up_to`), oldest first."""
    statement = select(EventOutbox).where(EventOutbox.id > after_id)
    if topics is not None:
        statement = statement.where(EventOutbox.topic.in_(tuple(topics)))
    if up_to is not None:
        statement = statement.where(EventOutbox.id <= up_to)
    rows = await db.all(statement.order_by(EventOutbox.id).limit(limit))
    return [_event(row) for row in rows]


async def events_between(db: Database, topic: str, after_id: int, up_to: int,
                         cap: int) -> int:
    """How many events of a topic lie in (after_id, up_to], counted up to `cap` + 1 (a
    replay longer than the cap is refused; counting further would be wasted work)."""
    inner = (select(EventOutbox.id)
             .where(EventOutbox.topic == topic, EventOutbox.id > after_id,
                    EventOutbox.id <= up_to)
             .limit(cap + 1).subquery())
    return int(await db.scalar(select(func.count()).select_from(inner)))


async def located_rows(db: Database, type_name: str, precision: LocationPrecision | None,
                       ids: Sequence[int]) -> dict[int, RowMapping]:
    """Rows of a located type by id, at a location precision (resolvers/precision.py),
    without a row scope: the row decision was taken on the event's record already."""
    held = row_ids(ids)
    if not held:
        return {}
    if type_name == "Activity":
        statement = activity_select(precision).where(OfficerActivity.id.in_(held))
    else:
        statement = report_select(precision).where(Report.id.in_(held))
    return {row["id"]: row for row in await db.all(statement)}


async def last_positions(db: Database, scope: Condition, precision: LocationPrecision | None,
                         limit: int) -> list[RowMapping]:
    """Each officer's latest activity among those `scope` lets the caller see, at the
    caller's precision: the positions a live map starts from (at most `limit` officers)."""
    latest = (select(func.max(OfficerActivity.id))
              .where(scope).group_by(OfficerActivity.officer_id)
              .limit(limit))
    statement = (activity_select(precision).where(OfficerActivity.id.in_(latest))
                 .order_by(OfficerActivity.officer_id))
    return list(await db.all(statement))


async def event_ids_of(db: Database, topic: str, record_ids: Sequence[int]) -> dict[int, int]:
    """The latest event id of each record (a record written before the outbox has none)."""
    held = row_ids(record_ids)
    if not held:
        return {}
    statement = (select(EventOutbox.record_id, func.max(EventOutbox.id).label("id"))
                 .where(EventOutbox.topic == topic, EventOutbox.record_id.in_(held))
                 .group_by(EventOutbox.record_id))
    return {row["record_id"]: int(row["id"]) for row in await db.all(statement)}


def _event(row: RowMapping) -> OutboxEvent:
    return OutboxEvent(id=int(row["id"]), topic=row["topic"], record_id=int(row["record_id"]),
                       record=json.loads(row["record"]), created_at=row["created_at"])
