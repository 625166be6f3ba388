"""The access trail's storage, on real SQLite and real PostgreSQL: one hash chain, written a
batch per transaction, append-only in the database, verified entry by entry (tampering is
named by seq and reason), pruned without breaking, and never forked by two processes."""

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
from resolvers.models import AccessTrailEntry
from resolvers.trail import (
    GENESIS,
    TrailFilter,
    TrailRecord,
    TrailWriteError,
    VerifyResult,
    append_records,
    entries_for_record,
    prune,
    trail_page,
    verify_chain,
)
from resolvers.trail.chain import entry_hash

ROOT = Path(__file__).resolve().parents[2]
TABLE = AccessTrailEntry.__table__
NOW = dt.datetime(2026, 12, 1, 8, 30, 15, 123456, tzinfo=dt.UTC)
OLD = dt.datetime(2019, 3, 1, 9, 0, tzinfo=dt.UTC)


def record(record_id: int | str, *, at: dt.datetime = NOW, subject: str = "officer-1",
           fields: tuple[str, ...] = ("passportNumber", "fullName"),
           purpose: str | None = "field_check", office: str | None = "31.74",
           record_type: str = "Foreigner") -> TrailRecord:
    return TrailRecord(
        at=at, issuer="sisada-test", subject=subject, role="reader", area="31.74.02",
        office_code=office, officer_id=1, record_type=record_type, record_id=str(record_id),
        fields=fields, purpose=purpose, request_id="req-1", operation_name="Check",
        document_hash=hashlib.sha256(b"{ foreigner { fullName } }").hexdigest(),
        client_address="127.0.0.1")


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
    async def read(db: Database) -> list[dict[str, Any]]:
        return [dict(row) for row in await db.all(select(TABLE).order_by(TABLE.c.seq))]

    return on_db(url, read)


@contextlib.asynccontextmanager
async def as_owner(db: Database) -> AsyncIterator[AsyncConnection]:
    """A transaction of the table's owner with the append-only triggers out of the way —
    what someone with the owner's credentials could do."""
    async with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("ALTER TABLE access_trail DISABLE TRIGGER "
                                    "access_trail_append_only"))
            yield conn
            await conn.execute(text("ALTER TABLE access_trail ENABLE TRIGGER "
                                    "access_trail_append_only"))
        else:
            await conn.execute(text("DROP TRIGGER access_trail_no_update"))
            await conn.execute(text("DROP TRIGGER access_trail_no_delete"))
            yield conn


def tamper(url: str, *statements: str) -> None:
    async def run(db: Database) -> None:
        async with as_owner(db) as conn:
            for statement in statements:
                await conn.execute(text(statement))

    on_db(url, run)


# -- the chain ------------------------------------------------------------------------------


def test_batches_append_as_one_contiguous_chain(trail_url: str) -> None:
    append(trail_url, [record(i) for i in range(1, 4)], [record(9)], [record(i) for i in range(5)])
    stored = rows(trail_url)
    assert [row["seq"] for row in stored] == list(range(1, 10))
    assert stored[0]["prev_hash"] == GENESIS
    assert all(b["prev_hash"] == a["entry_hash"] for a, b in itertools.pairwise(stored))
    assert stored[0]["fields"] == "fullName,passportNumber"  # sorted, names only
    result = verify(trail_url)
    assert (result.ok, result.entries, result.last_seq) == (True, 9, 9)
    assert result.last_hash == stored[-1]["entry_hash"]


def test_an_empty_trail_is_intact(trail_url: str) -> None:
    assert verify(trail_url) == VerifyResult(True, 0)


def test_a_record_without_a_time_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        record(1, at=dt.datetime(2026, 1, 1))


# -- append-only in the database ------------------------------------------------------------


def test_the_database_refuses_update_and_delete(trail_url: str) -> None:
    append(trail_url, [record(1), record(2)])

    async def attempt(db: Database, statement: str) -> None:
        async with db.engine.begin() as conn:
            await conn.execute(text(statement))

    for statement in ("UPDATE access_trail SET fields = 'nationality' WHERE seq = 1",
                      "DELETE FROM access_trail WHERE seq = 2",
                      "DELETE FROM access_trail"):
        with pytest.raises(DBAPIError, match="append-only"):
            on_db(trail_url, lambda db, s=statement: attempt(db, s))
    assert [row["seq"] for row in rows(trail_url)] == [1, 2]
    assert rows(trail_url)[0]["fields"] == "fullName,passportNumber"
    assert verify(trail_url).ok


def test_postgresql_refuses_truncate(trail_url: str) -> None:
    if not trail_url.startswith("postgresql"):
        pytest.skip("TRUNCATE is PostgreSQL's")
    append(trail_url, [record(1)])

    async def truncate(db: Database) -> None:
        async with db.engine.begin() as conn:
            await conn.execute(text("TRUNCATE access_trail"))

    with pytest.raises(DBAPIError, match="append-only"):
        on_db(trail_url, truncate)
    assert verify(trail_url).entries == 1


# -- tampering is named --------------------------------------------------------------------


def test_an_altered_entry_is_named(trail_url: str) -> None:
    append(trail_url, [record(i) for i in range(1, 9)])
    tamper(trail_url, "UPDATE access_trail SET fields = 'nationality' WHERE seq = 5")
    result = verify(trail_url)
    assert (result.ok, result.first_bad_seq, result.reason) == (False, 5, "altered")
    assert result.entries == 4


def test_an_altered_purpose_is_named(trail_url: str) -> None:
    append(trail_url, [record(i) for i in range(1, 9)])
    tamper(trail_url, "UPDATE access_trail SET purpose = 'report_follow_up' WHERE seq = 2")
    assert (verify(trail_url).first_bad_seq, verify(trail_url).reason) == (2, "altered")


def test_a_deleted_entry_is_named(trail_url: str) -> None:
    append(trail_url, [record(i) for i in range(1, 9)])
    tamper(trail_url, "DELETE FROM access_trail WHERE seq = 5")
    result = verify(trail_url)
    assert (result.ok, result.first_bad_seq, result.reason) == (False, 5, "deleted/gap")


def test_a_deleted_first_entry_is_named(trail_url: str) -> None:
    append(trail_url, [record(i) for i in range(1, 4)])
    tamper(trail_url, "DELETE FROM access_trail WHERE seq = 1")
    assert (verify(trail_url).first_bad_seq, verify(trail_url).reason) == (1, "deleted/gap")


def test_an_entry_slipped_into_the_chain_is_named(trail_url: str) -> None:
    """The forger makes room at seq 5 (moving the later entries up) and inserts an entry
    whose own hash is right and which links to entry 4: the chain goes around it."""
    append(trail_url, [record(i) for i in range(1, 9)])
    fourth = rows(trail_url)[3]

    async def forge(db: Database) -> None:
        async with as_owner(db) as conn:
            # Two steps: moving up in place would collide on the primary key.
            await conn.execute(text("UPDATE access_trail SET seq = -seq WHERE seq >= 5"))
            await conn.execute(text("UPDATE access_trail SET seq = 1 - seq WHERE seq < 0"))
            forged = {**fourth, "seq": 5, "subject": "someone-else", "record_id": "77",
                      "prev_hash": fourth["entry_hash"]}
            forged["entry_hash"] = entry_hash(forged["prev_hash"], forged)
            await conn.execute(insert(TABLE), [forged])

    on_db(trail_url, forge)
    result = verify(trail_url)
    assert (result.ok, result.first_bad_seq, result.reason) == (False, 5, "inserted")


def test_an_entry_rewritten_with_a_fresh_hash_breaks_the_next_link(trail_url: str) -> None:
    append(trail_url, [record(i) for i in range(1, 9)])
    fifth = rows(trail_url)[4]
    rewritten = {**fifth, "fields": "nationality"}
    new_hash = entry_hash(rewritten["prev_hash"], rewritten)
    tamper(trail_url, f"UPDATE access_trail SET fields = 'nationality', "
                      f"entry_hash = '{new_hash}' WHERE seq = 5")
    result = verify(trail_url)
    assert (result.ok, result.first_bad_seq, result.reason) == (False, 6, "bad link")


def test_an_entry_forged_before_the_first_is_named(trail_url: str) -> None:
    append(trail_url, [record(i) for i in range(1, 4)])
    first = rows(trail_url)[0]

    async def forge(db: Database) -> None:
        async with as_owner(db) as conn:
            forged = {**first, "seq": 0, "record_id": "77"}
            forged["entry_hash"] = entry_hash(GENESIS, forged)
            await conn.execute(insert(TABLE), [forged])

    on_db(trail_url, forge)
    assert (verify(trail_url).first_bad_seq, verify(trail_url).reason) == (0, "inserted")


# -- pruning ------------------------------------------------------------------------------


def test_prune_removes_old_entries_and_leaves_a_chained_prune_entry(trail_url: str) -> None:
    append(trail_url, [record(i, at=OLD) for i in range(1, 11)], [record(i) for i in range(5)])
    tenth = rows(trail_url)[9]
    cut = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    assert on_db(trail_url, lambda db: prune(db, cut)) == 10
    stored = rows(trail_url)
    assert [row["seq"] for row in stored] == list(range(11, 17))
    mark = stored[-1]
    assert (mark["record_type"], mark["fields"]) == ("access_trail", "pruned")
    assert mark["record_id"] == f"through:10:{tenth['entry_hash']}"
    assert mark["prev_hash"] == stored[-2]["entry_hash"]
    assert stored[0]["prev_hash"] == tenth["entry_hash"]
    result = verify(trail_url)
    assert (result.ok, result.entries, result.last_seq) == (True, 6, 16)
    # The gateway goes on appending after the prune entry.
    append(trail_url, [record(99)])
    assert verify(trail_url).ok


def test_prune_of_nothing_and_of_everything_keep_the_chain(trail_url: str) -> None:
    append(trail_url, [record(i, at=OLD) for i in range(1, 4)])
    assert on_db(trail_url, lambda db: prune(db, OLD)) == 0
    assert verify(trail_url).entries == 4
    assert on_db(trail_url, lambda db: prune(db, NOW + dt.timedelta(days=1))) == 4
    stored = rows(trail_url)
    assert [row["seq"] for row in stored] == [5]
    assert verify(trail_url) == VerifyResult(True, 1, last_seq=5,
                                             last_hash=stored[0]["entry_hash"])
    append(trail_url, [record(1)])
    assert verify(trail_url).ok


def test_the_trail_stays_append_only_after_a_prune(trail_url: str) -> None:
    append(trail_url, [record(i, at=OLD) for i in range(1, 4)], [record(4)])
    on_db(trail_url, lambda db: prune(db, NOW - dt.timedelta(days=1)))

    async def delete(db: Database) -> None:
        async with db.engine.begin() as conn:
            await conn.execute(text("DELETE FROM access_trail"))

    with pytest.raises(DBAPIError, match="append-only"):
        on_db(trail_url, delete)


def test_a_deletion_after_a_prune_is_named(trail_url: str) -> None:
    append(trail_url, [record(i, at=OLD) for i in range(1, 4)], [record(i) for i in range(4)])
    on_db(trail_url, lambda db: prune(db, NOW - dt.timedelta(days=1)))
    tamper(trail_url, "DELETE FROM access_trail WHERE seq = 4")
    assert (verify(trail_url).first_bad_seq, verify(trail_url).reason) == (4, "deleted/gap")


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
            records = [TrailRecord(
                at=dt.datetime.now(dt.UTC), issuer="sisada-test", subject=tag, role="reader",
                area=None, office_code="31.74", officer_id=None, record_type="Foreigner",
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
    per_process = sum(1 + batch % 3 for batch in range(batches))
    stored = rows(trail_url)
    assert [row["seq"] for row in stored] == list(range(1, 2 * per_process + 1))
    assert sum(row["subject"] == "process-a" for row in stored) == per_process
    assert sum(row["subject"] == "process-b" for row in stored) == per_process
    # Each batch is one transaction: its entries are contiguous.
    for tag in ("process-a", "process-b"):
        for batch in range(batches):
            seqs = [row["seq"] for row in stored if row["request_id"] == f"{tag}-{batch}"]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    result = verify(trail_url)
    assert (result.ok, result.entries) == (True, 2 * per_process)
    # Interleaved, or the lock was never contended and the test proves little.
    switches = sum(a["subject"] != b["subject"] for a, b in itertools.pairwise(stored))
    assert switches > 2


# -- reading --------------------------------------------------------------------------------


def test_trail_page_is_newest_first_scoped_and_filtered(trail_url: str) -> None:
    append(trail_url,
           [record(1, subject="a"), record(2, subject="b", purpose="permit_supervision")],
           [record(3, subject="a", office="31.71")],
           [record(4, subject="a", at=OLD)])
    table = AccessTrailEntry

    def page(scope: Any, filters: TrailFilter, first: int = 10,
             after: int | None = None) -> Any:
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
    second = page(true(), TrailFilter(), first=2, after=3)
    assert ([row["seq"] for row in second.rows], second.has_next_page) == ([2, 1], False)
    assert first.end_cursor is not None
    by_record = page(true(), TrailFilter(record_type="Foreigner", record_id="2"))
    assert [row["seq"] for row in by_record.rows] == [2]


def test_entries_for_a_record_are_oldest_first(trail_url: str) -> None:
    append(trail_url, [record(1), record(2)], [record(1, subject="b")])
    entries = on_db(trail_url, lambda db: entries_for_record(db, "Foreigner", "1"))
    assert [(entry["seq"], entry["subject"]) for entry in entries] == [(1, "officer-1"),
                                                                        (3, "b")]
    assert entries[0]["fields"] == ["fullName", "passportNumber"]


# -- the production role setup (README) -----------------------------------------------------


def test_the_gateway_role_of_the_readme_can_only_append(trail_url: str) -> None:
    """The grants the README gives the gateway's role: it appends and reads the trail, and
    cannot change or remove an entry even when it sets the prune's own setting."""
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
        f"REVOKE UPDATE, DELETE, TRUNCATE ON access_trail FROM {role}"]))
    gateway_url = trail_url.replace("postgres@", f"{role}@", 1)
    try:
        append(gateway_url, [record(1), record(2)])
        assert verify(gateway_url).entries == 2

        async def attempt(db: Database, statement: str) -> None:
            async with db.engine.begin() as conn:
                await conn.execute(text("SELECT set_config('sisada.trail_prune', 'on', true)"))
                await conn.execute(text(statement))

        for statement in ("UPDATE access_trail SET fields = 'nationality'",
                          "DELETE FROM access_trail", "TRUNCATE access_trail",
                          "ALTER TABLE access_trail DISABLE TRIGGER access_trail_append_only"):
            with pytest.raises(DBAPIError, match=r"permission denied|must be owner"):
                on_db(gateway_url, lambda db, s=statement: attempt(db, s))
        assert verify(gateway_url).entries == 2
    finally:
        on_db(admin, lambda db: grant(db, [f"DROP OWNED BY {role}", f"DROP ROLE {role}"]))


def test_the_batch_hasher_hashes_exactly_as_entry_hash() -> None:
    """A batch's entries share their reader: BatchHasher serialises the shared parts once.
    Whatever the values (escapes, None, line separators), it must equal entry_hash, which
    `verify` recomputes."""
    from resolvers.trail.chain import BatchHasher, entry_hash, row_of

    hasher, prev = BatchHasher(), GENESIS
    cases = itertools.product(["iss", 'é"\\x'], [None, "31.74"], [None, 7], [None, "p"],
                              [None, "Op\u2028"], [("b", "a"), ("a",)])
    at = dt.datetime(2026, 12, 1, 23, 0, 0, 123456, tzinfo=dt.UTC)
    for seq, (issuer, area, officer, purpose, operation, fields) in enumerate(cases, start=1):
        record = TrailRecord(at=at, issuer=issuer, subject="s", role="r", area=area,
                             office_code=area, officer_id=officer, record_type="Foreigner",
                             record_id=str(seq), fields=fields, purpose=purpose,
                             request_id="q", operation_name=operation, document_hash="d",
                             client_address=None)
        expected = entry_hash(prev, row_of(seq, record))
        assert hasher.hash(prev, seq, record) == expected
        prev = expected
