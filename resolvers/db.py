"""Engine creation and the small query surface the rest of the code uses.

Each statement borrows its own pooled connection: DataLoaders of one request
dispatch concurrently, and one AsyncSession must not be shared between tasks.

This is the boundary where driver errors that mean "the database cannot be
reached" (refused or dropped connections, connect timeouts, a server shutting
down or starting up, an SQLite file that cannot be opened) become one
`DatabaseUnavailableError`. Every other error passes unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import event, exc, text
from sqlalchemy.engine import RowMapping, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql import Executable

log = logging.getLogger("sisada.db")

# Seconds to wait for a new PostgreSQL connection: a blackholed host must not hold a
# request for asyncpg's default of a minute.
CONNECT_TIMEOUT = 5.0

# SQLSTATE classes and codes of PostgreSQL that mean the server is out of reach:
# 08 connection exception, 57P01-03 shutdown / crash / still starting, 53300 too
# many connections.
_UNAVAILABLE_SQLSTATE_CLASSES = ("08",)
_UNAVAILABLE_SQLSTATES = {"57P01", "57P02", "57P03", "53300"}

# SQLite primary result codes that mean the file cannot be used right now.
_UNAVAILABLE_SQLITE_CODES = {
    sqlite3.SQLITE_BUSY,
    sqlite3.SQLITE_LOCKED,
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_CANTOPEN,
}

T = TypeVar("T")


class DatabaseUnavailableError(RuntimeError):
    """The database cannot be reached; the message never carries driver details.

    The driver's exception stays on `__cause__` for the server log.
    """

    def __init__(self, message: str = "database unavailable") -> None:
        super().__init__(message)


def create_engine(url: str, *, connect_timeout: float = CONNECT_TIMEOUT,
                  statement_timeout: float = 0) -> AsyncEngine:
    """`statement_timeout` (seconds, PostgreSQL only; 0: the server's own setting): a
    statement running longer is cancelled by the server (SQLSTATE 57014)."""
    # hide_parameters: a statement error names the SQL, never its bound values (a passport
    # number searched for, a name), so the server log carries none of them.
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # pool_pre_ping: connections that died in an outage are replaced on checkout, so the
    # gateway recovers by itself when the database returns.
    # jit off: the planner over-estimates the coarsened-location statements (correlated
    # counts per area, resolvers/precision.py), and compiling them took ~3 s of a 0.1 s query.
    # statement_timeout: the server stops work nobody waits for any more.
    # 0 leaves the server's (or the role's) own setting alone.
    server_settings = {"jit": "off"}
    if statement_timeout > 0:
        server_settings["statement_timeout"] = str(max(1, round(statement_timeout * 1000)))
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True,
                               connect_args={"timeout": connect_timeout,
                                             "server_settings": server_settings},
                               hide_parameters=True)


def sqlite_connection(url: str, *, busy_timeout_ms: int) -> sqlite3.Connection:
    """A blocking connection to the SQLite file of `url`, set up like the engine's, in
    autocommit mode (the caller begins its own transactions), for a thread of its own."""
    database = make_url(url).database
    if not database:
        raise ValueError("not an SQLite file URL")
    connection = sqlite3.connect(database, isolation_level=None)
    _sqlite_pragmas(connection, None)
    connection.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    return connection


async def postgresql_connection(url: str, *, connect_timeout: float = CONNECT_TIMEOUT) -> Any:
    """A plain asyncpg connection to the database of `url` (a SQLAlchemy URL), outside the
    engine's pool, for a writer that owns it."""
    import asyncpg

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    return await asyncpg.connect(dsn, timeout=connect_timeout)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    # WAL's recommended level: a commit is durable against a crash of the process (every
    # access-trail batch included), and syncs at checkpoints rather than on each commit;
    # only a power loss may drop the last commits (never corrupt). PostgreSQL is the
    # production backend; the embedded SQLite file is for one office box.
    cursor.execute("PRAGMA synchronous=NORMAL")
    # The gateway checkpoints in the background (Database.checkpoint_forever); this is
    # only the backstop: 40 MB of log before a commit checkpoints by itself.
    cursor.execute("PRAGMA wal_autocheckpoint=10000")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def is_unavailable(error: BaseException) -> bool:
    """Whether `error`, or an exception it was raised from, means the database is out of reach."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _means_unavailable(current):
            return True
        current = current.__cause__ or (None if current.__suppress_context__
                                        else current.__context__)
    return False


def _means_unavailable(error: BaseException) -> bool:
    if isinstance(error, OSError):  # refused, reset, unreachable, DNS, TimeoutError
        return True
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, exc.TimeoutError):  # no pooled connection came free in time
        return True
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str) and (
        sqlstate.startswith(_UNAVAILABLE_SQLSTATE_CLASSES) or sqlstate in _UNAVAILABLE_SQLSTATES
    ):
        return True
    sqlite_code = getattr(error, "sqlite_errorcode", None)
    return isinstance(sqlite_code, int) and sqlite_code & 0xFF in _UNAVAILABLE_SQLITE_CODES


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except DatabaseUnavailableError:
        raise
    except Exception as error:
        if is_unavailable(error):
            raise DatabaseUnavailableError() from error
        raise


class Database:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def all(self, statement: Executable) -> Sequence[RowMapping]:
        with _translated():
            async with self.engine.connect() as conn:
                result = await conn.execute(statement)
                return result.mappings().all()

    async def first(self, statement: Executable) -> RowMapping | None:
        rows = await self.all(statement)
        return rows[0] if rows else None

    async def scalar(self, statement: Executable) -> Any:
        with _translated():
            async with self.engine.connect() as conn:
                return await conn.scalar(statement)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """`async with db.transaction() as conn:` — commits on success.

        Connecting, the statements of the block and the commit are all translated.
        """
        with _translated():
            async with self.engine.begin() as conn:
                yield conn

    async def ping(self) -> None:
        """Raise `DatabaseUnavailableError` unless a trivial query succeeds.

        Readiness fails on any error, not only connection errors: a database that is
        reachable but unusable (missing, wrong credentials) is not ready either.
        """
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as error:  # drivers raise many types; callers need one
            raise DatabaseUnavailableError() from error

    async def checkpoint_forever(self, every_seconds: float) -> None:
        """SQLite only: fold the write-ahead log into the database every few seconds, off
        the request path. Left to SQLite, the commit that crosses the WAL's threshold runs
        the checkpoint itself, and a request writing a thousand trail entries paid ~25 ms
        for it on every commit. (The connections' own threshold stays as a backstop.)"""
        if self.engine.dialect.name != "sqlite":
            return
        while True:
            await asyncio.sleep(every_seconds)
            try:
                async with self.engine.connect() as conn:
                    conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                    await conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            except Exception as error:  # a checkpoint missed is retried; never fatal
                log.warning("sqlite checkpoint failed: %s", type(error).__name__)


async def on_database(url: str, action: Callable[[Database], Awaitable[T]]) -> T:
    """`action` over a Database on an engine of its own, disposed afterwards: a one-shot
    command's connection (the server keeps one engine for its life)."""
    engine = create_engine(url)
    try:
        return await action(Database(engine))
    finally:
        await engine.dispose()


__all__ = [
    "AsyncConnection",
    "Database",
    "DatabaseUnavailableError",
    "create_engine",
    "is_unavailable",
    "on_database",
]

