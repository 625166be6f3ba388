"""Schema migrations (Alembic), run programmatically by `sisada migrate` and the tests."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from resolvers.db import create_engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url)
    return config


def upgrade(database_url: str, revision: str = "head", *, identity_moved: bool = False) -> None:
    """Bring the database to `revision`. Blocking: call it outside a running event loop.

    Revision 0004 drops the identity columns; it refuses a database whose rows still hold
    identity unless the caller has copied it to the registry (`identity_moved`)."""
    config = alembic_config(database_url)
    config.attributes["identity_moved"] = identity_moved
    command.upgrade(config, revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def head_revision() -> str | None:
    """The revision `upgrade` brings a database to."""
    return ScriptDirectory.from_config(alembic_config("")).get_current_head()


def known_revisions() -> frozenset[str]:
    """Every revision this version can migrate from (a newer version's are not among them)."""
    script = ScriptDirectory.from_config(alembic_config(""))
    return frozenset(rev.revision for rev in script.walk_revisions())


async def current_revision(database_url: str) -> str | None:
    """The revision the database is at; None before its first migration (or empty)."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision())
    finally:
        await engine.dispose()


IDENTITY_REVISION = "0004"


def identity_rows(database_url: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Identity still held by an office database from before revision 0004: (persons,
    permit documents) in the registry's shape, for `sisada migrate` to move there before
    the columns are dropped. Empty once the columns are gone. Blocking."""
    return asyncio.run(_identity_rows(database_url))


async def _identity_rows(url: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            columns = await conn.run_sync(
                lambda sync: {c["name"] for c in inspect(sync).get_columns("foreigner")}
                if inspect(sync).has_table("foreigner") else set())
            if "full_name" not in columns:
                return [], []
            persons = [dict(row) for row in (await conn.execute(text(
                "SELECT id, full_name, passport_number, birth_date, photo_url FROM foreigner "
                "WHERE full_name IS NOT NULL ORDER BY id"))).mappings()]
            permits = [dict(row) for row in (await conn.execute(text(
                "SELECT id, foreigner_id AS person_id, number, sponsor_name FROM stay_permit "
                "WHERE number IS NOT NULL ORDER BY id"))).mappings()]
    finally:
        await engine.dispose()
    for person in persons:
        # SQLite hands dates back as text through a textual query.
        if isinstance(person["birth_date"], str):
            person["birth_date"] = dt.date.fromisoformat(person["birth_date"])
    return persons, permits


def scrub_dropped_identity(database_url: str) -> None:
    """Rewrite the tables identity was dropped from, so no dropped value stays on disk.

    Dropping a column does not erase it: PostgreSQL only marks it dropped (the bytes stay
    in every row until the table is rewritten) and SQLite leaves rebuilt tables' old pages
    on its free list. `VACUUM FULL` rewrites the two tables; SQLite's `VACUUM`, with
    secure_delete on, rewrites the file and the WAL is truncated. (Old WAL segments and
    backups are the operator's: SECURITY.md.) Blocking."""
    asyncio.run(_scrub(database_url))


async def _scrub(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            if conn.dialect.name == "postgresql":
                for table in ("foreigner", "stay_permit"):
                    await conn.exec_driver_sql(f"VACUUM FULL {table}")
            else:
                await conn.exec_driver_sql("PRAGMA secure_delete=ON")
                await conn.exec_driver_sql("VACUUM")
                await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        await engine.dispose()
