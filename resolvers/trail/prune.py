"""Pruning: entries older than the retention leave the database, the chain stays verifiable.

Only a prefix of the chain (in `seq` order) is removed — up to the first entry at or after
the cut-off time — so what remains is one unbroken chain. In the same transaction a prune
entry is chained at the end naming the last removed link ("through:<seq>:<entry hash>"),
which is where the first remaining entry must start (resolvers.trail.verify).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from resolvers.db import Database
from resolvers.models import AccessTrailEntry
from resolvers.trail.append import append_locked, last_link
from resolvers.trail.chain import TrailRecord, TrailWriteError
from resolvers.trail.locking import chain_lock, is_postgresql
from resolvers.trail.verify import PRUNE_FIELDS, PRUNE_RECORD_TYPE

TABLE = AccessTrailEntry.__table__
# Long enough for a large delete; gateways wait for the chain lock meanwhile (and fail
# closed past their own timeout), so prune at a quiet hour.
PRUNE_LOCK_WAIT_SECONDS = 60.0
# The prune entry's reader: the maintenance command, not a principal of the policy.
PRUNE_ISSUER = "sisada"
PRUNE_SUBJECT = "sisada trail prune"
PRUNE_ROLE = "-"
# Same text as migration 0005 creates.
_SQLITE_DELETE_TRIGGER = (
    "CREATE TRIGGER access_trail_no_delete BEFORE DELETE ON access_trail "
    "BEGIN SELECT RAISE(ABORT, 'access_trail is append-only'); END")


async def prune(db: Database, before: dt.datetime) -> int:
    """Delete the entries older than `before` (a prefix of the chain), chain a prune entry,
    and return how many entries were deleted. Raises `TrailWriteError` on failure."""
    if before.tzinfo is None:
        raise ValueError("a cut-off time carries its time zone")
    try:
        async with chain_lock(db, wait_seconds=PRUNE_LOCK_WAIT_SECONDS) as conn:
            # Taken before the delete: a prune of every entry still chains after the last.
            last = await last_link(conn)
            through = await _through(conn, before, last)
            deleted = await _delete_through(conn, through[0], postgresql=is_postgresql(db))
            await append_locked(conn, [_prune_record(*through)], after=last)
    except Exception as exc:  # driver, lock, trigger: the command reports one failure
        raise TrailWriteError("access trail prune failed") from exc
    return deleted


async def _through(conn: AsyncConnection, before: dt.datetime,
                   last: tuple[int, str]) -> tuple[int, str]:
    """The last (seq, entry hash) to delete: just before the first entry at or after the
    cut-off, or the last entry if all are older. Where nothing goes, the link the chain
    already starts from (so the prune entry repeats the previous prune's mark)."""
    first_kept = await conn.scalar(select(func.min(TABLE.c.seq)).where(TABLE.c.at >= before))
    if first_kept is None:
        return last
    link = await conn.scalar(select(TABLE.c.prev_hash).where(TABLE.c.seq == first_kept))
    return int(first_kept) - 1, str(link)


async def _delete_through(conn: AsyncConnection, seq: int, *, postgresql: bool) -> int:
    statement = delete(TABLE).where(TABLE.c.seq <= seq)
    if postgresql:
        # Lets the trigger pass this transaction's DELETE (is_local: ends with it).
        await conn.execute(text("SELECT set_config('sisada.trail_prune', 'on', true)"))
        result = await conn.execute(statement)
        await conn.execute(text("SELECT set_config('sisada.trail_prune', 'off', true)"))
        return int(result.rowcount)
    # DDL is transactional in SQLite: no other connection ever sees the trigger missing.
    await conn.exec_driver_sql("DROP TRIGGER access_trail_no_delete")
    result = await conn.execute(statement)
    await conn.exec_driver_sql(_SQLITE_DELETE_TRIGGER)
    return int(result.rowcount)


def _prune_record(seq: int, link: str) -> TrailRecord:
    return TrailRecord(
        at=dt.datetime.now(dt.UTC), issuer=PRUNE_ISSUER, subject=PRUNE_SUBJECT,
        role=PRUNE_ROLE, area=None, office_code=None, officer_id=None,
        record_type=PRUNE_RECORD_TYPE, record_id=f"through:{seq}:{link}",
        fields=(PRUNE_FIELDS,), purpose=None, request_id=uuid.uuid4().hex,
        operation_name=None, document_hash=hashlib.sha256(b"").hexdigest(),
        client_address=None)
