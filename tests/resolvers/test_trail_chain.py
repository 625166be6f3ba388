"""The access trail's storage, on real SQLite and real PostgreSQL: one hash chain of entries
(one per request, record type and field set) whose records are narrow rows the entry's hash
covers, written a batch per transaction, append-only in the database, verified entry by
entry (tampering with an entry or one of its record rows is named by seq and reason),
pruned without breaking, read back one row per record read, and never forked by two
processes."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import itertools
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    _create_pg_database,
    _drop_pg_database,
    migrated_database,
    on_db,
)
from sqlalchemy import insert, select, text, true
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from resolvers.db import Database
from resolvers.models import AccessTrailEntry, AccessTrailRecord
from resolvers.trail import (
    GENESIS,
    Pruned,
    TrailEntry,
    TrailFilter,
    TrailRecord,
    TrailWriteError,
    VerifyResult,
    append_entries,
    append_records,
    entries_about_foreigner,
    entries_for_record,
    entries_of,
    prune,
    trail_page,
    verify_chain,
)
from resolvers.trail.chain import FORMAT_V2, entry_hash, entry_hash_v1

ROOT = Path(__file__).resolve().parents[2]
TABLE = AccessTrailEntry.__table__
RECORDS = AccessTrailRecord.__table__
NOW = dt.datetime(2026, 12, 1, 8, 30, 15, 123456, tzinfo=dt.UTC)
OLD = dt.datetime(2019, 3, 1, 9, 0, tzinfo=dt.UTC)


def record(record_id: int | str, *, at: dt.datetime = NOW, subject: str = "officer-1",
           fields: tuple[str, ...] = ("passportNumber", "fullName"),
           purpose: str | None = "field_check", office: str | None = "31.74",
           record_type: str = "Foreigner", request: str = "req-1") -> TrailRecord:
    return TrailRecord(
        at=at, issuer="sisada-test", subject=subject, role="reader", area="31.74.02",
        office_code=office, officer_id=1, record_type=record_type, record_id=str(record_id),
        fields=fields, purpose=purpose, request_id=request, operation_name="Check",
        document_hash=hashlib.sha256(b"{ foreigner { fullName } }").hexdigest(),
        client_address="127.0.0.1")


def requests(count: int, *, at: dt.datetime = NOW, per_entry: int = 3) -> list[TrailRecord]:
    """`count` requests' reads, one entry each (seq 1 … count on a fresh trail), listing
    `per_entry` records: entry e lists records 10e, 10e+1, …"""
    return [record(10 * e + r, at=at, request=f"req-{e}")
            for e in range(1, count + 1) for r in range(per_entry)]


@pytest.fixture(params=["sqlite", "postgresql"])
def trail_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database at the migration head (the trail starts empty)."""
    with migrated_database(request.param, tmp_path) as url:
        yield url


def append(url: str, *batches: list[TrailRecord]) -> None:
    async def write(db: Database) -> None:
        for batch in batches:
            await append_records(db, batch, timeout=10)

    on_db(url, write)


def verify(url: str) -> VerifyResult:
    return on_db(url, verify_chain)


def rows(url: str) -> list[dict[str, Any]]:
    """The chained entries, in seq order."""
    async def read(db: Database) -> list[dict[str, Any]]:
        return [dict(row) for row in await db.all(select(TABLE).order_by(TABLE.c.seq))]

    return on_db(url, read)


def record_rows(url: str) -> dict[int, list[str]]:
    """The record ids of each entry, by seq, in code-point order."""
    async def read(db: Database) -> dict[int, list[str]]:
        listed: dict[int, list[str]] = {}
        for row in await db.all(select(RECORDS).order_by(RECORDS.c.seq)):
            listed.setdefault(int(row["seq"]), []).append(row["record_id"])
        return {seq: sorted(ids) for seq, ids in listed.items()}

    return on_db(url, read)


@contextlib.asynccontextmanager
async def as_owner(db: Database) -> AsyncIterator[AsyncConnection]:
    """A transaction of the tables' owner with the append-only triggers out of the way —
    what someone with the owner's credentials could do."""
    async with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            for table in ("access_trail", "access_trail_record"):
                await conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER "
                                        f"{table}_append_only"))
            yield conn
            for table in ("access_trail", "access_trail_record"):
                await conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER "
                                        f"{table}_append_only"))
        else:
            for table in ("access_trail", "access_trail_record"):
                await conn.execute(text(f"DROP TRIGGER {table}_no_update"))
                await conn.execute(text(f"DROP TRIGGER {table}_no_delete"))
            yield conn


def tamper(url: str, *statements: str) -> None:
    async def run(db: Database) -> None:
        async with as_owner(db) as conn:
            for statement in statements:
                await conn.execute(text(statement))

    on_db(url, run)


# -- the chain ------------------------------------------------------------------------------


def test_batches_append_as_one_contiguous_chain(trail_url: str) -> None:
    append(trail_url, [record(i) for i in range(1, 4)], [record(9)],
           [record(i, request="req-2") for i in range(5)]
           + [record(7, request="req-2", fields=("birthDate",)),
              record(70, request="req-2", record_type="StayPermit", fields=("number",))])
    stored = rows(trail_url)
    # One entry per request, record type and field set.
    assert [row["seq"] for row in stored] == [1, 2, 3, 4, 5]
    assert [(row["record_type"], row["fields"], row["record_count"]) for row in stored] == [
        ("Foreigner", "fullName,passportNumber", 3), ("Foreigner", "fullName,passportNumber", 1),
        ("Foreigner", "fullName,passportNumber", 5), ("Foreigner", "birthDate", 1),
        ("StayPermit", "number", 1)]
    assert record_rows(trail_url) == {1: ["1", "2", "3"], 2: ["9"],
                                      3: ["0", "1", "2", "3", "4"], 4: ["7"], 5: ["70"]}
    assert {row["chain_format"] for row in stored} == {FORMAT_V2}
    assert stored[0]["prev_hash"] == GENESIS
    assert all(b["prev_hash"] == a["entry_hash"] for a, b in itertools.pairwise(stored))
    result = verify(trail_url)
    assert (result.ok, result.entries, result.last_seq) == (True, 5, 5)
    assert result.last_hash == stored[-1]["entry_hash"]


def test_an_empty_trail_is_intact(trail_url: str) -> None:
    assert verify(trail_url) == VerifyResult(True, 0)


def test_a_record_without_a_time_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        record(1, at=dt.datetime(2026, 1, 1))


def test_reads_group_into_one_entry_per_request_type_and_fields() -> None:
    reads = [record(2), record(10), record(1), record(1, fields=("fullName",)),
             record(1, request="req-2"), record(5, record_type="StayPermit")]
    grouped = entries_of(reads)
    assert [(e.request_id, e.record_type, e.fields, e.record_ids) for e in grouped] == [
        ("req-1", "Foreigner", ("fullName", "passportNumber"), ("1", "10", "2")),
        ("req-1", "Foreigner", ("fullName",), ("1",)),
        ("req-2", "Foreigner", ("fullName", "passportNumber"), ("1",)),
        ("req-1", "StayPermit", ("fullName", "passportNumber"), ("5",))]


def test_an_entry_hashes_its_sorted_records() -> None:
    """The records are part of the entry's hash, in code-point order however given."""
    first = entries_of([record(i) for i in (3, 1, 2)])[0]
    again = entries_of([record(i) for i in (1, 2, 3)])[0]
    assert first == again and first.record_ids == ("1", "2", "3")
    fewer = entries_of([record(i) for i in (1, 2)])[0]
    row = {**_row(first), "prev_hash": GENESIS}
    assert entry_hash(GENESIS, row, list(first.record_ids)) != entry_hash(
        GENESIS, {**row, "record_count": 2}, list(fewer.record_ids))
    with pytest.raises(ValueError, match="at least one record"):
        TrailEntry(**{**_fields_of(first), "record_ids": ()})


def _row(entry: TrailEntry) -> dict[str, Any]:
    from resolvers.trail.chain import row_of

    return row_of(1, entry)


def _fields_of(entry: TrailEntry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in TrailEntry.__slots__}


def test_the_old_per_record_hash_is_unchanged() -> None:
    """Entries written before migration 0006 keep their hashes; verify recomputes them in
    format 1, which must stay byte for byte what the writer of 0005 computed (pinned)."""
    row = {"seq": 1, "at": NOW, "issuer": "sisada-test", "subject": "officer-1",
           "role": "reader", "area": "31.74.02", "office_code": "31.74", "officer_id": 1,
           "record_type": "Foreigner", "record_id": "7", "fields": "fullName,passportNumber",
           "purpose": "field_check", "request_id": "req-1", "operation_name": "Check",
           "document_hash": "ab" * 32, "client_address": "127.0.0.1"}
    assert entry_hash_v1(GENESIS, row) == (
        "e7fbad3750da6acf4432a5bada2904328151de90065c1cf7da3ee20c6afbb46d")


# -- append-only in the database ------------------------------------------------------------


def test_the_database_refuses_update_and_delete(trail_url: str) -> None:
    append(trail_url, requests(2))

    async def attempt(db: Database, statement: str) -> None:
        async with db.engine.begin() as conn:
            await conn.execute(text(statement))

    for statement in ("UPDATE access_trail SET fields = 'nationality' WHERE seq = 1",
                      "DELETE FROM access_trail WHERE seq = 2",
                      "DELETE FROM access_trail",
                      "UPDATE access_trail_record SET record_id = '99' WHERE seq = 1",
                      "DELETE FROM access_trail_record WHERE seq = 2",
                      "DELETE FROM access_trail_record"):
        with pytest.raises(DBAPIError, match="append-only"):
            on_db(trail_url, lambda db, s=statement: attempt(db, s))
    assert [row["seq"] for row in rows(trail_url)] == [1, 2]
    assert rows(trail_url)[0]["fields"] == "fullName,passportNumber"
    assert record_rows(trail_url) == {1: ["10", "11", "12"], 2: ["20", "21", "22"]}
    assert verify(trail_url).ok


def test_postgresql_refuses_truncate(trail_url: str) -> None:
    if not trail_url.startswith("postgresql"):
        pytest.skip("TRUNCATE is PostgreSQL's")
    append(trail_url, [record(1)])

    async def truncate(db: Database, table: str) -> None:
        async with db.engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {table}"))

    for table in ("access_trail", "access_trail_record"):
        with pytest.raises(DBAPIError, match="append-only"):
            on_db(trail_url, lambda db, t=table: truncate(db, t))
    assert verify(trail_url).entries == 1


# -- tampering is named --------------------------------------------------------------------


def test_an_altered_entry_is_named(trail_url: str) -> None:
    append(trail_url, requests(8))
    tamper(trail_url, "UPDATE access_trail SET fields = 'nationality' WHERE seq = 5")
    result = verify(trail_url)
    assert (result.ok, result.first_bad_seq, result.reason) == (False, 5, "altered")
    assert result.entries == 4


def test_an_altered_purpose_is_named(trail_url: str) -> None:
    append(trail_url, requests(8))
    tamper(trail_url, "UPDATE access_trail SET purpose = 'report_follow_up' WHERE seq = 2")
    assert (verify(trail_url).first_bad_seq, verify(trail_url).reason) == (2, "altered")


def test_an_altered_record_row_names_its_entry(trail_url: str) -> None:
    append(trail_url, requests(8))
    tamper(trail_url, "UPDATE access_trail_record SET record_id = '99' "
                      "WHERE seq = 6 AND record_id = '61'")
    result = verify(trail_url)
    assert (result.ok, result.first_bad_seq, result.reason) == (False, 6, "altered")
    assert result.entries == 5


def test_a_deleted_record_row_names_its_entry(trail_url: str) -> None:
    append(trail_url, requests(8))
    tamper(trail_url, "DELETE FROM access_trail_record WHERE seq = 3 AND record_id = '30'")
    assert (verify(trail_url).first_bad_seq, verify(trail_url).reason) == (3, "altered")


def test_a_record_row_added_to_an_entry_names_it(trail_url: str) -> None:
    append(trail_url, requests(8))
    tamper(trail_url, "INSERT INTO access_trail_record (seq, record_id) VALUES (4, '77')")
    assert (verify(trail_url).first_bad_seq, verify(trail_url).reason) == (4, "altered")


def test_a_record_row_moved_to_another_entry_names_the_first_changed(trail_url: str) -> None:
    append(trail_url, requests(8))
    tamper(trail_url, "UPDATE access_trail_record SET seq = 2 WHERE seq = 7 AND record_id = '70'")
    assert (verify(trail_url).first_bad_seq, verify(trail_url).reason) == (2, "altered")


def test_record_rows_of_no_entry_are_named(trail_url: str) -> None:
    append(trail_url, requests(3))
    tamper(trail_url, "INSERT INTO access_trail_record (seq, record_id) VALUES (9, '77')")
    result = verify(trail_url)
    assert (result.ok, result.first_bad_seq, result.reason) == (False, 9, "inserted")
    assert result.entries == 3


def test_record_rows_before_the_chain_are_named(trail_url: str) -> None:
    append(trail_url, requests(3))
    tamper(trail_url, "INSERT INTO access_trail_record (seq, record_id) VALUES (0, '77')")
    assert (verify(trail_url).first_bad_seq, verify(trail_url).reason) == (0, "inserted")


def test_a_deleted_entry_is_named(trail_url: str) -> None:
    append(trail_url, requests(8))
    tamper(trail_url, "DELETE FROM access_trail WHERE seq = 5")
    result = verify(trail_url)
    assert (result.ok, result.first_bad_seq, result.reason) == (False, 5, "deleted/gap")


def test_a_deleted_entry_with_its_records_is_named(trail_url: str) -> None:
    append(trail_url, requests(8))
    tamper(trail_url, "DELETE FROM access_trail_record WHERE seq = 5",
           "DELETE FROM access_trail WHERE seq = 5")
    assert (verify(trail_url).first_bad_seq, verify(trail_url).reason) == (5, "deleted/gap")


def test_a_deleted_first_entry_is_named(trail_url: str) -> None:
    append(trail_url, requests(3))
    tamper(trail_url, "DELETE FROM access_trail WHERE seq = 1")
    assert (verify(trail_url).first_bad_seq, verify(trail_url).reason) == (1, "deleted/gap")


def test_an_entry_slipped_into_the_chain_is_named(trail_url: str) -> None:
    """The forger makes room at seq 5 (moving the later entries and their records up) and
    inserts an entry whose own hash is right and which links to entry 4: the chain goes
    around it."""
    append(trail_url, requests(8))
    fourth = rows(trail_url)[3]

    async def forge(db: Database) -> None:
        async with as_owner(db) as conn:
            # Two steps: moving up in place would collide on the primary key.
            for table in ("access_trail", "access_trail_record"):
                await conn.execute(text(f"UPDATE {table} SET seq = -seq WHERE seq >= 5"))
                await conn.execute(text(f"UPDATE {table} SET seq = 1 - seq WHERE seq < 0"))
            forged = {**fourth, "seq": 5, "subject": "someone-else", "record_count": 1,
                      "prev_hash": fourth["entry_hash"]}
            forged["entry_hash"] = entry_hash(forged["prev_hash"], forged, ["77"])
            await conn.execute(insert(TABLE), [forged])
            await conn.execute(insert(RECORDS), [{"seq": 5, "record_id": "77"}])

    on_db(trail_url, forge)
    result = verify(trail_url)
    assert (result.ok, result.first_bad_seq, result.reason) == (False, 5, "inserted")


def test_an_entry_rewritten_with_a_fresh_hash_breaks_the_next_link(trail_url: str) -> None:
    append(trail_url, requests(8))
    fifth = rows(trail_url)[4]
    rewritten = {**fifth, "fields": "nationality"}
    new_hash = entry_hash(rewritten["prev_hash"], rewritten, record_rows(trail_url)[5])
    tamper(trail_url, f"UPDATE access_trail SET fields = 'nationality', "
                      f"entry_hash = '{new_hash}' WHERE seq = 5")
    result = verify(trail_url)
    assert (result.ok, result.first_bad_seq, result.reason) == (False, 6, "bad link")


def test_an_entry_forged_before_the_first_is_named(trail_url: str) -> None:
    append(trail_url, requests(3))
    first = rows(trail_url)[0]

    async def forge(db: Database) -> None:
        async with as_owner(db) as conn:
            forged = {**first, "seq": 0, "record_count": 1}
            forged["entry_hash"] = entry_hash(GENESIS, forged, ["77"])
            await conn.execute(insert(TABLE), [forged])
            await conn.execute(insert(RECORDS), [{"seq": 0, "record_id": "77"}])

    on_db(trail_url, forge)
    assert (verify(trail_url).first_bad_seq, verify(trail_url).reason) == (0, "inserted")


def test_an_entry_claiming_the_old_format_is_named(trail_url: str) -> None:
    """Format 1 holds one record; an entry switched to it cannot match its hash."""
    append(trail_url, requests(3, per_entry=1))
    tamper(trail_url, "UPDATE access_trail SET chain_format = 1 WHERE seq = 2")
    assert (verify(trail_url).first_bad_seq, verify(trail_url).reason) == (2, "altered")


# -- pruning ------------------------------------------------------------------------------


def test_prune_removes_old_entries_and_leaves_a_chained_prune_entry(trail_url: str) -> None:
    append(trail_url, requests(4, at=OLD), requests(2))
    fourth = rows(trail_url)[3]
    cut = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    assert on_db(trail_url, lambda db: prune(db, cut)) == Pruned(entries=4, records=12)
    stored = rows(trail_url)
    assert [row["seq"] for row in stored] == [5, 6, 7]
    mark = stored[-1]
    assert (mark["record_type"], mark["fields"], mark["record_count"]) == (
        "access_trail", "pruned", 1)
    # The pruned entries' records went with them; the prune entry lists its mark.
    assert record_rows(trail_url) == {5: ["10", "11", "12"], 6: ["20", "21", "22"],
                                      7: [f"through:4:{fourth['entry_hash']}"]}
    assert mark["prev_hash"] == stored[-2]["entry_hash"]
    assert stored[0]["prev_hash"] == fourth["entry_hash"]
    result = verify(trail_url)
    assert (result.ok, result.entries, result.last_seq) == (True, 3, 7)
    # The gateway goes on appending after the prune entry.
    append(trail_url, [record(99)])
    assert verify(trail_url).ok


def test_prune_of_nothing_and_of_everything_keep_the_chain(trail_url: str) -> None:
    append(trail_url, requests(3, at=OLD))
    assert on_db(trail_url, lambda db: prune(db, OLD)) == Pruned(entries=0, records=0)
    assert verify(trail_url).entries == 4
    # The first prune's own entry is stamped by the real clock, so "everything"
    # is measured from the real clock, not from the fixed NOW of the records.
    tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    assert on_db(trail_url, lambda db: prune(db, tomorrow)) == Pruned(entries=4, records=10)
    stored = rows(trail_url)
    assert [row["seq"] for row in stored] == [5]
    assert verify(trail_url) == VerifyResult(True, 1, last_seq=5,
                                             last_hash=stored[0]["entry_hash"])
    append(trail_url, [record(1)])
    assert verify(trail_url).ok


def test_the_trail_stays_append_only_after_a_prune(trail_url: str) -> None:
    append(trail_url, requests(3, at=OLD), [record(4)])
    on_db(trail_url, lambda db: prune(db, NOW - dt.timedelta(days=1)))

    async def delete(db: Database, table: str) -> None:
        async with db.engine.begin() as conn:
            await conn.execute(text(f"DELETE FROM {table}"))

    for table in ("access_trail", "access_trail_record"):
        with pytest.raises(DBAPIError, match="append-only"):
            on_db(trail_url, lambda db, t=table: delete(db, t))


def test_a_deletion_after_a_prune_is_named(trail_url: str) -> None:
    append(trail_url, requests(3, at=OLD), requests(4))
    on_db(trail_url, lambda db: prune(db, NOW - dt.timedelta(days=1)))
    tamper(trail_url, "DELETE FROM access_trail WHERE seq = 5")
    assert (verify(trail_url).first_bad_seq, verify(trail_url).reason) == (5, "deleted/gap")


def test_record_rows_left_behind_a_prune_are_named(trail_url: str) -> None:
    append(trail_url, requests(3, at=OLD), requests(2))
    on_db(trail_url, lambda db: prune(db, NOW - dt.timedelta(days=1)))
    tamper(trail_url, "INSERT INTO access_trail_record (seq, record_id) VALUES (2, '20')")
    assert (verify(trail_url).first_bad_seq, verify(trail_url).reason) == (2, "inserted")


# -- failures close -------------------------------------------------------------------------


def test_a_write_with_an_impossible_timeout_fails_closed(trail_url: str) -> None:
    async def run(db: Database) -> None:
        with pytest.raises(TrailWriteError) as raised:
            await append_records(db, [record(1)], timeout=0.000_001)
        assert str(raised.value) == "access trail unavailable"
        # The pool is still usable afterwards.
        await append_records(db, [record(2)], timeout=10)

    on_db(trail_url, run)
    assert verify(trail_url).entries == 1


def test_a_write_waiting_on_a_held_chain_lock_times_out(trail_url: str) -> None:
    async def run(db: Database) -> float:
        async with contextlib.AsyncExitStack() as stack:
            conn = await stack.enter_async_context(db.engine.connect())
            if conn.dialect.name == "postgresql":
                from resolvers.trail.locking import CHAIN_LOCK_KEY

                await conn.execute(text("SELECT pg_advisory_lock(:key)"),
                                   {"key": CHAIN_LOCK_KEY})
            else:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
            started = time.monotonic()
            with pytest.raises(TrailWriteError):
                await append_records(db, [record(1)], timeout=0.5)
            elapsed = time.monotonic() - started
            await conn.invalidate()
        return elapsed

    assert on_db(trail_url, run) < 3.0
    assert verify(trail_url).entries == 0


def test_a_write_whose_records_fail_leaves_no_entry(trail_url: str) -> None:
    """The entry and its records are one transaction: a record id too long for its column
    (on PostgreSQL) or a duplicate of one already listed fails both."""
    append(trail_url, [record(1)])

    async def run(db: Database) -> None:
        entry = entries_of([record(2)])[0]
        broken = TrailEntry(**{**_fields_of(entry), "record_ids": ("2", "x" * 200)})
        if not trail_url.startswith("postgresql"):
            # SQLite does not bound text; a record row already present collides instead.
            from resolvers.trail import append as append_module

            async with append_module.chain_lock(db, wait_seconds=5) as conn:
                await conn.execute(insert(RECORDS), [{"seq": 2, "record_id": "3"}])
            broken = TrailEntry(**{**_fields_of(entry), "record_ids": ("3",)})
        with pytest.raises(TrailWriteError):
            await append_entries(db, [broken], timeout=5)

    if trail_url.startswith("postgresql"):
        on_db(trail_url, run)
        assert [row["seq"] for row in rows(trail_url)] == [1]
        assert record_rows(trail_url) == {1: ["1"]}
        assert verify(trail_url).ok
    else:
        on_db(trail_url, run)
        # The stray row stays (inserted by hand) and no entry 2 was written: verify says so.
        assert [row["seq"] for row in rows(trail_url)] == [1]
        assert (verify(trail_url).first_bad_seq, verify(trail_url).reason) == (2, "inserted")


def test_a_write_to_a_missing_table_fails_closed(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"

    async def run(db: Database) -> None:
        with pytest.raises(TrailWriteError) as raised:
            await append_records(db, [record("X1234567")], timeout=5)
        assert "X1234567" not in str(raised.value)

    on_db(url, run)


def test_a_write_to_a_missing_postgresql_table_fails_closed() -> None:
    name = _create_pg_database()
    try:
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"

        async def run(db: Database) -> None:
            with pytest.raises(TrailWriteError):
                await append_records(db, [record(1)], timeout=5)

        on_db(url, run)
    finally:
        _drop_pg_database(name)


# -- two processes, one chain ---------------------------------------------------------------

WRITER = """
import asyncio, datetime as dt, sys
from resolvers.db import Database, create_engine
from resolvers.trail import TrailRecord, append_records

async def main(url: str, tag: str, batches: int) -> None:
    db = Database(create_engine(url))
    try:
        for batch in range(batches):
            at = dt.datetime.now(dt.UTC)
            records = [TrailRecord(
                at=at, issuer="sisada-test", subject=tag, role="reader",
                area=None, office_code="31.74", officer_id=None,
                record_type="StayPermit" if i == 1 else "Foreigner",
                record_id=f"{batch}-{i}", fields=("fullName",), purpose=None,
                request_id=f"{tag}-{batch}", operation_name=None, document_hash="0" * 64,
                client_address=None) for i in range(1 + batch % 3)]
            await append_records(db, records, timeout=30)
    finally:
        await db.engine.dispose()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


def test_two_writer_processes_never_break_the_chain(trail_url: str) -> None:
    batches = 200
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, trail_url, tag, str(batches)],
                                cwd=ROOT, env=env, stderr=subprocess.PIPE)
               for tag in ("process-a", "process-b")]
    for writer in writers:
        _, stderr = writer.communicate(timeout=300)
        assert writer.returncode == 0, stderr.decode()[-2000:]
    # A batch of 2 or 3 reads is two entries (its second read is a stay permit's).
    per_process = sum(1 if batch % 3 == 0 else 2 for batch in range(batches))
    reads_per_process = sum(1 + batch % 3 for batch in range(batches))
    stored = rows(trail_url)
    assert [row["seq"] for row in stored] == list(range(1, 2 * per_process + 1))
    assert sum(row["subject"] == "process-a" for row in stored) == per_process
    assert sum(row["subject"] == "process-b" for row in stored) == per_process
    listed = record_rows(trail_url)
    assert sum(len(ids) for ids in listed.values()) == 2 * reads_per_process
    # Each batch is one transaction: its entries are contiguous.
    for tag in ("process-a", "process-b"):
        for batch in range(batches):
            seqs = [row["seq"] for row in stored if row["request_id"] == f"{tag}-{batch}"]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
            assert sorted(i for seq in seqs for i in listed[seq]) == [
                f"{batch}-{i}" for i in range(1 + batch % 3)]
    result = verify(trail_url)
    assert (result.ok, result.entries) == (True, 2 * per_process)
    # Interleaved, or the lock was never contended and the test proves little.
    switches = sum(a["subject"] != b["subject"] for a, b in itertools.pairwise(stored))
    assert switches > 2


# -- reading: one row per record read -------------------------------------------------------


def test_trail_page_is_newest_first_scoped_and_filtered(trail_url: str) -> None:
    append(trail_url,
           [record(1, subject="a"), record(2, subject="b", purpose="permit_supervision")],
           [record(3, subject="a", office="31.71")],
           [record(4, subject="a", at=OLD)])
    table = AccessTrailEntry

    def page(scope: Any, filters: TrailFilter, first: int = 10,
             after: tuple[int, str] | None = None) -> Any:
        return on_db(trail_url, lambda db: trail_page(db, scope, filters, first, after))

    everything = page(true(), TrailFilter())
    assert [row["seq"] for row in everything.rows] == [4, 3, 2, 1]
    assert everything.rows[0]["fields"] == ["fullName", "passportNumber"]
    assert everything.rows[0]["at"] == OLD
    assert "entry_hash" not in everything.rows[0]
    office = page(table.office_code == "31.74", TrailFilter(subject="a"))
    assert [row["seq"] for row in office.rows] == [4, 1]
    assert [row["seq"] for row in page(true(), TrailFilter(purpose="permit_supervision")).rows
            ] == [2]
    since = page(true(), TrailFilter(since=dt.datetime(2026, 1, 1, 7, tzinfo=dt.timezone(
        dt.timedelta(hours=7)))))
    assert [row["seq"] for row in since.rows] == [3, 2, 1]
    assert [row["seq"] for row in page(true(), TrailFilter(until=NOW)).rows] == [4]
    first = page(true(), TrailFilter(), first=2)
    assert ([row["seq"] for row in first.rows], first.has_next_page) == ([4, 3], True)
    second = page(true(), TrailFilter(), first=2, after=(3, "3"))
    assert ([row["seq"] for row in second.rows], second.has_next_page) == ([2, 1], False)
    assert first.end_cursor is not None
    by_record = page(true(), TrailFilter(record_type="Foreigner", record_id="2"))
    assert [row["seq"] for row in by_record.rows] == [2]


def test_a_page_of_one_entry_shows_each_record_once_across_pages(trail_url: str) -> None:
    append(trail_url, [record(i) for i in range(1, 8)], [record(8, subject="b")])
    seen: list[tuple[int, str]] = []
    after = None
    for _ in range(5):
        got = on_db(trail_url, lambda db, a=after: trail_page(db, true(), TrailFilter(), 3, a))
        seen += [(row["seq"], row["record_id"]) for row in got.rows]
        if not got.has_next_page:
            break
        after = (got.rows[-1]["seq"], got.rows[-1]["record_id"])
    # Newest first: the entry of seq 2, then seq 1's records in descending code-point order.
    assert seen == [(2, "8"), *((1, str(i)) for i in range(7, 0, -1))]


def test_entries_for_a_record_are_oldest_first(trail_url: str) -> None:
    append(trail_url, [record(1), record(2)], [record(1, subject="b")])
    entries = on_db(trail_url, lambda db: entries_for_record(db, "Foreigner", "1"))
    assert [(entry["seq"], entry["subject"], entry["record_id"]) for entry in entries] == [
        (1, "officer-1", "1"), (2, "b", "1")]
    assert entries[0]["fields"] == ["fullName", "passportNumber"]


def test_a_subjects_export_shows_no_one_elses_records(trail_url: str) -> None:
    """One entry lists a page's records; the entries about one foreigner show that
    foreigner's row of it and no other record of the page."""
    from resolvers.models import Foreigner, StayPermit

    async def people(db: Database) -> None:
        async with db.engine.begin() as conn:
            await conn.execute(insert(Foreigner), [
                {"id": i, "age_base_year": 1990, "nationality": "AUS", "sex": "F",
                 "created_at": NOW} for i in (7, 8, 70)])
            await conn.execute(insert(StayPermit), [
                {"id": 70, "foreigner_id": 7, "permit_type": "KITAS", "status": "ACTIVE",
                 "issued_on": dt.date(2026, 1, 1), "expires_on": dt.date(2027, 1, 1),
                 "sponsor_type": "EMPLOYER", "valid_to": None}])

    on_db(trail_url, people)
    append(trail_url, [record(i) for i in (7, 8, 70)]
           + [record(70, record_type="StayPermit", fields=("number",))],
           [record(8, subject="b")])
    about = on_db(trail_url, lambda db: entries_about_foreigner(db, 7))
    assert [(e["seq"], e["record_type"], e["record_id"]) for e in about] == [
        (1, "Foreigner", "7"), (2, "StayPermit", "70")]
    assert not {e["record_id"] for e in about} & {"8"}


# -- the production role setup (README) -----------------------------------------------------


def test_the_gateway_role_of_the_readme_can_only_append(trail_url: str) -> None:
    """The grants the README gives the gateway's role: it appends and reads the trail, and
    cannot change or remove an entry or a record row even when it sets the prune's own
    setting."""
    if not trail_url.startswith("postgresql"):
        pytest.skip("roles are PostgreSQL's")
    role = f"sisada_gateway_{uuid.uuid4().hex[:8]}"
    admin = trail_url

    async def grant(db: Database, statements: list[str]) -> None:
        async with db.engine.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement))

    on_db(admin, lambda db: grant(db, [
        f"CREATE ROLE {role} LOGIN",
        f"GRANT USAGE ON SCHEMA public TO {role}",
        f"GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO {role}",
        f"REVOKE UPDATE, DELETE, TRUNCATE ON access_trail, access_trail_record FROM {role}"]))
    gateway_url = trail_url.replace("postgres@", f"{role}@", 1)
    try:
        append(gateway_url, requests(2))
        assert verify(gateway_url).entries == 2

        async def attempt(db: Database, statement: str) -> None:
            async with db.engine.begin() as conn:
                await conn.execute(text("SELECT set_config('sisada.trail_prune', 'on', true)"))
                await conn.execute(text(statement))

        for statement in ("UPDATE access_trail SET fields = 'nationality'",
                          "DELETE FROM access_trail", "TRUNCATE access_trail",
                          "ALTER TABLE access_trail DISABLE TRIGGER access_trail_append_only",
                          "UPDATE access_trail_record SET record_id = '1'",
                          "DELETE FROM access_trail_record", "TRUNCATE access_trail_record",
                          "ALTER TABLE access_trail_record DISABLE TRIGGER "
                          "access_trail_record_append_only"):
            with pytest.raises(DBAPIError, match=r"permission denied|must be owner"):
                on_db(gateway_url, lambda db, s=statement: attempt(db, s))
        assert verify(gateway_url).entries == 2
    finally:
        on_db(admin, lambda db: grant(db, [f"DROP OWNED BY {role}", f"DROP ROLE {role}"]))
