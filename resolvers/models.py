"""SQLAlchemy 2 models for the immigration office's data.

Every located row (residence, report, activity) carries the area code of each
level of the tree (city > kecamatan > kelurahan > RW > RT) so that row scoping
by jurisdiction is one equality test on an indexed column, whatever the level
of the principal's jurisdiction.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Area(Base):
    """A node of the area tree; `code` is hierarchical (Kemendagri style, extended to RW/RT)."""

    __tablename__ = "area"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    level: Mapped[str] = mapped_column(String(16), index=True)
    parent_code: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("area.code"), index=True
    )


class LocatedMixin:
    """Area codes of every level, denormalised so jurisdiction checks are one equality."""

    city_code: Mapped[str] = mapped_column(String(32), index=True)
    kecamatan_code: Mapped[str] = mapped_column(String(32), index=True)
    kelurahan_code: Mapped[str] = mapped_column(String(32), index=True)
    rw_code: Mapped[str | None] = mapped_column(String(32), index=True)
    rt_code: Mapped[str | None] = mapped_column(String(32), index=True)


class Foreigner(Base):
    """The supervision record of a foreigner; `id` is the central registry's id. Identity
    (name, passport, birth date, photo) lives in the registry only (resolvers.identity)."""

    __tablename__ = "foreigner"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The age on 1 January of year Y is Y - age_base_year (migration 0004 says why a year).
    age_base_year: Mapped[int] = mapped_column(Integer)
    nationality: Mapped[str] = mapped_column(String(3), index=True)
    sex: Mapped[str] = mapped_column(String(1))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class StayPermit(Base):
    """A stay permit's supervision record; `id` is the registry's permit document id, which
    holds the document number and the sponsor's name."""

    __tablename__ = "stay_permit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    foreigner_id: Mapped[int] = mapped_column(ForeignKey("foreigner.id"), index=True)
    permit_type: Mapped[str] = mapped_column(String(16), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    issued_on: Mapped[dt.date] = mapped_column(Date)
    expires_on: Mapped[dt.date] = mapped_column(Date, index=True)
    sponsor_type: Mapped[str] = mapped_column(String(32))
    # The permit currently in force; a foreigner has at most one.
    is_current: Mapped[bool] = mapped_column(Boolean, default=True)

    __table_args__ = (Index("ix_stay_permit_current", "foreigner_id", "is_current"),)


class Residence(LocatedMixin, Base):
    __tablename__ = "residence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    foreigner_id: Mapped[int] = mapped_column(ForeignKey("foreigner.id"), index=True)
    street_address: Mapped[str] = mapped_column(String(300))
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    valid_from: Mapped[dt.date] = mapped_column(Date)
    # NULL while the foreigner still lives here.
    valid_to: Mapped[dt.date | None] = mapped_column(Date)

    __table_args__ = (Index("ix_residence_current", "foreigner_id", "valid_to"),)


class Officer(Base):
    __tablename__ = "officer"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    rank: Mapped[str] = mapped_column(String(64))
    unit: Mapped[str] = mapped_column(String(120))
    is_supervisor: Mapped[bool] = mapped_column(Boolean, default=False)
    # The area the officer's office serves (the office's city); scopes officers by office.
    office_area_code: Mapped[str] = mapped_column(String(32), index=True)


class Report(LocatedMixin, Base):
    __tablename__ = "report"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    receipt_code: Mapped[str] = mapped_column(String(32), unique=True)
    category: Mapped[str] = mapped_column(String(32), index=True)
    text: Mapped[str] = mapped_column(Text)
    reporter_contact: Mapped[str | None] = mapped_column(String(200))
    # Who submitted it: the token's issuer, role and subject (a subject is unique only
    # within its issuer, and one person in two roles is two submitters); NULL if anonymous.
    submitter_issuer: Mapped[str | None] = mapped_column(String(255))
    submitter_role: Mapped[str | None] = mapped_column(String(64))
    submitted_by: Mapped[str | None] = mapped_column(String(255), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    foreigner_id: Mapped[int | None] = mapped_column(ForeignKey("foreigner.id"), index=True)
    assigned_officer_id: Mapped[int | None] = mapped_column(ForeignKey("officer.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class OfficerActivity(LocatedMixin, Base):
    __tablename__ = "officer_activity"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    officer_id: Mapped[int] = mapped_column(ForeignKey("officer.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    subject_foreigner_id: Mapped[int | None] = mapped_column(ForeignKey("foreigner.id"))
    report_id: Mapped[int | None] = mapped_column(ForeignKey("report.id"))
    notes: Mapped[str | None] = mapped_column(Text)
    joint_operation: Mapped[bool] = mapped_column(Boolean, default=False, index=True)


class AccessTrailEntry(Base):
    """One entry of the access trail (SPEC rule 6): a principal was sent the same identity
    fields of one or more records of one type, in one request; the records are listed in
    `access_trail_record`. Field *names* only, never values. Append-only (triggers,
    migrations 0005 and 0006) and hash-chained in `seq` order (resolvers.trail says how)."""

    __tablename__ = "access_trail"

    # Assigned by the writer under the chain lock, never by the database: the chain order.
    # 64-bit on PostgreSQL; SQLite's INTEGER is.
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"),
                                     primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    # Free text from the token: unbounded, so a long claim never fails the write.
    issuer: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text, index=True)
    role: Mapped[str] = mapped_column(String(64))
    area: Mapped[str | None] = mapped_column(String(32))
    # The city code of the reader's area: the office whose supervisor reads the entry.
    office_code: Mapped[str | None] = mapped_column(String(32), index=True)
    officer_id: Mapped[int | None] = mapped_column(Integer)
    record_type: Mapped[str] = mapped_column(String(64))
    # Sorted field names joined by ",".
    fields: Mapped[str] = mapped_column(Text)
    purpose: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str] = mapped_column(Text)
    operation_name: Mapped[str | None] = mapped_column(Text)
    document_hash: Mapped[str] = mapped_column(String(64))
    client_address: Mapped[str | None] = mapped_column(String(64))
    # How many `access_trail_record` rows the entry lists (covered by its hash).
    record_count: Mapped[int] = mapped_column(Integer, server_default="1")
    # The canonical form the entry was hashed in (resolvers.trail.chain): 1 for the
    # one-record entries of migration 0005, 2 since 0006. Old entries keep their hashes.
    chain_format: Mapped[int] = mapped_column(SmallInteger, server_default="1")
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class AccessTrailRecord(Base):
    """A record an access-trail entry is about: narrow, one row per record read, so a
    thousand-record page costs a thousand small rows and one chained entry. Covered by its
    entry's hash; append-only like the entries (migration 0006).

    No foreign key to the entry on purpose: a per-row check would cost the write as much as
    the rows themselves, and `sisada trail verify` finds a record row without its entry."""

    __tablename__ = "access_trail_record"

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"),
                                     primary_key=True, autoincrement=False)
    # Byte order on PostgreSQL as on SQLite (code-point order, the hash's): one order for
    # pages and cursors whatever the database's locale, and cheaper index inserts.
    record_id: Mapped[str] = mapped_column(
        String(128).with_variant(String(128, collation="C"), "postgresql"), primary_key=True)

    # "Entries about this record" (a data subject's request), newest or oldest first.
    # SQLite: the rows live in their primary key's B-tree (no rowid table besides it).
    __table_args__ = (Index("ix_access_trail_record_id", "record_id", "seq"),
                      {"sqlite_with_rowid": False})


class EventOutbox(Base):
    """One live event (issue 11), written in the transaction of the change it announces: a
    committed change always has its event, and a rolled-back one never does. The id is the
    event's id — monotonic in commit order (resolvers/outbox.py says how) — and `after`
    replays from it. `record` holds what the row decision and the feed filters read (the
    policy's resource fields of the record, as JSON); it never leaves the gateway."""

    __tablename__ = "event_outbox"

    # AUTOINCREMENT on SQLite: an id is never reused, even after the newest row is pruned.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"),
                                    primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(32))
    record_id: Mapped[int] = mapped_column(Integer)
    record: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_event_outbox_topic_id", "topic", "id"),
                      {"sqlite_autoincrement": True})


class OperationClient(Base):
    """A partner client named by tokens' `client` claim (issue 12): `open` runs any
    operation, `allow-list` only the documents registered for it (`persisted_operation`)."""

    __tablename__ = "operation_client"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    mode: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class PersistedOperation(Base):
    """A trusted document registered for a client by `sisada operations add`: its SHA-256
    (what clients send as `extensions.persistedQuery.sha256Hash`), the document as
    registered, and the names of its operations (comma-separated, for people)."""

    __tablename__ = "persisted_operation"

    client: Mapped[str] = mapped_column(String(63), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    document: Mapped[str] = mapped_column(Text)
    operation_names: Mapped[str] = mapped_column(Text)
    added_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
