"""Verifying the chain: recompute every hash, in `seq` order, a chunk at a time.

The first bad entry is named by `seq` with one reason:
- "altered": the entry's content no longer matches its own hash;
- "deleted/gap": a `seq` is missing (named: the first missing one) that no prune explains;
- "inserted": an entry the chain goes around (the next entry links to the one before it),
  or one placed before the chain's start;
- "bad link": the entry does not link to the entry before it (its link was forged, or the
  entry before was rewritten with a freshly computed hash).

After a prune, the first remaining entry links to the last pruned one, which the latest
prune entry names (record_id "through:<seq>:<entry hash>"). A hash chain cannot tell a
truncated or extended tail from the real one: `last_seq`/`last_hash` are reported so an
operator can anchor the head somewhere else and compare later.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from resolvers.db import Database
from resolvers.models import AccessTrailEntry
from resolvers.trail.chain import GENESIS, entry_hash
from resolvers.trail.locking import read_snapshot

TABLE = AccessTrailEntry.__table__
CHUNK = 2000
PRUNE_RECORD_TYPE = "access_trail"
PRUNE_FIELDS = "pruned"


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    reason: str | None = None
    last_seq: int | None = None
    last_hash: str | None = None


class _Broken(Exception):
    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(f"{reason} at {seq}")
        self.seq, self.reason = seq, reason


def prune_mark(record_id: str) -> tuple[int, str] | None:
    """(seq, entry hash) of the last entry a prune removed, from its record id; None if
    the record id is not a prune mark."""
    parts = record_id.split(":")
    if len(parts) != 3 or parts[0] != "through" or not parts[1].isdigit() or len(parts[2]) != 64:
        return None
    return int(parts[1]), parts[2]


async def verify_chain(db: Database) -> VerifyResult:
    """Recompute the chain. Database errors propagate (a verify that cannot read is no
    verdict); the result names the first bad entry otherwise."""
    async with read_snapshot(db) as conn:
        checked, last = 0, None
        try:
            start = await _anchor(conn)
            before: RowMapping | None = None
            async for entry, after in _pairs(conn):
                _check(before, entry, after, start)
                checked += 1
                before = last = entry
        except _Broken as broken:
            return VerifyResult(False, checked, broken.seq, broken.reason)
    if last is None:
        return VerifyResult(True, 0)
    return VerifyResult(True, checked, last_seq=int(last["seq"]), last_hash=last["entry_hash"])


async def _anchor(conn: AsyncConnection) -> tuple[int, str]:
    """Where the chain must start: seq 1 after GENESIS, or right after the latest prune."""
    latest = (await conn.execute(
        select(TABLE.c.seq, TABLE.c.record_id)
        .where(TABLE.c.record_type == PRUNE_RECORD_TYPE, TABLE.c.fields == PRUNE_FIELDS)
        .order_by(TABLE.c.seq.desc()).limit(1))).first()
    if latest is None:
        return 1, GENESIS
    mark = prune_mark(latest.record_id)
    if mark is None:
        raise _Broken(int(latest.seq), "altered")
    return mark[0] + 1, mark[1]


async def _pairs(conn: AsyncConnection) -> AsyncIterator[tuple[RowMapping, RowMapping | None]]:
    """Each entry with the one after it (None for the last), read CHUNK rows at a time."""
    pending: RowMapping | None = None
    after_seq: int | None = None
    while True:
        statement = select(TABLE).order_by(TABLE.c.seq).limit(CHUNK)
        if after_seq is not None:
            statement = statement.where(TABLE.c.seq > after_seq)
        rows = (await conn.execute(statement)).mappings().all()
        for row in rows:
            if pending is not None:
                yield pending, row
            pending = row
        if len(rows) < CHUNK:
            break
        after_seq = int(rows[-1]["seq"])
    if pending is not None:
        yield pending, None


def _check(before: RowMapping | None, entry: RowMapping, after: RowMapping | None,
           start: tuple[int, str]) -> None:
    seq = int(entry["seq"])
    expected_seq, expected_prev = ((int(before["seq"]) + 1, before["entry_hash"])
                                   if before is not None else start)
    if seq < expected_seq:
        raise _Broken(seq, "inserted")
    if seq > expected_seq:
        raise _Broken(expected_seq, "deleted/gap")
    if entry_hash(entry["prev_hash"], entry) != entry["entry_hash"]:
        raise _Broken(seq, "altered")
    if (before is not None and after is not None and after["prev_hash"] == expected_prev
            and after["prev_hash"] != entry["entry_hash"]):
        raise _Broken(seq, "inserted")
    if entry["prev_hash"] != expected_prev:
        raise _Broken(seq, "bad link")

