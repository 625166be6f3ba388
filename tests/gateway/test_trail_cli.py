"""`sisada trail verify | prune | export` as an operator runs them: a real process over a real
SQLite or PostgreSQL database, one line out, the exit code the verdict, no traceback."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import (
    migrated_database,
    on_db,
)
from sqlalchemy import insert, select, text

from resolvers.db import Database
from resolvers.models import AccessTrailEntry, AccessTrailRecord, Foreigner, StayPermit
from resolvers.trail import TrailRecord, append_records

ROOT = Path(__file__).resolve().parents[2]
TABLE = AccessTrailEntry.__table__
RECORDS = AccessTrailRecord.__table__
NOW = dt.datetime.now(dt.UTC)
OLD = dt.datetime(2019, 3, 1, 9, 0, tzinfo=dt.UTC)
EXPORT_KEYS = {"seq", "at", "record_type", "record_id", "issuer", "subject", "role", "area",
               "officer_id", "fields", "purpose", "request_id"}


def record(record_type: str, record_id: int, *, at: dt.datetime = NOW,
           subject: str = "officer-1", request: str = "req-7") -> TrailRecord:
    return TrailRecord(
        at=at, issuer="sisada-test", subject=subject, role="reader", area="31.74",
        office_code="31.74", officer_id=1, record_type=record_type, record_id=str(record_id),
        fields=("passportNumber", "fullName"), purpose="field_check", request_id=request,
        operation_name="Check", document_hash="ab" * 32, client_address="127.0.0.1")


def reads(count: int, *, at: dt.datetime = NOW) -> list[TrailRecord]:
    """`count` requests reading one foreigner each: `count` chained entries."""
    return [record("Foreigner", i, at=at, request=f"req-{i}") for i in range(count)]


@pytest.fixture(params=["sqlite", "postgresql"])
def trail_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database at the migration head (the trail starts empty)."""
    with migrated_database(request.param, tmp_path) as url:
        yield url


def append(url: str, records: list[TrailRecord]) -> None:
    on_db(url, lambda db: append_records(db, records, timeout=10))


def sisada(url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "SISADA_DATABASE_URL": url, **env}
    return subprocess.run([sys.executable, "-m", "gateway.cli", "trail", *args], cwd=ROOT,
                          env=environment, capture_output=True, text=True, timeout=120)


def alter_fields(url: str, seq: int) -> None:
    """What the table's owner could do: rewrite one entry with the triggers out of the way."""
    async def run(db: Database) -> None:
        async with db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(text("ALTER TABLE access_trail DISABLE TRIGGER "
                                        "access_trail_append_only"))
            else:
                await conn.execute(text("DROP TRIGGER access_trail_no_update"))
            await conn.execute(text(f"UPDATE access_trail SET fields = 'nationality' "
                                    f"WHERE seq = {seq}"))

    on_db(url, run)


def one_line(output: str) -> str:
    lines = output.splitlines()
    assert len(lines) == 1, output
    return lines[0]


def test_verify_says_intact_and_exits_0(trail_url: str) -> None:
    append(trail_url, reads(3))
    done = sisada(trail_url, "verify")
    assert done.returncode == 0, done.stderr
    assert one_line(done.stdout).startswith("intact: 3 entries (last seq 3, hash ")
    assert done.stderr == ""


def test_verify_names_the_altered_entry_and_exits_1(trail_url: str) -> None:
    append(trail_url, reads(4))
    alter_fields(trail_url, 2)
    done = sisada(trail_url, "verify")
    assert done.returncode == 1
    assert one_line(done.stdout) == "broken: entry 2: altered (1 entries intact before it)"
    assert "Traceback" not in done.stderr


def test_verify_names_the_entry_of_a_deleted_record_row(trail_url: str) -> None:
    """A page of reads is one chained entry listing its records; removing one record's row
    (what the tables' owner could do) breaks that entry."""
    append(trail_url, reads(2) + [record("Foreigner", i, request="page") for i in range(20)])

    async def run(db: Database) -> None:
        async with db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(text("ALTER TABLE access_trail_record DISABLE TRIGGER "
                                        "access_trail_record_append_only"))
            else:
                await conn.execute(text("DROP TRIGGER access_trail_record_no_delete"))
            await conn.execute(text("DELETE FROM access_trail_record "
                                    "WHERE seq = 3 AND record_id = '13'"))

    on_db(trail_url, run)
    done = sisada(trail_url, "verify")
    assert done.returncode == 1
    assert one_line(done.stdout) == "broken: entry 3: altered (2 entries intact before it)"


def test_verify_without_a_trail_table_exits_2_in_one_line(tmp_path: Path) -> None:
    done = sisada(f"sqlite+aiosqlite:///{tmp_path / 'none.db'}", "verify")
    assert done.returncode == 2
    assert done.stdout == ""
    assert one_line(done.stderr).startswith("trail verify: failed (")
    assert "Traceback" not in done.stderr


def test_prune_before_a_date_leaves_a_chained_prune_entry(trail_url: str) -> None:
    append(trail_url, reads(3, at=OLD)
           + [record("Foreigner", i, at=OLD, request="page") for i in range(10)]
           + [record("Foreigner", 9)])
    done = sisada(trail_url, "prune", "--before", "2020-01-01")
    assert done.returncode == 0, done.stderr
    assert one_line(done.stdout) == ("pruned: 4 entries (13 record reads) before "
                                     "2020-01-01T00:00:00+00:00")
    stored = on_db(trail_url, lambda db: db.all(select(TABLE).order_by(TABLE.c.seq)))
    assert [(row["seq"], row["record_type"]) for row in stored] == [(5, "Foreigner"),
                                                                   (6, "access_trail")]
    marks = on_db(trail_url, lambda db: db.all(select(RECORDS).where(RECORDS.c.seq == 6)))
    assert len(marks) == 1 and marks[0]["record_id"].startswith("through:4:")
    verified = sisada(trail_url, "verify")
    assert (verified.returncode, one_line(verified.stdout).split(" (")[0]) == (
        0, "intact: 2 entries")


def test_prune_without_a_date_uses_the_retention_setting(trail_url: str) -> None:
    append(trail_url, [record("Foreigner", 1, at=NOW - dt.timedelta(days=40)),
                       record("Foreigner", 2, at=NOW - dt.timedelta(days=10))])
    done = sisada(trail_url, "prune", SISADA_TRAIL_RETENTION_DAYS="30")
    assert done.returncode == 0, done.stderr
    assert one_line(done.stdout).startswith("pruned: 1 entries (1 record reads) before ")
    assert sisada(trail_url, "verify").returncode == 0


def test_prune_refuses_a_broken_trail(trail_url: str) -> None:
    append(trail_url, reads(3, at=OLD))
    alter_fields(trail_url, 2)
    done = sisada(trail_url, "prune", "--before", "2020-01-01")
    assert done.returncode == 1
    assert one_line(done.stdout) == ("refused: the trail is broken at entry 2 (altered); "
                                     "run `sisada trail verify`")
    count = on_db(trail_url, lambda db: db.scalar(text("SELECT count(*) FROM access_trail")))
    assert count == 3


def test_prune_rejects_a_date_it_cannot_read(trail_url: str) -> None:
    done = sisada(trail_url, "prune", "--before", "last tuesday")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr


def _foreigner_with_permit(url: str) -> None:
    async def run(db: Database) -> None:
        async with db.engine.begin() as conn:
            await conn.execute(insert(Foreigner), [
                {"id": 7, "age_base_year": 1990, "nationality": "AUS", "sex": "F",
                 "created_at": NOW},
                {"id": 8, "age_base_year": 1985, "nationality": "JPN", "sex": "M",
                 "created_at": NOW}])
            await conn.execute(insert(StayPermit), [
                {"id": 70, "foreigner_id": 7, "permit_type": "KITAS", "status": "ACTIVE",
                 "issued_on": dt.date(2026, 1, 1), "expires_on": dt.date(2027, 1, 1),
                 "sponsor_type": "EMPLOYER", "valid_to": None}])

    on_db(url, run)


def test_export_lists_who_read_a_foreigner_and_their_permits(trail_url: str) -> None:
    _foreigner_with_permit(trail_url)
    # One request read three foreigners' names (one chained entry listing 7, 8 and 70);
    # another read a stay permit of 7's.
    append(trail_url, [record("Foreigner", 7), record("Foreigner", 8),
                       record("StayPermit", 70, subject="officer-2", request="req-8"),
                       record("Foreigner", 70)])
    done = sisada(trail_url, "export", "--foreigner", "7")
    assert done.returncode == 0, done.stderr
    entries = json.loads(done.stdout)
    # Foreigner 7's reads only: never the other records the same entry lists.
    assert [(e["seq"], e["record_type"], e["record_id"]) for e in entries] == [
        (1, "Foreigner", "7"), (2, "StayPermit", "70")]
    assert {e["record_id"] for e in entries} == {"7", "70"}
    assert all(set(entry) == EXPORT_KEYS for entry in entries)
    assert entries[0]["fields"] == ["fullName", "passportNumber"]
    assert entries[1]["subject"] == "officer-2"
    assert entries[0]["at"].endswith("Z")
    assert (entries[0]["purpose"], entries[0]["request_id"]) == ("field_check", "req-7")


def test_export_as_csv(trail_url: str) -> None:
    _foreigner_with_permit(trail_url)
    append(trail_url, [record("Foreigner", 7), record("Foreigner", 8)])
    done = sisada(trail_url, "export", "--foreigner", "7", "--format", "csv")
    assert done.returncode == 0, done.stderr
    header, *lines = done.stdout.splitlines()
    assert header == ("seq,at,record_type,record_id,issuer,subject,role,area,officer_id,"
                      "fields,purpose,request_id")
    assert len(lines) == 1
    assert lines[0].startswith("1,") and '"fullName,passportNumber",field_check,req-7' in lines[0]


def test_export_of_a_foreigner_nobody_read_is_empty(trail_url: str) -> None:
    done = sisada(trail_url, "export", "--foreigner", "12345")
    assert (done.returncode, json.loads(done.stdout)) == (0, [])


def test_prune_refuses_a_date_within_the_retention(trail_url: str) -> None:
    # Review F3: `--before 2099-01-01` deleted minutes-old entries and left an intact chain.
    before = sisada(trail_url, "verify")
    done = sisada(trail_url, "prune", "--before", "2099-01-01")
    assert done.returncode == 1
    assert one_line(done.stdout).startswith("refused: 2099-01-01T00:00:00+00:00 is within "
                                            "the retention")
    assert sisada(trail_url, "verify").stdout == before.stdout
