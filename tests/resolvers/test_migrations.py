"""The Alembic migrations create exactly the schema the models declare, on both backends, and
the office database holds no identity: `sisada migrate` moves an older database's identity
to the registry before dropping its columns."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from conftest import (
    Deployment,
    _create_pg_database,
    _drop_pg_database,
    run_async,
    run_in_thread,
)
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from resolvers import migrate
from resolvers.models import Base


async def _diff(url: str) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata))
    finally:
        await engine.dispose()


def test_migrated_schema_matches_the_models(deployment: Deployment) -> None:
    assert run_async(_diff(deployment.database_url)) == []


# -- identity lives in the registry only (migration 0004) ---------------------------------

IDENTITY_COLUMNS = {"full_name", "passport_number", "birth_date", "photo_url", "number",
                    "sponsor_name", "photo"}


FREE_TEXT = {"access_trail": {"operation_name"}}


async def _columns_and_text(url: str) -> tuple[dict[str, set[str]], str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda sync: {
                name: {c["name"] for c in inspect(sync).get_columns(name)}
                for name in inspect(sync).get_table_names()})
            dump = []
            for name, columns in tables.items():
                # Callers' own free text is theirs: an operation name in the access trail
                # says what the caller named it (a test of the trail spells a passport
                # number in one on purpose, tests/gateway/test_access_trail_http.py).
                kept = sorted(columns - FREE_TEXT.get(name, set()))
                listed = ", ".join(f'"{c}"' for c in kept)
                rows = (await conn.execute(text(f'SELECT {listed} FROM "{name}"'))).all()
                dump.extend(repr(tuple(row)) for row in rows)
    finally:
        await engine.dispose()
    return tables, "\n".join(dump)


def test_office_database_holds_no_identity_after_migration(deployment: Deployment) -> None:
    tables, dump = run_async(_columns_and_text(deployment.database_url))
    assert "foreigner" in tables and "stay_permit" in tables
    for name, columns in tables.items():
        assert not columns & IDENTITY_COLUMNS, (name, columns & IDENTITY_COLUMNS)
    # Not under another name either: no seeded identity value is anywhere in the office.
    for person in deployment.facts.foreigners:
        assert person["full_name"] not in dump
        assert person["passport_number"] not in dump
    for numbers in list(deployment.facts.permit_numbers.values())[:200]:
        assert all(number not in dump for number in numbers)


OLD_FOREIGNER = ("INSERT INTO foreigner (id, full_name, passport_number, birth_date, photo_url, "
                 "nationality, sex, created_at) VALUES (7, 'Ada Lovelace', 'X1234567', "
                 "'1990-06-15', 'https://photos.invalid/7.jpg', 'GBR', 'F', "
                 "'2026-01-01 00:00:00+00:00'), (8, 'Bo Ng', 'Y7654321', '1990-01-01', NULL, "
                 "'SGP', 'M', '2026-01-01 00:00:00+00:00')")
OLD_PERMIT = ("INSERT INTO stay_permit (id, foreigner_id, number, permit_type, status, "
              "issued_on, expires_on, sponsor_name, sponsor_type, is_current) VALUES "
              "(70, 7, '2C26AB1234-Q', 'KITAS', 'active', '2026-01-01', '2027-01-01', "
              "'PT Contoh', 'company', TRUE)")


async def _execute(url: str, *statements: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def old_office(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """An office database at revision 0003 holding identity, and an empty registry's URL."""
    names: list[str] = []
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'office.db'}"
        registry = f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}"
    else:
        names = [_create_pg_database(), _create_pg_database()]
        url, registry = (f"postgresql+asyncpg://postgres@127.0.0.1:5432/{n}" for n in names)
    try:
        run_in_thread(migrate.upgrade, url, "0003")
        run_async(_execute(url, OLD_FOREIGNER, OLD_PERMIT))
        yield url, registry
    finally:
        for name in names:
            _drop_pg_database(name)


def test_dropping_identity_nobody_moved_is_refused(old_office: tuple[str, str]) -> None:
    url, _registry = old_office
    with pytest.raises(Exception, match="still carry identity"):
        run_in_thread(migrate.upgrade, url)
    tables, dump = run_async(_columns_and_text(url))
    assert "full_name" in tables["foreigner"] and "Ada Lovelace" in dump


def test_sisada_migrate_moves_identity_to_the_registry(old_office: tuple[str, str],
                                                        tmp_path: Path) -> None:
    url, registry = old_office
    env = {k: v for k, v in os.environ.items() if not k.startswith("SISADA_")}
    env.update(SISADA_DATABASE_URL=url, SISADA_REGISTRY_DATABASE_URL=registry)
    result = subprocess.run([sys.executable, "-m", "gateway.cli", "migrate"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "moved the identity of 2 foreigners" in result.stderr
    tables, dump = run_async(_columns_and_text(url))
    assert not tables["foreigner"] & IDENTITY_COLUMNS
    assert not tables["stay_permit"] & IDENTITY_COLUMNS
    for secret in ("Ada Lovelace", "X1234567", "2C26AB1234-Q", "PT Contoh", "photos.invalid"):
        assert secret not in dump
    _tables, moved = run_async(_columns_and_text(registry))
    for secret in ("Ada Lovelace", "X1234567", "2C26AB1234-Q", "PT Contoh", "Bo Ng"):
        assert secret in moved
    # The age band's base year: the first 1 January on which each was 0.
    ages = run_async(_rows(url, "SELECT id, age_base_year FROM foreigner ORDER BY id"))
    assert ages == [(7, 1991), (8, 1990)]
    # Not on disk either: a dropped column's bytes, a rebuilt table's freed pages, the WAL.
    raw = b"".join(path.read_bytes() for path in run_async(_files_of(url)))
    for secret in ("Ada Lovelace", "X1234567", "2C26AB1234-Q", "PT Contoh", "Y7654321"):
        assert secret.encode() not in raw, secret


async def _files_of(url: str) -> list[Path]:
    """The files holding the office's tables: the SQLite file and its WAL, or PostgreSQL's
    relation files of the two tables identity was dropped from (after a checkpoint)."""
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[1])
        return [p for p in (path, Path(f"{path}-wal")) if p.exists()]
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("CHECKPOINT"))
            data = await conn.scalar(text("SHOW data_directory"))
            files = [await conn.scalar(text(f"SELECT pg_relation_filepath('{table}')"))
                     for table in ("foreigner", "stay_permit")]
    finally:
        await engine.dispose()
    return [Path(data) / name for name in files]


async def _rows(url: str, statement: str) -> list[tuple[Any, ...]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return [tuple(row) for row in (await conn.execute(text(statement))).all()]
    finally:
        await engine.dispose()
