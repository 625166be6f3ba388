"""Pruning: entries older than the retention leave the database, the chain stays verifiable.

Only a prefix of the chain (in `seq` order) is removed — up to the first entry at or after
the cut-off time — with its record rows, so what remains is one unbroken chain. In the same
transaction a prune entry is chained at the end, its one record naming the last removed
link ("through:<seq>:<entry hash>"), which is where the first remaining entry must start
(resolvers.trail.verify).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from resolvers.db import Database
from resolvers.models import AccessTrailEntry, AccessTrailRecord
from resolvers.trail.append import append_locked, last_link
from resolvers.trail.chain import TrailEntry, TrailWriteError
from resolvers.trail.locking import chain_lock, is_postgresql
from resolvers.trail.verify import PRUNE_FIELDS, PRUNE_RECORD_TYPE

TABLE = AccessTrailEntry.__table__
RECORDS = AccessTrailRecord.__table__
# Long enough for a large delete; gateways wait for the chain lock meanwhile (and fail
# closed past their own timeout), so prune at a quiet hour.
PRUNE_LOCK_WAIT_SECONDS = 60.0
# The prune entry's reader: the maintenance command, not a principal of the policy.
PRUNE_ISSUER = "sisada"
PRUNE_SUBJECT = "sisada trail prune"
PRUNE_ROLE = "-"
# Same texts as migrations 0005 and 0006 create: (trigger, its statement).
_SQLITE_DELETE_TRIGGERS = (
    ("access_trail_no_delete",
     "CREATE TRIGGER access_trail_no_delete BEFORE DELETE ON access_trail "
     "BEGIN SELECT RAISE(ABORT, 'access_trail is append-only'); END"),
    ("access_trail_record_no_delete",
     "CREATE TRIGGER access_trail_record_no_delete BEFORE DELETE ON access_trail_record "
     "BEGIN SELECT RAISE(ABORT, 'access_trail_record is append-only'); END"),
)


@dataclass(frozen=True, slots=True)
class Pruned:
    """What a prune deleted: chained entries, and the record reads they listed."""

    entries: int
    records: int


async def prune(db: Database, before: dt.datetime) -> Pruned:
    """Delete the entries older than `before` (a prefix of the chain) and their records,
    chain a prune entry, and say what was deleted. Raises `TrailWriteError` on failure."""
    if before.tzinfo is None:
        raise ValueError("a cut-off time carries its time zone")
    try:
        async with chain_lock(db, wait_seconds=PRUNE_LOCK_WAIT_SECONDS) as conn:
            # Taken before the delete: a prune of every entry still chains after the last.
            last = await last_link(conn)
            through = await _through(conn, before, last)
            deleted = await _delete_through(conn, through[0], postgresql=is_postgresql(db))
            await append_locked(conn, [_prune_entry(*through)], after=last)
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


async def _delete_through(conn: AsyncConnection, seq: int, *, postgresql: bool) -> Pruned:
    if postgresql:
        # Lets the triggers pass this transaction's DELETEs (is_local: ends with it).
        await conn.execute(text("SELECT set_config('sisada.trail_prune', 'on', true)"))
        pruned = await _delete(conn, seq)
        await conn.execute(text("SELECT set_config('sisada.trail_prune', 'off', true)"))
        return pruned
    # DDL is transactional in SQLite: no other connection ever sees a trigger missing.
    for trigger, _create in _SQLITE_DELETE_TRIGGERS:
        await conn.exec_driver_sql(f"DROP TRIGGER {trigger}")
    pruned = await _delete(conn, seq)
    for _trigger, create in _SQLITE_DELETE_TRIGGERS:
        await conn.exec_driver_sql(create)
    return pruned


async def _delete(conn: AsyncConnection, seq: int) -> Pruned:
    records = await conn.execute(delete(RECORDS).where(RECORDS.c.seq <= seq))
    entries = await conn.execute(delete(TABLE).where(TABLE.c.seq <= seq))
    return Pruned(entries=int(entries.rowcount), records=int(records.rowcount))


def _prune_entry(seq: int, link: str) -> TrailEntry:
    return TrailEntry(
        at=dt.datetime.now(dt.UTC), issuer=PRUNE_ISSUER, subject=PRUNE_SUBJECT,
        role=PRUNE_ROLE, area=None, office_code=None, officer_id=None,
        record_type=PRUNE_RECORD_TYPE, fields=(PRUNE_FIELDS,), purpose=None,
        request_id=uuid.uuid4().hex, operation_name=None,
        document_hash=hashlib.sha256(b"").hexdigest(), client_address=None,
        record_ids=(f"through:{seq}:{link}",))
