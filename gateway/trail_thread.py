"""The access trail's writer: a thread of its own, with its own database connection.

A page of a thousand names is recorded as soon as the registry's values are attached to
it, and graphql-core then completes the page's fields without yielding to the event loop
(tens of milliseconds). On the request's own loop the write would wait for that; on this
thread it runs meanwhile, and the request awaits it only before its response leaves.

- SQLite: one blocking connection, used by one worker thread: a write is a handful of
  driver calls (resolvers.trail.append_sqlite_blocking) that release the GIL while SQLite
  works, where the same write through aiosqlite hops between threads some sixty times.
- PostgreSQL: an event loop of its own and one plain asyncpg connection: a write is four
  round trips (resolvers.trail.append_postgresql_direct), and the server does the work in
  its own process.

Every trail write of the process goes through here, so writes also queue in one place.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sqlite3
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

from gateway import metrics
from gateway.tracing import Tracer, trail_write_span
from resolvers.db import postgresql_connection, sqlite_connection
from resolvers.trail import (
    TrailEntry,
    TrailWriteError,
    append_postgresql_direct,
    append_sqlite_blocking,
)

# How long closing waits for writes in flight before giving up on them.
CLOSE_SECONDS = 10.0
# The request's own backstop waits this much longer than the write's deadline: a write
# gives up by itself at its deadline (before writing anything), so a response blanked for
# a timeout never leaves entries behind that a late write would commit.
BACKSTOP_GRACE_SECONDS = 1.0


class TrailThread:
    """Runs trail writes off the request's event loop; call from any running loop."""

    def __init__(self, database_url: str, timeout: float, tracer: Tracer | None = None) -> None:
        self.timeout = timeout
        # Traces (gateway/tracing.py): a span per write. None: off.
        self._tracer = tracer
        self._backend: _Backend = (_SQLiteWriter(database_url, timeout)
                                   if database_url.startswith("sqlite")
                                   else _LoopWriter(database_url))

    def entries(self, entries: Sequence[TrailEntry]) -> asyncio.Future[None]:
        """Start appending `entries` now; the returned future (of the caller's loop) ends
        when they are committed, or raises `TrailWriteError` (also after `timeout`)."""
        deadline = time.monotonic() + self.timeout
        write = asyncio.ensure_future(self._bounded(self._backend.start(entries, deadline)))
        if self._tracer is not None:
            trail_write_span(self._tracer, write, len(entries))
        return write

    async def _bounded(self, write: asyncio.Future[None]) -> None:
        try:
            async with asyncio.timeout(self.timeout + BACKSTOP_GRACE_SECONDS):
                await asyncio.shield(write)
        except TrailWriteError:
            metrics.trail_written(ok=False)
            raise
        except Exception as exc:  # timeout, driver, lock: fail closed, whatever it was
            metrics.trail_written(ok=False)
            raise TrailWriteError() from exc
        metrics.trail_written(ok=True)

    async def close(self) -> None:
        await self._backend.close()


class _Backend(Protocol):
    def start(self, entries: Sequence[TrailEntry], deadline: float
              ) -> asyncio.Future[None]: ...

    async def close(self) -> None: ...


class _SQLiteWriter:
    def __init__(self, database_url: str, timeout: float) -> None:
        self._url = database_url
        self._busy_ms = max(1, int(timeout * 1000))
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="sisada-trail-writer")
        self._conn: sqlite3.Connection | None = None

    def start(self, entries: Sequence[TrailEntry], deadline: float) -> asyncio.Future[None]:
        return asyncio.get_running_loop().run_in_executor(self._executor, self._append,
                                                          entries, deadline)

    def _append(self, entries: Sequence[TrailEntry], deadline: float) -> None:
        # Only ever on the executor's one thread.
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            # Queued past its deadline: the request has given up on it, so nothing is written.
            raise TrailWriteError("the trail write waited past its deadline")
        if self._conn is None:
            self._conn = sqlite_connection(self._url, busy_timeout_ms=self._busy_ms)
        try:
            # The wait for SQLite's write lock (the chain lock) ends by the deadline.
            self._conn.execute(f"PRAGMA busy_timeout={max(1, int(remaining * 1000))}")
            append_sqlite_blocking(self._conn, entries)
        except sqlite3.Error:
            # A connection left in doubt is not reused.
            self._conn.close()
            self._conn = None
            raise

    async def close(self) -> None:
        def finish() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, finish)
        self._executor.shutdown(wait=True)


class _LoopWriter:
    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._loop = asyncio.new_event_loop()
        # Created on first use, from this thread's loop (an asyncpg connection belongs to
        # the loop that opened it); used by one write at a time, in arrival order.
        self._conn: Any = None
        self._lock: asyncio.Lock | None = None
        self._thread = threading.Thread(target=self._loop.run_forever,
                                        name="sisada-trail-writer", daemon=True)
        self._thread.start()

    def start(self, entries: Sequence[TrailEntry], deadline: float) -> asyncio.Future[None]:
        work = self._append(entries, deadline)
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self._loop))

    async def _append(self, entries: Sequence[TrailEntry], deadline: float) -> None:
        # On the writer's loop. Gives up (the transaction rolled back with its connection)
        # by the deadline, whether queued, waiting for the chain lock or writing.
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with asyncio.timeout_at(self._loop.time() + deadline - time.monotonic()):
            async with self._lock:
                if self._conn is None:
                    self._conn = await postgresql_connection(self._url)
                try:
                    await append_postgresql_direct(self._conn, entries)
                except BaseException:
                    # A connection left mid-transaction is not reused.
                    conn, self._conn = self._conn, None
                    conn.terminate()
                    raise

    async def close(self) -> None:
        async def drain() -> None:
            pending = [task for task in asyncio.all_tasks()
                       if task is not asyncio.current_task()]
            if pending:
                await asyncio.wait(pending, timeout=CLOSE_SECONDS)
            if self._conn is not None:
                await self._conn.close()
                self._conn = None

        if not self._loop.is_running():
            return
        try:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(drain(), self._loop))
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            await asyncio.to_thread(self._thread.join, CLOSE_SECONDS)
            if not self._thread.is_alive():
                self._loop.close()
