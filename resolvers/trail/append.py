"""Writing the trail: one transaction per batch, chained; one insert for its entries and one
for their records."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from collections.abc import Sequence
from typing import Any
from weakref import WeakKeyDictionary

import orjson
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from resolvers.db import Database
from resolvers.models import AccessTrailEntry, AccessTrailRecord
from resolvers.trail.chain import (
    CANONICAL_COLUMNS,
    GENESIS,
    TrailEntry,
    TrailRecord,
    TrailWriteError,
    entries_of,
    entry_hash,
    row_of,
)
from resolvers.trail.locking import CHAIN_LOCK_KEY, chain_lock

TABLE = AccessTrailEntry.__table__
RECORDS = AccessTrailRecord.__table__
COLUMNS = (*CANONICAL_COLUMNS, "chain_format", "prev_hash", "entry_hash")
# A writer that lost a race on `seq` (one that skipped the lock) retries this often.
ATTEMPTS = 3


async def append_records(db: Database, records: Sequence[TrailRecord], *,
                         timeout: float) -> None:
    """`append_entries` for reads given per record: one entry per reader, request, record
    type and field set."""
    await append_entries(db, entries_of(records), timeout=timeout)


async def append_entries(db: Database, entries: Sequence[TrailEntry], *,
                         timeout: float) -> None:
    """Append `entries` to the chain in one transaction, within `timeout` seconds.

    Raises `TrailWriteError` on any failure, whatever its cause: the caller withholds the
    identity it was about to return (fail closed), so a bug here must not let data out.
    """
    if not entries:
        return
    try:
        async with asyncio.timeout(timeout):
            await _append_with_retries(db, entries, timeout)
    except TrailWriteError:
        raise
    except Exception as exc:  # timeout, driver, lock, constraint: the caller needs one
        raise TrailWriteError() from exc


# Writers of one process queue here, first come first served, before the database lock:
# SQLite hands its write lock to whichever waiter polls first, and under 16 concurrent
# writers some waited past the timeout while others wrote again and again.
_LOCAL_WRITERS: WeakKeyDictionary[Database, asyncio.Lock] = WeakKeyDictionary()


async def _append_with_retries(db: Database, entries: Sequence[TrailEntry],
                               timeout: float) -> None:
    local = _LOCAL_WRITERS.setdefault(db, asyncio.Lock())
    async with local:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                async with chain_lock(db, wait_seconds=timeout) as conn:
                    await append_locked(conn, entries)
                return
            except IntegrityError:
                if attempt == ATTEMPTS:
                    raise


async def last_link(conn: AsyncConnection) -> tuple[int, str]:
    """The last entry's (seq, entry_hash); (0, GENESIS) before the first entry."""
    last = (await conn.execute(select(TABLE.c.seq, TABLE.c.entry_hash)
                               .order_by(TABLE.c.seq.desc()).limit(1))).first()
    return (int(last.seq), str(last.entry_hash)) if last is not None else (0, GENESIS)


async def append_locked(conn: AsyncConnection, entries: Sequence[TrailEntry],
                        after: tuple[int, str] | None = None) -> tuple[int, str]:
    """Chain `entries` after `after` (default: the last entry); the caller holds the chain
    lock. Returns the new last (seq, entry_hash)."""
    rows, records, last = chained(entries, after if after is not None else await last_link(conn))
    if conn.dialect.name == "postgresql":
        await _insert_postgresql(conn, rows, records)
    else:
        await _insert_sqlite(conn, rows, records)
    return last


def chained(entries: Sequence[TrailEntry], after: tuple[int, str]
            ) -> tuple[list[dict[str, Any]], list[tuple[int, list[str]]], tuple[int, str]]:
    """The entries' rows chained after `after` = (seq, entry_hash), their records as
    (seq, record ids), and the new last link."""
    seq, prev = after
    rows: list[dict[str, Any]] = []
    records: list[tuple[int, list[str]]] = []
    for entry in entries:
        seq += 1
        row = row_of(seq, entry)
        ids = list(entry.record_ids)
        row["prev_hash"] = prev
        prev = row["entry_hash"] = entry_hash(prev, row, ids)
        rows.append(row)
        records.append((seq, ids))
    return rows, records, (seq, prev)


def append_sqlite_blocking(conn: sqlite3.Connection, entries: Sequence[TrailEntry]) -> None:
    """`append_entries` for SQLite in one blocking call, for a thread of its own (the
    trail's writer): a handful of driver calls instead of dozens of hops through aiosqlite's
    thread. `conn` is in autocommit mode (isolation_level None) with a busy timeout that
    bounds the wait for the write lock; BEGIN IMMEDIATE takes the chain lock (locking.py)."""
    if not entries:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        last = conn.execute(f"SELECT seq, entry_hash FROM {TABLE.name} "
                            "ORDER BY seq DESC LIMIT 1").fetchone()
        rows, records, _last = chained(
            entries, (int(last[0]), str(last[1])) if last is not None else (0, GENESIS))
        conn.executemany(_SQLITE_ENTRY_INSERT, _sqlite_entry_params(rows))
        conn.executemany(_SQLITE_RECORDS_INSERT, _sqlite_record_params(records))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


async def append_postgresql_direct(conn: Any, entries: Sequence[TrailEntry]) -> None:
    """`append_entries` for PostgreSQL over one plain asyncpg connection (the trail's
    writer's own): four round trips and no pool, where the same write through SQLAlchemy
    takes twice as many, each a wake-up of the writer's thread. The advisory lock is taken
    in the statement that begins the transaction, and the last link read by the next one
    (read committed: that statement's snapshot is taken after the lock was granted). The
    caller closes `conn` after any failure."""
    if not entries:
        return
    await conn.execute(f"BEGIN; SELECT pg_advisory_xact_lock({CHAIN_LOCK_KEY})")
    last = await conn.fetchrow(f"SELECT seq, entry_hash FROM {TABLE.name} "
                               "ORDER BY seq DESC LIMIT 1")
    rows, records, _last = chained(
        entries, (int(last["seq"]), str(last["entry_hash"])) if last is not None else (0, GENESIS))
    if len(rows) == 1:
        # One entry (a request's usual batch): entry and records in one statement.
        await conn.execute(_PG_ENTRY_WITH_RECORDS, *(rows[0][column] for column in COLUMNS),
                           *_pg_record_arrays(records))
    else:
        await conn.executemany(_PG_ENTRY_INSERT,
                               [tuple(row[column] for column in COLUMNS) for row in rows])
        await conn.execute(_PG_RECORDS_INSERT, *_pg_record_arrays(records))
    await conn.execute("COMMIT")


def _pg_record_arrays(records: list[tuple[int, list[str]]]) -> tuple[list[int], list[str]]:
    return ([seq for seq, ids in records for _ in ids],
            [record_id for _, ids in records for record_id in ids])


_PG_ENTRY_INSERT = (f"INSERT INTO {TABLE.name} ({', '.join(COLUMNS)}) VALUES "
                    f"({', '.join(f'${n}' for n in range(1, len(COLUMNS) + 1))})")


_PG_RECORDS_INSERT = (f"INSERT INTO {RECORDS.name} (seq, record_id) "
                      "SELECT unnest($1::bigint[]), unnest($2::text[])")
_PG_ENTRY_WITH_RECORDS = (
    f"WITH entry AS ({_PG_ENTRY_INSERT}) INSERT INTO {RECORDS.name} (seq, record_id) "
    f"SELECT unnest(${len(COLUMNS) + 1}::bigint[]), unnest(${len(COLUMNS) + 2}::text[])")


async def _insert_postgresql(conn: AsyncConnection, rows: list[dict[str, Any]],
                             records: list[tuple[int, list[str]]]) -> None:
    """Past SQLAlchemy's per-row parameter processing, in the lock's transaction: COPY for
    the entries; the records as two arrays the server unnests (one statement and two
    parameters however many records: cheaper than COPY's thousand tuples)."""
    raw = (await conn.get_raw_connection()).driver_connection
    await raw.executemany(  # type: ignore[union-attr]
        _PG_ENTRY_INSERT, [tuple(row[column] for column in COLUMNS) for row in rows])
    await raw.execute(_PG_RECORDS_INSERT, *_pg_record_arrays(records))  # type: ignore[union-attr]


async def _insert_sqlite(conn: AsyncConnection, rows: list[dict[str, Any]],
                         records: list[tuple[int, list[str]]]) -> None:
    await conn.exec_driver_sql(_SQLITE_ENTRY_INSERT, _sqlite_entry_params(rows))
    await conn.exec_driver_sql(_SQLITE_RECORDS_INSERT, _sqlite_record_params(records))


# The driver's own executemany for the entries; the records of each entry as one JSON
# array SQLite unpacks itself (`json_each`), so a thousand records are one parameter.
_SQLITE_ENTRY_INSERT = (f"INSERT INTO {TABLE.name} ({', '.join(COLUMNS)}) "
                        f"VALUES ({', '.join('?' for _ in COLUMNS)})")
_SQLITE_RECORDS_INSERT = (f"INSERT INTO {RECORDS.name} (seq, record_id) "
                          "SELECT ?, value FROM json_each(?)")


def _sqlite_entry_params(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    # SQLAlchemy's SQLite DateTime text (naive UTC), so its reads parse what we wrote.
    stored: dict[dt.datetime, str] = {}
    params = []
    for row in rows:
        at = row["at"]
        text = stored.get(at)
        if text is None:
            text = stored[at] = at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        params.append(tuple(text if column == "at" else row[column] for column in COLUMNS))
    return params


def _sqlite_record_params(records: list[tuple[int, list[str]]]) -> list[tuple[int, str]]:
    return [(seq, orjson.dumps(ids).decode()) for seq, ids in records]
