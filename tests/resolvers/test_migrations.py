"""The Alembic migrations create exactly the schema the models declare, on both backends, and
the office database holds no identity: `sisada migrate` moves an older database's identity
to the registry before dropping its columns. The access trail's per-record entries of
revision 0005 still verify after 0006 lists records apart, and downgrade unchanged."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
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
from resolvers.db import Database
from resolvers.models import Base
from resolvers.trail import (
    GENESIS,
    TrailRecord,
    VerifyResult,
    append_records,
    entries_for_record,
    verify_chain,
)
from resolvers.trail.chain import CANONICAL_COLUMNS_V1, entry_hash_v1


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


# -- the access trail's entries and their records (migration 0006) --------------------------

TRAIL_AT = dt.datetime(2026, 12, 1, 8, 30, 15, 123456, tzinfo=dt.UTC)
# The access trail as migration 0005 made it: one row per record read, its id inline.
TRAIL_0005 = sa.Table(
    "access_trail", sa.MetaData(),
    *(sa.Column(name, sa.DateTime(timezone=True) if name == "at" else
                sa.Integer() if name in ("seq", "officer_id") else sa.Text())
      for name in (*CANONICAL_COLUMNS_V1, "prev_hash", "entry_hash")))


def _old_entries(count: int) -> list[dict[str, Any]]:
    """`count` per-record entries chained as the writer of revision 0005 chained them."""
    rows, prev = [], GENESIS
    for seq in range(1, count + 1):
        row: dict[str, Any] = {
            "seq": seq, "at": TRAIL_AT, "issuer": "sisada-test", "subject": "officer-1",
            "role": "reader", "area": "31.74.02", "office_code": "31.74", "officer_id": 1,
            "record_type": "Foreigner", "record_id": str(100 + seq),
            "fields": "fullName,passportNumber", "purpose": "field_check",
            "request_id": "req-old", "operation_name": "Check", "document_hash": "ab" * 32,
            "client_address": "127.0.0.1", "prev_hash": prev}
        prev = row["entry_hash"] = entry_hash_v1(prev, row)
        rows.append(row)
    return rows


async def _insert_old(url: str, rows: list[dict[str, Any]]) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.insert(TRAIL_0005), rows)
    finally:
        await engine.dispose()


def _on(url: str, action: Any) -> Any:
    async def run() -> Any:
        engine = create_async_engine(url)
        try:
            return await action(Database(engine))
        finally:
            await engine.dispose()

    return run_async(run())


@pytest.fixture(params=["sqlite", "postgresql"])
def trail_of_0005(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database at revision 0005 holding four per-record trail entries."""
    names: list[str] = []
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'office.db'}"
    else:
        names = [_create_pg_database()]
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{names[0]}"
    try:
        run_in_thread(migrate.upgrade, url, "0005")
        run_async(_insert_old(url, _old_entries(4)))
        yield url
    finally:
        for name in names:
            _drop_pg_database(name)


def _new_read(record_id: str) -> TrailRecord:
    return TrailRecord(
        at=TRAIL_AT + dt.timedelta(days=1), issuer="sisada-test", subject="officer-2",
        role="reader", area="31.74", office_code="31.74", officer_id=2,
        record_type="Foreigner", record_id=record_id, fields=("fullName",),
        purpose="field_check", request_id="req-new", operation_name=None,
        document_hash="cd" * 32, client_address=None)


def test_old_per_record_entries_verify_after_migration(trail_of_0005: str) -> None:
    url = trail_of_0005
    old = _old_entries(4)
    run_in_thread(migrate.upgrade, url)
    # Each kept its hash; its record moved to the record table; it is marked format 1.
    stored = run_async(_rows(url, "SELECT seq, entry_hash, chain_format, record_count "
                                  "FROM access_trail ORDER BY seq"))
    assert stored == [(row["seq"], row["entry_hash"], 1, 1) for row in old]
    assert run_async(_rows(url, "SELECT seq, record_id FROM access_trail_record "
                                "ORDER BY seq")) == [(row["seq"], row["record_id"]) for row in old]
    assert _on(url, verify_chain) == VerifyResult(True, 4, last_seq=4,
                                                  last_hash=old[-1]["entry_hash"])
    # New entries chain after the old ones, in the new format, and the whole chain holds.
    _on(url, lambda db: append_records(db, [_new_read("7"), _new_read("8")], timeout=10))
    result = _on(url, verify_chain)
    assert (result.ok, result.entries, result.last_seq) == (True, 5, 5)
    # Readers see the old entries as before, one per record.
    about = _on(url, lambda db: entries_for_record(db, "Foreigner", "102"))
    assert [(e["seq"], e["fields"], e["subject"]) for e in about] == [
        (2, ["fullName", "passportNumber"], "officer-1")]


def test_an_old_entrys_altered_record_is_named_after_migration(trail_of_0005: str) -> None:
    url = trail_of_0005
    run_in_thread(migrate.upgrade, url)
    disable = ("ALTER TABLE access_trail_record DISABLE TRIGGER access_trail_record_append_only"
               if url.startswith("postgresql") else "DROP TRIGGER access_trail_record_no_update")
    run_async(_execute(url, disable,
                       "UPDATE access_trail_record SET record_id = '999' WHERE seq = 3"))
    result = _on(url, verify_chain)
    assert (result.ok, result.first_bad_seq, result.reason) == (False, 3, "altered")


def test_the_trail_migration_downgrades_old_entries_unchanged(trail_of_0005: str) -> None:
    url = trail_of_0005
    run_in_thread(migrate.upgrade, url)
    run_in_thread(migrate.downgrade, url, "0005")
    listed = ", ".join((*CANONICAL_COLUMNS_V1, "prev_hash", "entry_hash"))
    back = run_async(_rows(url, f"SELECT {listed} FROM access_trail ORDER BY seq"))
    assert [row[CANONICAL_COLUMNS_V1.index("record_id")] for row in back] == [
        "101", "102", "103", "104"]
    assert [row[-1] for row in back] == [row["entry_hash"] for row in _old_entries(4)]
    # 0005's append-only triggers are back, and the record table is gone.
    with pytest.raises(Exception, match="append-only"):
        run_async(_execute(url, "DELETE FROM access_trail"))
    tables, _dump = run_async(_columns_and_text(url))
    assert "access_trail_record" not in tables
    assert "record_id" in tables["access_trail"]


def test_the_trail_migration_refuses_to_downgrade_new_entries(trail_of_0005: str) -> None:
    url = trail_of_0005
    run_in_thread(migrate.upgrade, url)
    _on(url, lambda db: append_records(db, [_new_read("7"), _new_read("8")], timeout=10))
    with pytest.raises(Exception, match="refused"):
        run_in_thread(migrate.downgrade, url, "0005")
    assert _on(url, verify_chain).entries == 5
