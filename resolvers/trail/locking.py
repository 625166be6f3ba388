"""The chain lock: one writer at a time across every process that shares the database.

Two gateway replicas on one PostgreSQL, or two processes on one SQLite file, each read the
last entry and chain after it; without a lock held from that read to the commit, both would
chain after the same entry. PostgreSQL: a transaction-scoped advisory lock, taken before the
read. SQLite: `BEGIN IMMEDIATE`, which takes the database's write lock before the read
(Python's sqlite3 would otherwise begin a deferred transaction only at the first insert).
The primary key on `seq` is the backstop: a writer that skipped the lock fails, it cannot
fork the chain.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from resolvers.db import Database

# pg_advisory_xact_lock's key for the trail chain: any constant no other lock uses.
CHAIN_LOCK_KEY = 0x5349_5341_4441_0001  # "SISADA" 1: arbitrary, never to change
# What resolvers.db sets on every SQLite connection; restored after a bounded wait.
_SQLITE_BUSY_TIMEOUT_MS = 30_000


def is_postgresql(db: Database) -> bool:
    return db.engine.dialect.name == "postgresql"


@contextlib.asynccontextmanager
async def chain_lock(db: Database, *, wait_seconds: float) -> AsyncIterator[AsyncConnection]:
    """A connection in a write transaction that holds the chain lock; commits on success.

    `wait_seconds` bounds SQLite's wait for the write lock (its busy timeout blocks the
    driver's thread, which cancelling the awaiting task does not interrupt).
    """
    if is_postgresql(db):
        async with db.engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                               {"key": CHAIN_LOCK_KEY})
            yield conn
        return
    async with _sqlite_transaction(db, "BEGIN IMMEDIATE", wait_seconds) as conn:
        yield conn


@contextlib.asynccontextmanager
async def read_snapshot(db: Database) -> AsyncIterator[AsyncConnection]:
    """A connection whose reads all see one snapshot (verify reads the trail in chunks,
    and a prune committed between two chunks must not look like a gap)."""
    if is_postgresql(db):
        async with db.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                yield conn
        return
    # A deferred transaction in WAL mode: the snapshot is taken at the first read.
    async with _sqlite_transaction(db, "BEGIN", _SQLITE_BUSY_TIMEOUT_MS / 1000) as conn:
        yield conn


@contextlib.asynccontextmanager
async def _sqlite_transaction(db: Database, begin: str,
                              wait_seconds: float) -> AsyncIterator[AsyncConnection]:
    async with db.engine.connect() as conn:
        # AUTOCOMMIT stops the driver from issuing its own BEGIN, so ours is the one that
        # counts; the pool restores the default isolation level when the connection returns.
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        wait_ms = max(1, int(wait_seconds * 1000))
        try:
            await conn.exec_driver_sql(f"PRAGMA busy_timeout = {wait_ms}")
            await conn.exec_driver_sql(begin)
            yield conn
            await conn.exec_driver_sql("COMMIT")
            await conn.exec_driver_sql(f"PRAGMA busy_timeout = {_SQLITE_BUSY_TIMEOUT_MS}")
        except BaseException:
            # Closing the connection rolls back whatever it began and drops the changed busy
            # timeout with it; also safe after a cancellation left the driver mid-statement.
            await conn.invalidate()
            raise
