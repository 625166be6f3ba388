"""Writes: report submission, officer activities, report triage."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy import insert, select, update

from policies import Principal
from policies.area_codes import is_area_code, located_codes
from resolvers.db import Database
from resolvers.models import Area, OfficerActivity, Report
from resolvers.outbox import TOPIC_ACTIVITY, activity_record, append_event, report_event
from resolvers.scopes import Condition

# 32 symbols (5 bits each), none that reads like another (no I/1, O/0).
RECEIPT_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
# 16 symbols: 80 bits. SECURITY.md has the arithmetic: at the online guessing rate the
# rate limits allow, a hit is negligible even with millions of reports on file.
RECEIPT_SYMBOLS = 16


def new_receipt_code() -> str:
    """`SSD-XXXX-XXXX-XXXX-XXXX` from a CSPRNG: the code is the capability to read a
    report's status, so it must be unguessable, never derived from anything."""
    chars = "".join(secrets.choice(RECEIPT_ALPHABET) for _ in range(RECEIPT_SYMBOLS))
    return "SSD-" + "-".join(chars[n:n + 4] for n in range(0, RECEIPT_SYMBOLS, 4))


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
    submitter: Principal,
) -> dict[str, Any]:
    now = _now()
    receipt = new_receipt_code()
    # A report is its submitter's by issuer, role and subject together; without a subject
    # (the anonymous public) it is nobody's.
    owned = submitter.subject is not None
    values = {
        "receipt_code": receipt,
        "category": category,
        "text": text,
        "reporter_contact": reporter_contact,
        "submitter_issuer": submitter.issuer if owned else None,
        "submitter_role": submitter.role if owned else None,
        "submitted_by": submitter.subject,
        "status": "received",
        "foreigner_id": foreigner_id,
        "assigned_officer_id": None,
        "created_at": now,
        "updated_at": now,
        **located_codes(area_code),
    }
    async with db.transaction() as conn:
        result = await conn.execute(insert(Report).values(**values).returning(Report.id))
        # The live event commits with the report, or not at all (resolvers/outbox.py).
        await report_event(conn, int(result.scalar_one()))
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
        activity_id = int(result.scalar_one())
        # The live event commits with the activity, or not at all (resolvers/outbox.py).
        await append_event(conn, TOPIC_ACTIVITY, activity_id,
                           activity_record(activity_id, values))
        return activity_id


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
        if not result.rowcount:
            return False
        await report_event(conn, report_id)
        return True
