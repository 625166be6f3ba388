"""Engine creation and the small query surface the rest of the code uses.

Each statement borrows its own pooled connection: DataLoaders of one request
dispatch concurrently, and one AsyncSession must not be shared between tasks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql import Executable


class DatabaseUnavailableError(RuntimeError):
    """The database cannot be reached; the message never carries driver details."""


def create_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class Database:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def all(self, statement: Executable) -> Sequence[RowMapping]:
        async with self.engine.connect() as conn:
            result = await conn.execute(statement)
            return result.mappings().all()

    async def first(self, statement: Executable) -> RowMapping | None:
        rows = await self.all(statement)
        return rows[0] if rows else None

    async def scalar(self, statement: Executable) -> Any:
        async with self.engine.connect() as conn:
            return await conn.scalar(statement)

    def transaction(self) -> Any:
        """`async with db.transaction() as conn:` — commits on success."""
        return self.engine.begin()

    async def ping(self) -> None:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:  # drivers raise many types; callers need one
            raise DatabaseUnavailableError("database unavailable") from exc


__all__ = ["AsyncConnection", "Database", "DatabaseUnavailableError", "create_engine"]
