"""Verifying the trail: recompute every entry's hash and link, in `seq` order, a chunk at a
time, each entry with its records and in its own chain format (resolvers.trail.chain).

The first bad entry is named by `seq` with one reason:
- "altered": the entry's content no longer matches its own hash — one of its columns, or
  its records: a record row deleted, changed, or added to it;
- "deleted/gap": a `seq` is missing (named: the first missing one) that no prune explains;
- "inserted": an entry the chain goes around (the next entry links to the one before it),
  or one placed before the chain's start; or record rows of a `seq` that has no entry
  (named by that seq);
- "bad link": the entry does not link to the entry before it (its link was forged, or the
  entry before was rewritten with a freshly computed hash).

After a prune, the first remaining entry links to the last pruned one, which the latest
prune entry names (its one record: "through:<seq>:<entry hash>"). A hash chain cannot tell
a truncated or extended tail from the real one: `last_seq`/`last_hash` are reported so an
operator can anchor the head somewhere else and compare later.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from resolvers.db import Database
from resolvers.models import AccessTrailEntry, AccessTrailRecord
from resolvers.trail.chain import GENESIS, stored_hash
from resolvers.trail.locking import read_snapshot

TABLE = AccessTrailEntry.__table__
RECORDS = AccessTrailRecord.__table__
# Entries, and record rows, read per statement: memory stays bounded whatever an entry lists.
CHUNK = 2000
RECORD_CHUNK = 20_000
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
            records = _Records(conn)
            before: RowMapping | None = None
            async for entry, after in _pairs(conn):
                _check(before, entry, after, start)
                ids = await records.of(int(entry["seq"]))
                if stored_hash(entry["prev_hash"], entry, sorted(ids)) != entry["entry_hash"]:
                    raise _Broken(int(entry["seq"]), "altered")
                _check_link(before, entry, after, start)
                checked += 1
                before = last = entry
            await records.none_left()
        except _Broken as broken:
            return VerifyResult(False, checked, broken.seq, broken.reason)
    if last is None:
        return VerifyResult(True, 0)
    return VerifyResult(True, checked, last_seq=int(last["seq"]), last_hash=last["entry_hash"])


async def _anchor(conn: AsyncConnection) -> tuple[int, str]:
    """Where the chain must start: seq 1 after GENESIS, or right after the latest prune."""
    latest = (await conn.execute(
        select(TABLE.c.seq)
        .where(TABLE.c.record_type == PRUNE_RECORD_TYPE, TABLE.c.fields == PRUNE_FIELDS)
        .order_by(TABLE.c.seq.desc()).limit(1))).first()
    if latest is None:
        return 1, GENESIS
    seq = int(latest.seq)
    marks = (await conn.execute(select(RECORDS.c.record_id).where(RECORDS.c.seq == seq)
                                .limit(2))).scalars().all()
    mark = prune_mark(marks[0]) if len(marks) == 1 else None
    if mark is None:
        raise _Broken(seq, "altered")
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


class _Records:
    """The record rows in (seq, record id) order, read RECORD_CHUNK at a time alongside the
    entries; rows of a seq that no entry has are an insertion."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._rows: list[Any] = []
        self._next = 0
        self._after: tuple[int, str] | None = None
        self._done = False

    async def _peek(self) -> Any | None:
        if self._next == len(self._rows) and not self._done:
            statement = (select(RECORDS.c.seq, RECORDS.c.record_id)
                         .order_by(RECORDS.c.seq, RECORDS.c.record_id).limit(RECORD_CHUNK))
            if self._after is not None:
                statement = statement.where(
                    tuple_(RECORDS.c.seq, RECORDS.c.record_id) > tuple_(*self._after))
            self._rows = list((await self._conn.execute(statement)).all())
            self._next = 0
            self._done = len(self._rows) < RECORD_CHUNK
            if self._rows:
                self._after = (int(self._rows[-1].seq), str(self._rows[-1].record_id))
        return self._rows[self._next] if self._next < len(self._rows) else None

    async def of(self, seq: int) -> list[str]:
        """The record ids of entry `seq`; raises on rows of an earlier seq left unclaimed."""
        ids: list[str] = []
        while (row := await self._peek()) is not None and int(row.seq) <= seq:
            if int(row.seq) < seq:
                raise _Broken(int(row.seq), "inserted")
            ids.append(str(row.record_id))
            self._next += 1
        return ids

    async def none_left(self) -> None:
        row = await self._peek()
        if row is not None:
            raise _Broken(int(row.seq), "inserted")


def _check(before: RowMapping | None, entry: RowMapping, after: RowMapping | None,
           start: tuple[int, str]) -> None:
    """Where the entry sits: the seq the chain expects next."""
    seq = int(entry["seq"])
    expected_seq = int(before["seq"]) + 1 if before is not None else start[0]
    if seq < expected_seq:
        raise _Broken(seq, "inserted")
    if seq > expected_seq:
        raise _Broken(expected_seq, "deleted/gap")


def _check_link(before: RowMapping | None, entry: RowMapping, after: RowMapping | None,
                start: tuple[int, str]) -> None:
    """How the entry (whose own hash holds) links to the one before it."""
    seq = int(entry["seq"])
    expected_prev = before["entry_hash"] if before is not None else start[1]
    if (before is not None and after is not None and after["prev_hash"] == expected_prev
            and after["prev_hash"] != entry["entry_hash"]):
        raise _Broken(seq, "inserted")
    if entry["prev_hash"] != expected_prev:
        raise _Broken(seq, "bad link")
