"""Writes: report submission, officer activities, report triage."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy import insert, select, update

from policies.area_codes import is_area_code, located_codes
from resolvers.db import Database
from resolvers.models import Area, OfficerActivity, Report
from resolvers.scopes import Condition

_RECEIPT_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def new_receipt_code() -> str:
    """`SSD-XXXX-XXXX` from a CSPRNG: the code is the capability to read a report's status."""
    chars = [secrets.choice(_RECEIPT_ALPHABET) for _ in range(8)]
    return f"SSD-{''.join(chars[:4])}-{''.join(chars[4:])}"


async def locatable_area(db: Database, code: str) -> bool:
    """An existing kelurahan, RW or RT of the office (a row can be located there)."""
    if not is_area_code(code):
        return False
    level = await db.scalar(select(Area.level).where(Area.code == code))
    return level in {"kelurahan", "rw", "rt"}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def submit_report(
    db: Database,
    *,
    category: str,
    text: str,
    area_code: str,
    reporter_contact: str | None,
    foreigner_id: int | None,
    submitted_by: str | None,
) -> dict[str, Any]:
    now = _now()
    receipt = new_receipt_code()
    values = {
        "receipt_code": receipt,
        "category": category,
        "text": text,
        "reporter_contact": reporter_contact,
        "submitted_by": submitted_by,
        "status": "received",
        "foreigner_id": foreigner_id,
        "assigned_officer_id": None,
        "created_at": now,
        "updated_at": now,
        **located_codes(area_code),
    }
    async with db.transaction() as conn:
        await conn.execute(insert(Report).values(**values))
    return {"receipt_code": receipt, "status": "received"}


async def record_activity(
    db: Database,
    *,
    officer_id: int,
    kind: str,
    area_code: str,
    latitude: float | None,
    longitude: float | None,
    subject_foreigner_id: int | None,
    report_id: int | None,
    notes: str | None,
    joint_operation: bool,
    occurred_at: dt.datetime | None,
) -> int:
    values = {
        "officer_id": officer_id,
        "kind": kind,
        "occurred_at": occurred_at or _now(),
        "latitude": latitude,
        "longitude": longitude,
        "subject_foreigner_id": subject_foreigner_id,
        "report_id": report_id,
        "notes": notes,
        "joint_operation": joint_operation,
        **located_codes(area_code),
    }
    async with db.transaction() as conn:
        result = await conn.execute(
            insert(OfficerActivity).values(**values).returning(OfficerActivity.id)
        )
        return int(result.scalar_one())


async def update_report(
    db: Database,
    scope: Condition,
    report_id: int,
    status: str | None,
    assigned_officer_id: int | None,
) -> bool:
    """Update a report in the caller's scope; False when there is no such report for them."""
    values: dict[str, Any] = {"updated_at": _now()}
    if status is not None:
        values["status"] = status
    if assigned_officer_id is not None:
        values["assigned_officer_id"] = assigned_officer_id
    async with db.transaction() as conn:
        result = await conn.execute(
            update(Report).where(scope, Report.id == report_id).values(**values)
        )
        return bool(result.rowcount)
