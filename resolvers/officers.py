"""Who an officer is, as the gateway checks a token that names one."""

from __future__ import annotations

from sqlalchemy import select

from resolvers.db import Database
from resolvers.models import Officer

# The kinds of officer the policy names (`officer_kind(role, kind)` in roles.polar).
FIELD = "field"
SUPERVISOR = "supervisor"


async def officer_kind(db: Database, officer_id: int) -> str | None:
    """"field" or "supervisor"; None when the office has no officer with this id."""
    if not 0 <= officer_id < 2**31:  # beyond the column's range: no such officer
        return None
    is_supervisor = await db.scalar(
        select(Officer.is_supervisor).where(Officer.id == officer_id))
    if is_supervisor is None:
        return None
    return SUPERVISOR if is_supervisor else FIELD
